"""The router: turn a request into a decision, then drive it to a result.

The workflow runs in the caller's own task (replay or cache → the fallback chain of
attempts → cache store), so one request never waits behind another and a caller's
cancellation reaches exactly its own request. Money moves only inside an attempt
(`attempt.py`, with its release/settle/hold table); which attempt comes next is the
fallback chain's (`fallback.py`); every step is reported to telemetry.

Request ids are the caller's: a request whose id is already in flight with a
different request is refused for that caller alone (`DuplicateRequest`); the same
request sent twice at once joins the first (one upstream call, both callers get
its result). Reservation ids are the engine's own, so reused request ids can never
collide in the ledger.
"""

from __future__ import annotations

import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping

import anyio
import attrs

from actors.cache.client import CacheClient
from actors.cache.key import CacheKeys
from actors.errors import DuplicateRequest, InvalidRequest, NotRecorded, OrchestratorError, StrategyUnavailable
from actors.ledger.client import LedgerClient
from actors.ledger.messages import ReserveReply
from actors.ledger.pricing import prompt_token_estimate, prompt_token_upper_bound
from actors.memo import ContentMemo
from actors.messages import ArcTask, Attempt, CachePolicy, ChatMessage, Decision, Estimate, Request, Result
from actors.policy.arc_features import validate as validate_task
from actors.policy.estimators import RULE_ESTIMATORS, Estimator, build_estimator
from actors.policy.experiments import arm_for
from actors.policy.online import OnlineLearner
from actors.policy.prompts import render_arc_prompt
from actors.policy.settings import EstimatorSettings
from actors.policy.value import pacing_scale, prices_by_level
from actors.providers.messages import ProviderReply
from actors.router.attempt import AttemptRunner, Plan
from actors.router.fallback import Candidate, Chain, FallbackChain, Progress, exhausted
from actors.router.pacing import Pacer
from actors.router.selection import RoutingContext, Selection, select, tier_for_level
from actors.runtime.actor import ActorRef
from actors.runtime.circuits import Circuits
from actors.runtime.clock import current_time
from actors.settings import EngineSettings
from actors.telemetry import events as ev
from actors.telemetry.client import TelemetryClient

PROMPT_MEMO = 4096
PACED_GENERATIONS_KEPT = 2
"""Generations' shares kept this far behind the latest booked (stragglers of a finished generation)."""
SAMPLE_MEMO = 100_000
"""Distinct requests whose sample numbers are remembered; an older one starts again at sample 0."""


@attrs.define
class _Flight:
    """A request in flight, for callers that send the same request again before it ends.

    The event is made only when someone waits: nearly every flight ends unjoined, and
    two events per request were a measurable share of its CPU.
    """

    request: Request
    result: Result | None = None
    error: OrchestratorError | None = None
    _ended: bool = False
    _done: anyio.Event | None = None

    async def wait(self) -> None:
        if self._ended:
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def end(self) -> None:
        self._ended = True
        if self._done is not None:
            self._done.set()


@attrs.define
class _Trace:
    """What a request went through, for the one telemetry record written when it ends."""

    received_at: float
    decision: Decision | None = None
    cache_hit: bool | None = None
    reservations: list[ev.ReservationDecided] = attrs.Factory(list)
    attempts: list[Attempt] = attrs.Factory(list)


class Router:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        ledger: LedgerClient,
        providers: Mapping[str, ActorRef],
        circuits: Circuits,
        cache: CacheClient | None,
        telemetry: TelemetryClient | None,
        clock: Callable[[], float] = current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._replay: Mapping[str, Result] | None = None
        self._replay_passthrough = False
        self._provider_settings = {p.name: p for p in settings.providers}
        self._entry_names = {entry: f"{entry[0]}/{entry[1]}" for tier in settings.router.tiers for entry in tier.entries}
        """Each (tier, provider) as a decision's alternatives name it, made once."""
        self._paid = [t for t in settings.router.tiers if not t.local]
        self._online = (
            OnlineLearner(settings.router.online, [t.name for t in self._paid], settings.rng_seed)
            if settings.router.online.enabled else None
        )
        self._prices = prices_by_level(settings.router, self._provider_settings)
        self.pacer = Pacer(settings.router.selection.stagnation_threshold)
        self._generation_share: dict[int, float] = {}
        """Per paced generation, the share of its allotment (carry-over included) left at its last booking."""
        self._estimator = self._build_estimator(settings.router.estimator)
        self._experiments = settings.router.experiments
        self._arms = tuple(
            (arm.name, self._build_estimator(arm.estimator))
            for arm in (self._experiments.arms if self._experiments else ())
        )
        self._circuits = circuits
        self._cache = cache
        self._telemetry = telemetry
        self._clock = clock
        self._wall = wall_clock
        self._tiers = {tier.name: tier for tier in settings.router.tiers}
        self._remaining_share = 1.0
        self._prompts: ContentMemo[tuple[ChatMessage, ...]] = ContentMemo(PROMPT_MEMO)
        self._checked: ContentMemo[bool] = ContentMemo(PROMPT_MEMO)
        self._keys = CacheKeys()
        self._in_flight: dict[str, _Flight] = {}
        self._traces: dict[str, _Trace] = {}
        self._same_sample: dict[str, _Flight] = {}
        self._samples: OrderedDict[str, int] = OrderedDict()
        self._attempts = runner = AttemptRunner(
            ledger, dict(providers), circuits, margin_ppm=settings.ledger.safety_margin_ppm,
            budget_wait_s=settings.ledger.wait_s, clock=clock,
            on_reserved=self._reserved, pace=self.pacer.pace if settings.ledger.pacing is not None else None,
        )
        self._chain = FallbackChain(
            runner, settings.retry, random.Random(settings.rng_seed),
            downgrade_on_budget=settings.router.selection.downgrade_on_budget, clock=clock,
            on_attempt=self._attempted, on_fallback=self._fell_back, on_auth_failure=self._auth_failed,
        )
        self._levels = tuple(level for level, _ in settings.router.estimator.thresholds)
        self._skip_pinned = self._online is None and all(
            isinstance(e, RULE_ESTIMATORS) for e in (self._estimator, *(e for _, e in self._arms)))
        self._level_of_model = {
            key: tier.level for tier in reversed(settings.router.tiers) for name in tier.providers
            for key in (name, self._provider_settings[name].model)
        }
        self.levels: Counter[str] = Counter()
        self.tiers_used: Counter[str] = Counter()
        self._confidence_sum = 0.0
        self._decisions = 0
        self._model_reloads = 0
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
        if request.task is not None:
            self._check(request.task)
        arm, estimator = ("", self._estimator) if self._experiments is None else self._arms[
            arm_for(self._experiments, request)]
        estimate = self._pinned(request) or self._learned(estimator.estimate(request), request)
        messages = request.messages or self._prompt_for(request.task)
        if not messages:
            raise InvalidRequest(f"request {request.request_id}: has neither messages nor a task")
        context = RoutingContext(
            available=self._circuits.available(),
            remaining_share=self._share_left(request),
            providers=self._provider_settings,
            prompt_tokens=prompt_token_upper_bound(messages),
            prompt_tokens_estimate=prompt_token_estimate(messages),
            margin_ppm=self._settings.ledger.safety_margin_ppm,
            retry_after=self._circuits.retry_after,
        )
        selection = select(estimate, request, self._settings.router, context)
        decision = Decision(
            tier=selection.tier,
            model=self._provider_settings[selection.provider].model,
            provider=selection.provider,
            alternatives=tuple(map(self._entry_names.__getitem__, selection.alternatives)),
            score=estimate.score,
            level=estimate.level,
            confidence=estimate.confidence,
            reasons=estimate.reasons + selection.reasons,
            features=estimate.features,
            estimated_cost_nd=selection.estimated_cost_nd,
            arm=arm,
        )
        return decision, selection, messages

    def observe(self, request_id: str, score: float) -> bool:
        """Feedback for a result: the online learner credits the tier that answered it."""
        return self._online is not None and self._online.observe(request_id, score)

    def reload_estimator(self) -> None:
        """Build the configured estimator again (a learned model file replaced by a refit).

        The new estimator is built whole before it replaces the old one in a single
        assignment, so a decision uses one model or the other, never a mix; a model file
        that cannot be read raises ConfigError and leaves the old estimator routing.
        """
        self._estimator = self._build_estimator(self._settings.router.estimator)
        self._model_reloads += 1

    def _build_estimator(self, settings: EstimatorSettings) -> Estimator:
        scale = self._paced_lambda_scale if settings.value_lambda_paced else None
        return build_estimator(settings, self._prices, self._online, scale)

    def _paced_lambda_scale(self, request: Request) -> float:
        """λ's multiplier for the request's generation, from the last reservation booked in it (1 before any)."""
        return pacing_scale(self._share_left(request))

    def _share_left(self, request: Request) -> float:
        """The budget share budget pressure and paced λ go by: the request's generation's, when it is paced.

        A reservation's reply says what is left in its tightest scope; for a paced
        generation that is (usually) its allotment, which says nothing of another
        generation's, so each generation's share is kept apart.
        """
        if self._settings.ledger.pacing is None:
            return self._remaining_share
        generation, _ = self.pacer.pace(request)
        if generation < 0:
            return self._remaining_share
        return min(self._remaining_share, self._generation_share.get(generation, 1.0))

    @property
    def online(self) -> OnlineLearner | None:
        return self._online

    async def generate(self, request: Request) -> Result:
        """Serve one request; the same request already in flight is joined, a different one refused."""
        flight = self._in_flight.get(request.request_id)
        if flight is not None:
            return await self._join(flight, request)
        flight = _Flight(request)
        self._in_flight[request.request_id] = flight
        try:
            flight.result = await self._generate(request)
            return flight.result
        except OrchestratorError as exc:
            flight.error = exc
            raise
        except BaseException:
            flight.error = StrategyUnavailable(
                f"request {request.request_id}: the call it joined was abandoned by its first caller"
            )
            raise
        finally:
            del self._in_flight[request.request_id]
            flight.end()

    def stats(self) -> dict[str, object]:
        return {
            "decisions": self._decisions,
            "levels": dict(self.levels),
            "tiers": dict(self.tiers_used),
            "average_confidence": self._confidence_sum / self._decisions if self._decisions else 0.0,
            "results": self._results,
            "errors": dict(self.errors),
            "cost_nd": self._cost_nd,
            "in_flight": len(self._in_flight),
            "online": None if self._online is None else self._online.statistics(),
            "model_reloads": self._model_reloads,
            "late_answers": dict(self._attempts.late_closed),
        }

    # -- workflow ------------------------------------------------------------------------

    async def _join(self, flight: _Flight, request: Request) -> Result:
        if flight.request != request:
            raise DuplicateRequest(
                f"request id {request.request_id!r} is already in flight with a different request; "
                "request ids must be unique among requests in flight"
            )
        await flight.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result

    async def _generate(self, request: Request) -> Result:
        started = self._clock()
        trace = None
        if self._telemetry is not None:
            trace = self._traces[request.request_id] = _Trace(self._wall())
        try:
            decision, selection, messages = self.decide(request)
            self._count(decision)
            if trace is not None:
                trace.decision = decision
            result = await self._serve(request, decision, selection, messages, started)
        except Exception as exc:
            code = getattr(exc, "code", "INTERNAL_ERROR")
            self.errors[code] += 1
            self._served(request, trace, None, code, str(exc))
            raise
        except BaseException:
            self._served(request, trace, None, ended=False)
            raise
        finally:
            if trace is not None:
                del self._traces[request.request_id]
        self._results += 1
        self._cost_nd += result.cost_nd
        if self._online is not None and not result.cached:
            self._online.answered(request.request_id, self._online.band(decision.score), result.tier)
        self._served(request, trace, result)
        return result

    def _served(
        self, request: Request, trace: _Trace | None, result: Result | None,
        error_code: str = "", error: str = "", *, ended: bool = True,
    ) -> None:
        """The request's one telemetry record (events.RequestServed)."""
        if trace is None or self._telemetry is None:
            return
        decision = None if result is not None and result.decision == trace.decision else trace.decision
        self._telemetry.defer(ev.RequestServed(
            self._wall(), trace.received_at, request, decision, trace.cache_hit, tuple(trace.reservations),
            () if result is not None else tuple(trace.attempts), result, error_code, error, ended,
        ))

    def _pinned(self, request: Request) -> Estimate | None:
        """A request pinned to a tier or model goes there whatever it scores: it is not estimated.

        Unless the score still serves: the online learner files the answer under the
        score's band, and a learned estimator's predictions (`p_success:` features) let
        a verifier cascade skip a stage predicted to fail.
        """
        if request.tier is None and request.model is None or not self._skip_pinned:
            return None
        if request.tier is not None:
            level = self._tiers[request.tier].level if request.tier in self._tiers else ""
            return Estimate(0.0, level, 1.0, (f"pinned to tier {request.tier}: not estimated",))
        return Estimate(0.0, self._level_of_model.get(request.model or "", ""), 1.0,
                        (f"pinned to model {request.model}: not estimated",))

    def _learned(self, estimate: Estimate, request: Request) -> Estimate:
        """The estimate, its level moved by the online learner when the request does not pin a tier.

        An estimate that ranks every level (routing by value) already used the learner's posterior.
        """
        if self._online is None or request.tier is not None or request.model is not None or estimate.ranking:
            return estimate
        static = self._paid[tier_for_level(estimate.level, self._settings.router.tiers, self._levels)].name
        choice = self._online.choose(estimate.score, static)
        if not choice.why or choice.tier == static:
            return estimate
        return attrs.evolve(estimate, level=self._tiers[choice.tier].level, reasons=estimate.reasons + (choice.why,))

    def _check(self, task: ArcTask) -> None:
        """Refuse a malformed task (InvalidRequest naming its grid), once per task: whether it is estimated (its
        features assume a valid task) or pinned to a tier and only rendered, it never reaches a provider."""
        if self._checked.get(task) is None:
            validate_task(task)
            self._checked.put(task, True)

    def _prompt_for(self, task: ArcTask | None) -> tuple[ChatMessage, ...]:
        """The rendered prompt of a task, memoised: a GA asks about the same tasks again and again."""
        if task is None:
            return ()
        prompt = self._prompts.get(task)
        if prompt is None:
            prompt = render_arc_prompt(task)
            self._prompts.put(task, prompt)
        return prompt

    def _count(self, decision: Decision) -> None:
        self._decisions += 1
        self.levels[decision.level] += 1
        self.tiers_used[decision.tier] += 1
        self._confidence_sum += decision.confidence

    def _deadline(self, request: Request, started: float) -> float:
        return started + (request.deadline_s or self._settings.request_deadline_s)

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

        def key_for(model: str, sample: int) -> str:
            return self._keys.key(
                model,
                messages,
                temperature=temperature,
                top_p=request.top_p,
                max_tokens=max_tokens,
                stop=request.stop,
                sample_index=sample,
            )

        sample = self._sample_for(request, lambda: key_for(decision.model, -1), temperature)
        key = key_for(decision.model, sample)
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
        if request.cache is not CachePolicy.USE:
            return await self._answer(request, decision, selection, messages, started, key, sample, key_for, temperature)
        flight = self._same_sample.get(key)
        if flight is not None:
            await flight.wait()
            if flight.result is not None:
                return attrs.evolve(
                    flight.result, request_id=request.request_id, decision=decision, cost_nd=0, cached=True,
                    saved_nd=flight.result.cost_nd, latency_s=self._clock() - started, attempts=(),
                )
        flight = _Flight(request)
        self._same_sample[key] = flight
        try:
            flight.result = await self._answer(
                request, decision, selection, messages, started, key, sample, key_for, temperature
            )
            return flight.result
        finally:
            del self._same_sample[key]
            flight.end()

    async def _answer(
        self,
        request: Request,
        decision: Decision,
        selection: Selection,
        messages: tuple[ChatMessage, ...],
        started: float,
        key: str,
        sample: int,
        key_for: Callable[[str, int], str],
        temperature: float,
    ) -> Result:
        """The cache, else the fallback chain; the answer is stored for the next identical sample."""
        similar_text = messages[-1].content if request.allow_similar else None
        if self._cache is not None and request.cache is CachePolicy.USE:
            hit = await self._cache.lookup(key, kind=request.kind, tier=decision.tier, similar_text=similar_text)
            trace = self._traces.get(request.request_id)
            if trace is not None:
                trace.cache_hit = hit is not None
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
                    sample_index=sample,
                )
        def candidate(tier_name: str, provider_name: str) -> Candidate:
            return Candidate(
                tier_name, self._provider_settings[provider_name],
                request.max_tokens or self._tiers[tier_name].max_tokens,
                temperature if tier_name == selection.tier else _temperature(request, self._tiers[tier_name].temperature),
            )

        chain = Chain(((selection.tier, selection.provider),) + selection.alternatives, candidate)
        progress = Progress()
        answered = await self._chain.serve(request, chain, messages, self._deadline(request, started), progress)
        if answered is None:
            raise exhausted(request, progress, self._circuits.retry_after(name for _, name in chain.entries))
        candidate, reply = answered
        result = self._result(request, decision, candidate, reply, progress, started, key, sample)
        if self._cache is not None and request.cache is not CachePolicy.OFF:
            stored_key = key if result.model == decision.model else key_for(result.model, sample)
            await self._cache.store(
                stored_key, kind=request.kind, tier=result.tier, model=result.model,
                provider=result.provider, text=result.text,
                input_tokens=result.input_tokens, output_tokens=result.output_tokens,
                cost_nd=result.cost_nd, ttl_s=request.cache_ttl_s, similar_text=similar_text,
            )
        return result

    def _result(
        self, request: Request, decision: Decision, candidate: Candidate, reply: ProviderReply,
        progress: Progress, started: float, key: str, sample: int,
    ) -> Result:
        return Result(
            request_id=request.request_id, text=reply.text, tier=candidate.tier, model=candidate.provider.model,
            provider=candidate.provider.name, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
            cost_nd=sum(a.cost_nd for a in progress.attempts), latency_s=self._clock() - started,
            decision=decision, attempts=tuple(progress.attempts),
            queue_s=sum(a.queue_s for a in progress.attempts), cache_key=key,
            finish_reason=reply.finish_reason, sample_index=sample,
        )

    def _sample_for(self, request: Request, identity: Callable[[], str], temperature: float) -> int:
        """Which sample this is: explicit, 0 at temperature 0, else the next unseen one in this run."""
        if request.sample_index is not None:
            return request.sample_index
        if not temperature:
            return 0
        key = identity()
        sample = self._samples.pop(key, 0)
        self._samples[key] = sample + 1
        if len(self._samples) > SAMPLE_MEMO:
            self._samples.popitem(last=False)
        return sample

    # -- what the attempts report ------------------------------------------------------------

    def _reserved(self, plan: Plan, reservation_id: str, amount: int, reply: ReserveReply,
                  pace: tuple[int, str]) -> None:
        pacing = self._settings.ledger.pacing
        generation = pace[0]
        if pacing is not None and generation >= 0:
            allotment = pacing.allotment(generation)
            self._generation_share[generation] = reply.remaining_nd / allotment if allotment else 0.0
            for stale in [g for g in self._generation_share if g < generation - PACED_GENERATIONS_KEPT]:
                del self._generation_share[stale]
        else:
            limit = self._settings.ledger.limit_nd
            self._remaining_share = reply.remaining_nd / limit if limit else 0.0
        trace = self._traces.get(plan.request.request_id)
        if trace is not None:
            trace.reservations.append(ev.ReservationDecided(
                self._wall(), plan.request.request_id, reservation_id, plan.tier, plan.provider.model,
                reply.granted, amount, reply.remaining_nd, reply.waited_s, *pace,
            ))

    def _attempted(self, request: Request, attempt_no: int, attempt: Attempt) -> None:
        trace = self._traces.get(request.request_id)
        if trace is not None:
            trace.attempts.append(attempt)

    def _fell_back(self, request: Request, from_provider: str, to_provider: str, why: str) -> None:
        self._emit(ev.FallbackTaken(self._wall(), request.request_id, from_provider, to_provider, why))

    def _auth_failed(self, provider: str, detail: str) -> None:
        self._circuits.disable(provider, f"authentication failed: {detail}")

    def _emit(self, event: object) -> None:
        if self._telemetry is not None:
            self._telemetry.emit(event)


def _temperature(request: Request, tier_default: float) -> float:
    return request.temperature if request.temperature is not None else tier_default
