"""The fallback chain: which attempt comes next, and when a request has had enough.

The chain is the selection's ordered candidates. By default a candidate that fails
moves the request on to the next one at once (the breaker keeps a failing provider
out of later requests) and only the last candidate is retried, with the retry
policy's backoff, because there is nowhere else to go; `retry.before_fallback`
retries each candidate that many times first. Everything is bounded by the
request's deadline: a Retry-After or backoff that would pass it ends that candidate
instead of waiting, so a request never outlives its deadline. `Request.attempt_timeout_s`
bounds each attempt on its own (a streaming client's time-to-first-token: the upstream
calls are not streamed, so the first token comes with the whole answer); past it the
next candidate is tried, and the abandoned call's money follows the attempt table
(released if it never left, held if it did).

With every provider failing fast, a request therefore ends after one attempt per
candidate plus the last one's retries: 1 + 2 + 4 = 7 s of backoff under the default
retry policy (1 s initial, x2, 3 retries), the source's own numbers. A backoff is
not slept when the provider's circuit will still be out at its end (open, or
restarting later than that): the retry could not be sent, so the request fails at
once, with the 503's Retry-After saying when the first candidate is back.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio
import attrs

from actors.errors import BudgetExceeded, InvalidRequest, RateLimitExceeded, StrategyUnavailable
from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.messages import Attempt, ChatMessage, FailureKind, Request
from actors.providers.messages import ProviderReply
from actors.providers.retry import RetrySettings
from actors.providers.settings import ProviderSettings
from actors.router.attempt import AttemptRunner, MoneyAction, Outcome, Plan
from actors.runtime.clock import current_time

RETRYABLE = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.UNKNOWN,
        FailureKind.MALFORMED_RESPONSE,
        FailureKind.UNAVAILABLE,
        FailureKind.RATE_LIMIT,
    }
)


@attrs.define
class Progress:
    """What one request has been through so far, to build its Result or its error."""

    attempts: list[Attempt] = attrs.Factory(list)
    denied_budget: int = 0
    rate_limited: float | None = None
    skipped: list[str] = attrs.Factory(list)
    remaining_nd: int | None = None
    needed_nd: int = 0
    deadline_passed: bool = False


@attrs.frozen
class Candidate:
    tier: str
    provider: ProviderSettings
    max_tokens: int
    temperature: float | None


@attrs.frozen
class Chain:
    """A request's (tier, provider) entries in order, each made a Candidate only when it is reached.

    Almost every request is answered by its first entry, so the alternatives are
    never built (building them all up front showed in profiles of the hot path).
    """

    entries: tuple[tuple[str, str], ...]
    candidate: Callable[[str, str], Candidate]


class FallbackChain:
    """Drives one request through its candidates with an `AttemptRunner`."""

    def __init__(
        self,
        runner: AttemptRunner,
        retry: RetrySettings,
        rng: random.Random,
        *,
        downgrade_on_budget: bool,
        clock: Callable[[], float] = current_time,
        on_attempt: Callable[[Request, int, Attempt], None] | None = None,
        on_fallback: Callable[[Request, str, str, str], None] | None = None,
        on_auth_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self._runner = runner
        self._retry = retry
        self._rng = rng
        self._downgrade_on_budget = downgrade_on_budget
        self._clock = clock
        self._on_attempt = on_attempt
        self._on_fallback = on_fallback
        self._on_auth_failure = on_auth_failure

    async def serve(
        self,
        request: Request,
        chain: Chain,
        messages: tuple[ChatMessage, ...],
        deadline: float,
        progress: Progress,
    ) -> tuple[Candidate, ProviderReply] | None:
        """The first candidate that answers, or None when every one failed (see `progress`)."""
        needed_window = 0
        entries = chain.entries
        for position, (tier, provider) in enumerate(entries):
            candidate = chain.candidate(tier, provider)
            if candidate.provider.context_window < needed_window:
                progress.skipped.append(f"{candidate.provider.name}: context window too small")
                continue
            final = position + 1 == len(entries)
            answer, last = await self._try(request, candidate, messages, deadline, progress, final)
            if answer is not None:
                return candidate, answer
            if progress.deadline_passed or last is FailureKind.INVALID_REQUEST:
                break
            if last is FailureKind.CONTEXT_LENGTH:
                needed_window = max(needed_window, prompt_token_estimate(messages) + 1)
            if not final and self._on_fallback is not None:
                self._on_fallback(request, candidate.provider.name, entries[position + 1][1],
                                  last.value if last else "skipped")
        return None

    async def _try(
        self,
        request: Request,
        candidate: Candidate,
        messages: tuple[ChatMessage, ...],
        deadline: float,
        progress: Progress,
        final: bool,
    ) -> tuple[ProviderReply | None, FailureKind | None]:
        """One candidate, retried only when it is the last; the answer, or the failure that ended it."""
        provider = candidate.provider
        prompt_tokens = prompt_token_upper_bound(messages)
        max_tokens = min(candidate.max_tokens, max(1, provider.context_window - prompt_token_estimate(messages)))
        last: FailureKind | None = None
        retries = self._retry.max_retries if final else min(self._retry.before_fallback, self._retry.max_retries)
        for try_no in range(retries + 1):
            if self._clock() >= deadline:
                progress.deadline_passed = True
                return None, last
            plan = Plan(request, provider, candidate.tier, messages, max_tokens, candidate.temperature,
                        prompt_tokens, len(progress.attempts) + 1)
            bound = deadline
            if request.attempt_timeout_s is not None:
                bound = min(deadline, self._clock() + request.attempt_timeout_s)
            outcome = await self._runner.run(plan, bound)
            if outcome.skipped:
                progress.skipped.append(outcome.skipped)
                return None, last
            if outcome.denied:
                self._denied(request, provider, outcome, progress)
                return None, last
            reply = outcome.reply
            assert reply is not None
            self._record(request, candidate, outcome, progress)
            if reply.ok:
                return reply, None
            last = FailureKind(reply.failure)
            if last is FailureKind.AUTH and self._on_auth_failure is not None:
                self._on_auth_failure(provider.name, reply.detail)
            if last is FailureKind.RATE_LIMIT:
                progress.rate_limited = reply.retry_after_s
            waits = final and request.wait_rate_limits
            if last not in RETRYABLE or try_no == retries or (last is FailureKind.RATE_LIMIT and not waits):
                return None, last
            delay = self._retry.delay(try_no + 1, reply.retry_after_s, self._rng)
            now = self._clock()
            if now + delay >= deadline:
                progress.skipped.append(f"{provider.name}: waiting {delay:.1f} s would pass the request's deadline")
                return None, last
            ready = self._runner.ready_at(provider.name)
            if ready > now + delay:
                progress.skipped.append(f"{provider.name}: circuit out for {ready - now:.1f} s, past the {delay:.1f} s "
                                        "backoff: not retried")
                return None, last
            await anyio.sleep(delay)
        return None, last

    def _denied(self, request: Request, provider: ProviderSettings, outcome: Outcome, progress: Progress) -> None:
        reserve = outcome.reserve
        assert reserve is not None
        progress.denied_budget += 1
        progress.remaining_nd = reserve.remaining_nd
        progress.needed_nd = max(progress.needed_nd, outcome.amount_nd)
        progress.skipped.append(f"{provider.name}: budget ({reserve.reason})")
        if not self._downgrade_on_budget:
            raise BudgetExceeded(
                f"request {request.request_id}: worst case {outcome.amount_nd} nd exceeds the remaining "
                f"budget ({reserve.reason})",
                remaining_nd=reserve.remaining_nd, needed_nd=outcome.amount_nd,
            )

    def _record(self, request: Request, candidate: Candidate, outcome: Outcome, progress: Progress) -> None:
        reply = outcome.reply
        assert reply is not None
        held = outcome.amount_nd if outcome.action is MoneyAction.HOLD else 0
        detail = reply.detail
        if held:
            detail = f"{detail} (outcome unknown: {held} nd held until `orchestrator budget reconcile`)"
        attempt = Attempt(
            provider=candidate.provider.name, model=candidate.provider.model, tier=candidate.tier,
            outcome="ok" if reply.ok else reply.failure, detail=detail, latency_s=reply.latency_s,
            queue_s=reply.queue_s, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
            cost_nd=outcome.cost_nd, http_status=reply.http_status,
            reservation_id=outcome.reservation_id, held_nd=held,
        )
        progress.attempts.append(attempt)
        if self._on_attempt is not None:
            self._on_attempt(request, len(progress.attempts), attempt)


def exhausted(request: Request, progress: Progress, retry_after: float | None = None) -> Exception:
    """The typed error for a request no candidate could serve, naming every reason.

    `retry_after`: when every candidate's circuit is out, seconds until the first may
    take work again (the 503's Retry-After).
    """
    tried = "; ".join(
        [f"{a.provider}: {a.outcome} {a.detail}".strip() for a in progress.attempts] + progress.skipped
    )
    if progress.denied_budget and not progress.attempts:
        return BudgetExceeded(
            f"request {request.request_id}: no candidate fits the remaining budget ({tried})",
            remaining_nd=progress.remaining_nd or 0,
            needed_nd=progress.needed_nd,
        )
    outcomes = {a.outcome for a in progress.attempts}
    if outcomes == {FailureKind.RATE_LIMIT.value}:
        return RateLimitExceeded(
            f"request {request.request_id}: every candidate is rate-limited ({tried})",
            retry_after=progress.rate_limited,
        )
    if progress.attempts and progress.attempts[-1].outcome == FailureKind.INVALID_REQUEST.value:
        return InvalidRequest(f"request {request.request_id}: rejected by the provider ({tried})")
    if outcomes == {FailureKind.CONTEXT_LENGTH.value}:
        return InvalidRequest(
            f"request {request.request_id}: too long for every candidate's context window; shorten the prompt or "
            f"lower max_tokens ({tried})"
        )
    if progress.deadline_passed:
        return StrategyUnavailable(f"request {request.request_id}: its deadline passed ({tried})", retry_after=retry_after)
    return StrategyUnavailable(f"request {request.request_id}: no provider could serve it ({tried})",
                               retry_after=retry_after)
