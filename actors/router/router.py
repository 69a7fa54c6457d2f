"""The router: turn a request into a decision, then drive it to a result.

The workflow runs in the caller's own task (cache → ledger reserve → provider →
ledger settle or release → cache store), so one request never waits behind another
and a caller's cancellation reaches exactly its own request. Money only moves
through the ledger; providers are reached only through their actors; every step is
reported to telemetry. The failure policy is in `FailurePolicy`; which candidate
comes next is the selection's ordered fallback chain.
"""

from __future__ import annotations

import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping

import anyio
import attrs

from actors.cache.client import CacheClient
from actors.cache.key import cache_key
from actors.errors import (
    ActorStopped,
    AskTimeout,
    BudgetExceeded,
    InvalidRequest,
    NotRecorded,
    RateLimitExceeded,
    StrategyUnavailable,
)
from actors.ledger.client import LedgerClient
from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound, worst_case_nd
from actors.messages import (
    ArcTask,
    Attempt,
    CachePolicy,
    ChatMessage,
    Decision,
    FailureKind,
    Request,
    Result,
)
from actors.money import token_cost_nd
from actors.providers.messages import ProviderCall, ProviderReply
from actors.providers.settings import ProviderSettings
from actors.router.estimators import build_estimator
from actors.router.prompts import render_arc_prompt
from actors.router.selection import RoutingContext, Selection, select
from actors.runtime.actor import ActorRef
from actors.runtime.breaker import CircuitBreaker
from actors.settings import EngineSettings
from actors.telemetry import events as ev
from actors.telemetry.client import TelemetryClient

PROMPT_MEMO = 4096
RETRY_SAME = frozenset(
    {FailureKind.TIMEOUT, FailureKind.SERVER_ERROR, FailureKind.UNKNOWN, FailureKind.MALFORMED_RESPONSE}
)


@attrs.define
class _Progress:
    """What one request has been through so far, to build its Result or its error."""

    attempts: list[Attempt] = attrs.Factory(list)
    denied_budget: int = 0
    rate_limited: float | None = None
    skipped: list[str] = attrs.Factory(list)
    remaining_nd: int | None = None
    needed_nd: int = 0


class Router:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        ledger: LedgerClient,
        providers: Mapping[str, ActorRef],
        breakers: Mapping[str, CircuitBreaker],
        cache: CacheClient | None,
        telemetry: TelemetryClient | None,
        clock: Callable[[], float] = anyio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._replay: Mapping[str, Result] | None = None
        self._replay_passthrough = False
        self._estimator = build_estimator(settings.router.estimator)
        self._ledger = ledger
        self._providers = providers
        self._breakers = breakers
        self._cache = cache
        self._telemetry = telemetry
        self._clock = clock
        self._wall = wall_clock
        self._rng = random.Random(settings.rng_seed)
        self._provider_settings = {p.name: p for p in settings.providers}
        self._tier_of = {
            provider: tier.name for tier in settings.router.tiers for provider in tier.providers
        }
        self._tiers = {tier.name: tier for tier in settings.router.tiers}
        self._remaining_share = 1.0
        self._prompts: OrderedDict[ArcTask, tuple[ChatMessage, ...]] = OrderedDict()
        self.levels: Counter[str] = Counter()
        self.tiers_used: Counter[str] = Counter()
        self._confidence_sum = 0.0
        self._decisions = 0
        self._results = 0
        self._cost_nd = 0
        self.errors: Counter[str] = Counter()

    # -- public ------------------------------------------------------------------------

    def use_replay(self, answers: Mapping[str, Result] | None, passthrough: bool) -> None:
        """Serve identical requests from a recorded run (and, with passthrough, the rest live)."""
        self._replay = answers
        self._replay_passthrough = passthrough

    def decide(self, request: Request) -> tuple[Decision, Selection, tuple[ChatMessage, ...]]:
        """Estimate and select, with no I/O: what `generate` would try first, and why."""
        estimate = self._estimator.estimate(request)
        messages = request.messages or self._prompt_for(request.task)
        if not messages:
            raise InvalidRequest(f"request {request.request_id}: has neither messages nor a task")
        now = self._clock()
        context = RoutingContext(
            available=frozenset(
                name for name, breaker in self._breakers.items() if breaker.available(now)
            ),
            remaining_share=self._remaining_share,
            providers=self._provider_settings,
            prompt_tokens=prompt_token_upper_bound(messages),
            prompt_tokens_estimate=prompt_token_estimate(messages),
            margin_ppm=self._settings.ledger.safety_margin_ppm,
        )
        selection = select(estimate, request, self._settings.router, context)
        decision = Decision(
            tier=selection.tier,
            model=self._provider_settings[selection.provider].model,
            provider=selection.provider,
            alternatives=tuple(f"{tier}/{provider}" for tier, provider in selection.alternatives),
            score=estimate.score,
            level=estimate.level,
            confidence=estimate.confidence,
            reasons=estimate.reasons + selection.reasons,
            features=estimate.features,
            estimated_cost_nd=selection.estimated_cost_nd,
        )
        return decision, selection, messages

    async def generate(self, request: Request) -> Result:
        started = self._clock()
        self._emit(ev.RequestReceived(self._wall(), request))
        try:
            decision, selection, messages = self.decide(request)
            self._count(decision)
            self._emit(ev.RoutingDecided(self._wall(), request.request_id, decision))
            result = await self._serve(request, decision, selection, messages, started)
        except Exception as exc:
            code = getattr(exc, "code", "INTERNAL_ERROR")
            self.errors[code] += 1
            self._emit(ev.ResultRecorded(self._wall(), request.request_id, request.kind, None, code, str(exc)))
            raise
        self._results += 1
        self._cost_nd += result.cost_nd
        self._emit(ev.ResultRecorded(self._wall(), request.request_id, request.kind, result))
        return result

    def _prompt_for(self, task: ArcTask | None) -> tuple[ChatMessage, ...]:
        """The rendered prompt of a task, memoised: a GA asks about the same tasks again and again."""
        if task is None:
            return ()
        prompt = self._prompts.get(task)
        if prompt is None:
            prompt = render_arc_prompt(task)
            self._prompts[task] = prompt
            if len(self._prompts) > PROMPT_MEMO:
                self._prompts.popitem(last=False)
        return prompt

    def stats(self) -> dict[str, object]:
        return {
            "decisions": self._decisions,
            "levels": dict(self.levels),
            "tiers": dict(self.tiers_used),
            "average_confidence": self._confidence_sum / self._decisions if self._decisions else 0.0,
            "results": self._results,
            "errors": dict(self.errors),
            "cost_nd": self._cost_nd,
        }

    # -- workflow ------------------------------------------------------------------------

    def _count(self, decision: Decision) -> None:
        self._decisions += 1
        self.levels[decision.level] += 1
        self.tiers_used[decision.tier] += 1
        self._confidence_sum += decision.confidence

    async def _serve(
        self,
        request: Request,
        decision: Decision,
        selection: Selection,
        messages: tuple[ChatMessage, ...],
        started: float,
    ) -> Result:
        first = self._tiers[selection.tier]
        max_tokens = request.max_tokens or first.max_tokens
        temperature = _temperature(request, first.temperature)
        def key_for(model: str) -> str:
            return cache_key(
                model,
                messages,
                temperature=temperature,
                top_p=request.top_p,
                max_tokens=max_tokens,
                stop=request.stop,
                sample_index=request.sample_index,
            )

        key = key_for(decision.model)
        if self._replay is not None:
            recorded = self._replay.get(key)
            if recorded is not None:
                return attrs.evolve(
                    recorded, request_id=request.request_id, decision=decision, cost_nd=0,
                    saved_nd=recorded.cost_nd, latency_s=self._clock() - started, replayed=True,
                )
            if not self._replay_passthrough:
                raise NotRecorded(
                    f"request {request.request_id}: not in the recorded log (cache key {key}); "
                    "run with --passthrough to send unrecorded requests to the providers"
                )
        similar_text = messages[-1].content if request.allow_similar else None
        if self._cache is not None and request.cache is CachePolicy.USE:
            hit = await self._cache.lookup(key, kind=request.kind, tier=decision.tier, similar_text=similar_text)
            self._emit(
                ev.CacheChecked(self._wall(), request.request_id, hit is not None,
                                None if hit is None else hit.similarity,
                                0 if hit is None else hit.cost_nd)
            )
            if hit is not None:
                return Result(
                    request_id=request.request_id,
                    text=hit.text,
                    tier=hit.tier,
                    model=hit.model,
                    provider=hit.provider,
                    input_tokens=hit.input_tokens,
                    output_tokens=hit.output_tokens,
                    cost_nd=0,
                    latency_s=self._clock() - started,
                    decision=decision,
                    cached=True,
                    similarity=hit.similarity,
                    saved_nd=hit.cost_nd,
                    cache_key=key,
                )
        progress = _Progress()
        chain = ((selection.tier, selection.provider),) + selection.alternatives
        context_floor = 0
        for position, (tier_name, provider_name) in enumerate(chain):
            provider = self._provider_settings[provider_name]
            if provider.context_window <= context_floor:
                progress.skipped.append(f"{provider_name}: context window too small")
                continue
            tier = self._tiers[tier_name]
            outcome = await self._try_provider(
                request, decision, tier_name, provider, messages,
                request.max_tokens or tier.max_tokens,
                temperature if tier_name == selection.tier else _temperature(request, tier.temperature),
                progress,
                final_candidate=position + 1 == len(chain),
            )
            if isinstance(outcome, Result):
                if self._cache is not None and request.cache is not CachePolicy.OFF:
                    await self._cache.store(
                        key_for(outcome.model), kind=request.kind, tier=outcome.tier, model=outcome.model,
                        provider=outcome.provider, text=outcome.text,
                        input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                        cost_nd=outcome.cost_nd, ttl_s=request.cache_ttl_s, similar_text=similar_text,
                    )
                return attrs.evolve(outcome, latency_s=self._clock() - started, cache_key=key)
            if outcome is FailureKind.CONTEXT_LENGTH:
                context_floor = max(context_floor, provider.context_window)
            if outcome is FailureKind.INVALID_REQUEST:
                break
            if position + 1 < len(chain):
                self._emit(
                    ev.FallbackTaken(self._wall(), request.request_id, provider_name,
                                     chain[position + 1][1], outcome.value if outcome else "skipped")
                )
        raise self._exhausted(request, progress)

    async def _try_provider(
        self,
        request: Request,
        decision: Decision,
        tier_name: str,
        provider: ProviderSettings,
        messages: tuple[ChatMessage, ...],
        max_tokens: int,
        temperature: float | None,
        progress: _Progress,
        final_candidate: bool,
    ) -> Result | FailureKind | None:
        """Try one provider with retries; a Result, the failure that ended it, or None if skipped.

        A rate limit moves on at once while another candidate remains; on the last one
        it waits out Retry-After like any other retryable failure.
        """
        breaker = self._breakers[provider.name]
        prompt_tokens = prompt_token_upper_bound(messages)
        max_tokens = min(max_tokens, max(1, provider.context_window - prompt_token_estimate(messages)))
        retry = self._settings.retry
        last: FailureKind | None = None
        for try_no in range(retry.max_retries + 1):
            permit = breaker.acquire(self._clock())
            if permit is None:
                progress.skipped.append(f"{provider.name}: circuit {breaker.state.value}")
                return last
            amount = worst_case_nd(
                prompt_tokens, max_tokens, provider.input_price_nd_per_mtok,
                provider.output_price_nd_per_mtok, self._settings.ledger.safety_margin_ppm,
            )
            attempt_no = len(progress.attempts) + 1
            reservation_id = f"{request.request_id}/{attempt_no}"
            reply = await self._ledger.reserve(reservation_id, request.request_id, tier_name, provider.model, amount)
            self._note_remaining(reply.remaining_nd)
            self._emit(
                ev.ReservationDecided(self._wall(), request.request_id, reservation_id, tier_name,
                                      provider.model, reply.granted, amount, reply.remaining_nd)
            )
            if not reply.granted:
                breaker.release(permit)
                progress.denied_budget += 1
                progress.remaining_nd = reply.remaining_nd
                progress.needed_nd = max(progress.needed_nd, amount)
                progress.skipped.append(f"{provider.name}: budget ({reply.reason})")
                if not self._settings.router.selection.downgrade_on_budget:
                    raise BudgetExceeded(
                        f"request {request.request_id}: worst case {amount} nd exceeds the remaining "
                        f"budget ({reply.reason})",
                        remaining_nd=reply.remaining_nd, needed_nd=amount,
                    )
                return None
            self._emit(ev.AttemptStarted(self._wall(), request.request_id, attempt_no,
                                         provider.name, provider.model, tier_name))
            answer = await self._call(provider, request, attempt_no, messages, max_tokens, temperature, prompt_tokens)
            if answer.ok:
                cost = token_cost_nd(answer.input_tokens, provider.input_price_nd_per_mtok) + token_cost_nd(
                    answer.output_tokens, provider.output_price_nd_per_mtok
                )
                await self._ledger.settle(reservation_id, cost, answer.input_tokens, answer.output_tokens)
                breaker.record_success(permit, self._clock())
                attempt = self._attempt(provider, tier_name, answer, "ok", cost)
                progress.attempts.append(attempt)
                self._emit(ev.AttemptFinished(self._wall(), request.request_id, attempt_no, attempt))
                return Result(
                    request_id=request.request_id, text=answer.text, tier=tier_name, model=provider.model,
                    provider=provider.name, input_tokens=answer.input_tokens,
                    output_tokens=answer.output_tokens,
                    cost_nd=sum(a.cost_nd for a in progress.attempts),
                    latency_s=0.0, decision=decision, attempts=tuple(progress.attempts),
                    queue_s=sum(a.queue_s for a in progress.attempts),
                )
            await self._ledger.release(reservation_id)
            kind = FailureKind(answer.failure)
            breaker.record_failure(permit, self._clock(), kind.value)
            attempt = self._attempt(provider, tier_name, answer, kind.value, 0)
            progress.attempts.append(attempt)
            self._emit(ev.AttemptFinished(self._wall(), request.request_id, attempt_no, attempt))
            last = kind
            if kind is FailureKind.AUTH:
                before = len(breaker.transitions)
                breaker.disable(self._clock(), f"authentication failed: {answer.detail}")
                self._publish(breaker, before)
                return kind
            if kind is FailureKind.RATE_LIMIT:
                progress.rate_limited = answer.retry_after_s
                if not final_candidate:
                    return kind
            elif kind not in RETRY_SAME:
                return kind
            if try_no == retry.max_retries:
                return kind
            await anyio.sleep(retry.delay(try_no + 1, answer.retry_after_s, self._rng))
        return last

    async def _call(
        self,
        provider: ProviderSettings,
        request: Request,
        attempt_no: int,
        messages: tuple[ChatMessage, ...],
        max_tokens: int,
        temperature: float | None,
        prompt_tokens: int,
    ) -> ProviderReply:
        call = ProviderCall(
            request.request_id, attempt_no, messages, max_tokens, temperature,
            request.top_p, request.stop, prompt_tokens + max_tokens,
        )
        try:
            return await self._providers[provider.name].ask(
                call, timeout=provider.timeout_s + self._settings.request_timeout_s
            )
        except (ActorStopped, AskTimeout) as exc:
            return ProviderReply(FailureKind.UNAVAILABLE.value, detail=str(exc))

    def _attempt(self, provider: ProviderSettings, tier: str, reply: ProviderReply, outcome: str, cost: int) -> Attempt:
        return Attempt(
            provider=provider.name, model=provider.model, tier=tier, outcome=outcome,
            detail=reply.detail, latency_s=reply.latency_s, queue_s=reply.queue_s,
            input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
            cost_nd=cost, http_status=reply.http_status,
        )

    def _exhausted(self, request: Request, progress: _Progress) -> Exception:
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
        return StrategyUnavailable(f"request {request.request_id}: no provider could serve it ({tried})")

    def _note_remaining(self, remaining_nd: int) -> None:
        limit = self._settings.ledger.limit_nd
        self._remaining_share = remaining_nd / limit if limit else 0.0

    def _emit(self, event: object) -> None:
        if self._telemetry is not None:
            self._telemetry.emit(event)

    def _publish(self, breaker: CircuitBreaker, before: int) -> None:
        for transition in list(breaker.transitions)[before:]:
            self._emit(ev.CircuitChanged(self._wall(), transition.provider, transition.old.value,
                                         transition.new.value, transition.reason))


def _temperature(request: Request, tier_default: float) -> float:
    return request.temperature if request.temperature is not None else tier_default
