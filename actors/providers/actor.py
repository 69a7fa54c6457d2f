"""One provider actor per configured provider: its HTTP session, limits and protocol.

Calls run concurrently on `max_concurrency` worker tasks of the actor's own, fed by
a `WorkQueue` that hands a call straight to an idle worker, so a slow completion
never blocks the inbox and no call pays for spawning a task of its own (anyio gives each spawned task a cancel scope and an event; the
gain was within this machine's noise, docs/BENCHMARKS.md, 3aa9b19). The actor counts
consecutive failures that say the provider is unwell; at `failures_to_crash` it
stops taking work, lets the calls in flight finish (so every reservation is settled
or released on a known outcome), then crashes on purpose for its supervisor, whose
restart policy is the circuit breaker.

A provider that answered 429 with a Retry-After of a second or more gets no new call
until that time has passed: calls meanwhile are refused locally (a rate limit that never left the
machine), so a burst of requests does not hammer a provider that asked for a pause.

A call waits for a concurrency slot and the rate limits, then `Inbox.begin` decides
whether to send it: a caller that gave up meanwhile has abandoned it, and it is
dropped unsent (its reservation was released). A call that never reached the provider
(dropped so, or its connection refused) gives its request and tokens back to the
rate limits: the provider never counted them. Every failure detail is scrubbed of
the key and of credential-shaped text before it leaves the actor.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import anyio

from actors.errors import DeliberateCrash
from actors.messages import FailureKind
from actors.providers.failures import classify_exception
from actors.providers.messages import ProviderCall, ProviderReply
from actors.providers.protocols import get_protocol
from actors.providers.ratelimit import RateLimiter
from actors.providers.redact import Redactor
from actors.providers.settings import ProviderSettings, key_problem
from actors.providers.transport import Transport
from actors.providers.wire import Completion, Failure
from actors.runtime.actor import Actor
from actors.runtime.clock import current_time
from actors.runtime.workqueue import WorkQueue

UNHEALTHY = frozenset(
    {
        FailureKind.UNAVAILABLE,
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.MALFORMED_RESPONSE,
        FailureKind.UNKNOWN,
    }
)


PAUSE_AT_LEAST_S = 1.0
"""A Retry-After this long or longer pauses the whole provider; a shorter one only its own call."""


class ProviderCrashed(DeliberateCrash):
    """Raised on purpose after too many consecutive failures, for the supervisor to see."""


class ProviderActor(Actor):
    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        failures_to_crash: int,
        clock: Callable[[], float] = current_time,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self._transport = transport
        self._protocol = get_protocol(settings.protocol)
        self._failures_to_crash = failures_to_crash
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._api_key: str | None = None
        self._key_problem = ""
        self._queue: WorkQueue[tuple[ProviderCall, int, float]] | None = None
        self._pacing = anyio.Lock()
        self._limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute, clock())
        self._waiting = 0
        self._in_flight = 0
        self._consecutive_failures = 0
        self._last_failure = ""
        """The kind and detail of the latest failure: what a crash after consecutive failures names."""
        self._crashing = False
        self._rate_limited_until = -math.inf
        self._redactor = Redactor()

    async def on_start(self) -> None:
        env = self.settings.api_key_env
        if env is not None:
            raw = self._environ.get(env) or None
            self._redactor = Redactor([raw])
            problem = key_problem(env, raw)
            self._api_key = None if problem else raw
            if problem:
                self._key_problem = f"provider {self.settings.name}: environment variable {problem}"
        await self._transport.open()
        self._queue = WorkQueue()
        for _ in range(self.settings.max_concurrency):
            self.tasks.start_soon(self._worker, self._queue)

    async def on_stop(self) -> None:
        if self._queue is not None:
            self._queue.close()
        await self._transport.close()

    async def handle(self, msg: ProviderCall, corr: int) -> None:
        if self._crashing:
            self.inbox.reply(
                corr, ProviderReply(FailureKind.UNAVAILABLE.value, detail="provider restarting", sent=False)
            )
            return None
        if self._key_problem:
            self.inbox.reply(corr, ProviderReply(FailureKind.AUTH.value, detail=self._key_problem, sent=False))
            return None
        wait = self._rate_limited_until - self._clock()
        if wait > 0:
            self.inbox.reply(
                corr,
                ProviderReply(
                    FailureKind.RATE_LIMIT.value,
                    detail=f"rate-limited by the provider for {wait:.1f} s more (its Retry-After)",
                    retry_after_s=wait,
                    sent=False,
                ),
            )
            return None
        if self._waiting >= self.settings.queue_limit:
            self.inbox.reply(
                corr,
                ProviderReply(
                    FailureKind.RATE_LIMIT.value,
                    detail=f"local queue full ({self.settings.queue_limit} waiting)",
                    retry_after_s=1.0,
                    sent=False,
                ),
            )
            return None
        assert self._queue is not None
        self._waiting += 1
        self._queue.put((msg, corr, self._clock()))
        return None

    async def _worker(self, calls: WorkQueue[tuple[ProviderCall, int, float]]) -> None:
        while True:
            try:
                call, corr, queued_at = await calls.get()
            except anyio.EndOfStream:
                return
            self._waiting -= 1
            await self._serve(call, corr, queued_at)

    async def _serve(self, call: ProviderCall, corr: int, queued_at: float) -> None:
        self._in_flight += 1
        try:
            await self._pace(call.budget_tokens)
            if not self.inbox.begin(corr):
                self._limiter.refund(call.budget_tokens, self._clock())
                return
            started = self._clock()
            reply = await self._call(call)
            finished = self._clock()
            if not reply.sent:
                self._limiter.refund(call.budget_tokens, finished)
            reply = ProviderReply(
                reply.failure,
                reply.text,
                reply.input_tokens,
                reply.output_tokens,
                reply.finish_reason,
                reply.detail,
                reply.http_status,
                reply.retry_after_s,
                latency_s=finished - started,
                queue_s=started - queued_at,
                sent=reply.sent,
            )
        finally:
            self._in_flight -= 1
        self._count(reply)
        self.inbox.reply(corr, reply)
        if self._crashing and self._in_flight == 0:
            raise ProviderCrashed(
                f"{self.settings.name}: {self._consecutive_failures} consecutive failures, the last: {self._last_failure}"
            )

    async def _pace(self, tokens: int) -> None:
        if self.settings.requests_per_minute is None and self.settings.tokens_per_minute is None:
            return
        async with self._pacing:
            while (wait := self._limiter.wait_for(tokens, self._clock())) > 0:
                await anyio.sleep(wait)

    async def _call(self, call: ProviderCall) -> ProviderReply:
        http = self._protocol.build_request(
            base_url=self.settings.base_url,
            model=self.settings.model,
            api_key=self._api_key,
            messages=call.messages,
            max_tokens=call.max_tokens,
            temperature=call.temperature,
            top_p=call.top_p,
            stop=call.stop,
            extra_headers=self.settings.extra_headers,
        )
        try:
            raw = await self._transport.send(http)
        except Exception as exc:  # noqa: BLE001 - every transport failure is classified
            return self._failure_reply(classify_exception(exc))
        outcome = self._protocol.parse_response(raw.status, raw.headers, raw.body, time.time())
        if isinstance(outcome, Completion):
            return ProviderReply(
                "",
                outcome.text,
                outcome.input_tokens,
                outcome.output_tokens,
                outcome.finish_reason,
                http_status=raw.status,
            )
        return self._failure_reply(outcome)

    def _failure_reply(self, failure: Failure) -> ProviderReply:
        return ProviderReply(
            failure.kind.value,
            detail=self._redactor.scrub(failure.detail),
            http_status=failure.http_status,
            retry_after_s=failure.retry_after_s,
            sent=failure.sent,
        )

    def _count(self, reply: ProviderReply) -> None:
        if reply.failure == FailureKind.RATE_LIMIT.value and reply.sent and (reply.retry_after_s or 0) >= PAUSE_AT_LEAST_S:
            self._rate_limited_until = max(self._rate_limited_until, self._clock() + (reply.retry_after_s or 0))
        if reply.ok:
            self._consecutive_failures = 0
            return
        if FailureKind(reply.failure) in UNHEALTHY:
            self._consecutive_failures += 1
            detail = reply.detail if len(reply.detail) <= 120 else reply.detail[:119] + "…"
            self._last_failure = f"{reply.failure} ({detail})" if detail else reply.failure
            if self._consecutive_failures >= self._failures_to_crash:
                self._crashing = True

