"""The Orchestrator: the few entry points a caller needs.

    async with Orchestrator.start("configs/simulated.yaml") as orch:
        result = await orch.generate(Request(task=task))

`start` builds the actor system under one supervisor (ledger, cache, telemetry, one
actor per provider), starts the simulator when the configuration points at it, and
tears everything down on exit: no task outlives the `async with`. `BlockingOrchestrator`
offers the same to plain synchronous code (a GA loop) through an anyio blocking portal.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import orjson
from anyio.from_thread import BlockingPortal, start_blocking_portal

from actors.cache.client import CacheClient
from actors.errors import ActorStopped, AskTimeout, ConfigError, InvalidRequest, LedgerUnavailable, OrchestratorError
from actors.fileio import replace_durably
from actors.ledger.client import LedgerClient
from actors.messages import Request, Result
from actors.policy.online import OnlineLearner
from actors.router.router import Router
from actors.runtime.bridge import http_loop_for_current_backend
from actors.runtime.supervisor import Supervisor, sole_exception
from actors.settings import EngineSettings
from actors.telemetry import events as ev
from actors.telemetry.client import TelemetryClient
from actors.telemetry.replay import recorded_answers
from actors.validation import validate_feedback, whole_number
from orchestrator.assembly import TransportFactory, assemble, quiet_collector, resolve_simulator
from orchestrator.cascade import Verified, Verifier, generate_verified
from orchestrator.config import Config, default_config_path, load_config
from orchestrator.forecast import Forecast, Routed, TokenHistory, forecast

SIMULATOR_URL_ENV = "ORCHESTRATOR_SIMULATOR_URL"


class Orchestrator:
    """A running orchestrator; obtain one with `Orchestrator.start(...)`."""

    def __init__(
        self,
        config: Config,
        engine: EngineSettings,
        supervisor: Supervisor,
        router: Router,
        ledger: LedgerClient,
        cache: CacheClient | None,
        telemetry: TelemetryClient | None,
        simulator_url: str | None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.simulator_url = simulator_url
        self._supervisor = supervisor
        self._router = router
        self._ledger = ledger
        self._cache = cache
        self._telemetry = telemetry
        self._stopped = False

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        transport_factory: TransportFactory | None = None,
        environ: Mapping[str, str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        alert_callback: Callable[[ev.BudgetAlert], None] | None = None,
        replay_log: str | os.PathLike[str] | None = None,
        replay_passthrough: bool = False,
        freeze_gc: bool = False,
    ) -> AsyncIterator[Orchestrator]:
        """Start every actor; with `replay_log`, answer from that recorded run instead of providers.

        `freeze_gc` moves every object alive once the actors have started (the
        configuration, loaded tasks, the estimators' tables) out of the garbage
        collector's reach until the orchestrator stops, so its full collections stop
        walking them again and again (432 to 382 µs of CPU per request on the ARC
        benchmark, docs/BENCHMARKS.md), and collects the young generation every
        10,000 allocations instead of 700 (`assembly.quiet_collector`). Both are process-wide,
        so they are for processes the orchestrator owns (`orchestrator run` and `serve`
        set it); an application that embeds it may opt in, knowing that cycles among
        its own objects alive at that moment are not collected while it runs. At stop
        everything is thawed again, unless something else had frozen objects before
        (there is no partial thaw), and the thresholds are put back.
        """
        if not isinstance(config, Config):
            config = load_config(
                default_config_path() if config is None else Path(config),
                environ=environ,
                state_dir=state_dir,
            )
        env = os.environ if environ is None else environ
        if config.state_dir.exists() and not config.state_dir.is_dir():
            raise ConfigError(f"state directory {config.state_dir} is a file, not a directory (state_dir, --state-dir)")
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        http_loop = http_loop_for_current_backend()
        with contextlib.ExitStack() as resources:
            resources.callback(http_loop.close)
            simulator_url = None
            if config.uses_simulator:
                simulator_url = env.get(SIMULATOR_URL_ENV)
                if not simulator_url:
                    from orchestrator.simulator import SimulatorThread, simulator_settings_from_dict

                    sim = SimulatorThread(simulator_settings_from_dict(config.simulator or {}))
                    resources.enter_context(sim)
                    simulator_url = sim.url
            engine = resolve_simulator(config.engine, simulator_url)
            replay = None if replay_log is None else recorded_answers(replay_log)
            system = assemble(engine, http_loop, transport_factory, env, alert_callback)
            orch = cls(config, engine, system.supervisor, system.router, system.ledger, system.cache, system.telemetry,
                       simulator_url)
            orch._router.use_replay(replay, replay_passthrough)
            if orch._cache is not None:
                resources.callback(orch._cache.close)
            learned = _OnlineState(config.state_dir, orch._router.online)
            learned.load()
            resources.callback(learned.save)
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(orch._supervisor.run)
                    if orch._telemetry is not None:
                        tg.start_soon(orch._telemetry.run)
                    if freeze_gc:
                        quiet_collector(resources)
                    try:
                        yield orch
                    finally:
                        orch._stopped = True
                        with anyio.CancelScope(shield=True):
                            if orch._telemetry is not None:
                                orch._telemetry.close()
                                with anyio.move_on_after(10):
                                    await orch._telemetry.flush()
                            orch._supervisor.stop()
            except BaseExceptionGroup as group:
                sole = sole_exception(group)
                if sole is None:
                    raise
                raise sole from None

    def _running(self) -> None:
        """After the `async with` block, ActorStopped naming why: a generate failed on a stopped ledger
        (LedgerUnavailable, as if it were an outage) and a feedback was dropped without a word."""
        if self._stopped:
            raise ActorStopped("the orchestrator has stopped: its `async with Orchestrator.start(...)` block has ended")

    # -- generation ----------------------------------------------------------------------

    async def generate(self, request: Request) -> Result:
        """Route and serve one request; raises a typed OrchestratorError on failure."""
        self._running()
        return await self._router.generate(_request(request, "generate"))

    async def generate_batch(
        self,
        requests: Iterable[Request],
        *,
        concurrency: int | None = None,
        on_done: Callable[[int, Result | OrchestratorError], None] | None = None,
    ) -> list[Result | OrchestratorError]:
        """Serve many requests concurrently (bounded); one failure never cancels the others.

        The list is in request order; a failed request's slot holds its error. At most
        `concurrency` tasks serve the batch, each taking the next request when it is
        done with one: a task per request, parked on a semaphore, cost a population of
        thousands its spawning and the collector's walks over every parked task
        (docs/BENCHMARKS.md).
        """
        self._running()
        batch = _requests(requests, "generate_batch")
        workers = _concurrency(concurrency, self.engine.batch_concurrency)
        results: list[Result | OrchestratorError | None] = [None] * len(batch)
        pending = iter(enumerate(batch))

        async def serve() -> None:
            for index, request in pending:
                outcome: Result | OrchestratorError
                try:
                    outcome = await self._router.generate(request)
                except OrchestratorError as exc:
                    outcome = exc
                results[index] = outcome
                if on_done is not None:
                    on_done(index, outcome)

        async with anyio.create_task_group() as tg:
            for _ in range(min(len(batch), workers)):
                tg.start_soon(serve)
        return [r for r in results if r is not None]

    @contextlib.asynccontextmanager
    async def as_completed(
        self, requests: Iterable[Request], *, concurrency: int | None = None
    ) -> AsyncIterator[AsyncIterator[tuple[int, Result | OrchestratorError]]]:
        """Results as they complete, each with its index in `requests`:

            async with orch.as_completed(requests) as results:
                async for index, outcome in results: ...

        Leaving the block early cancels the requests still running (their money is
        settled or released by the attempt's rules).
        """
        self._running()
        batch = _requests(requests, "as_completed")
        _concurrency(concurrency, self.engine.batch_concurrency)
        send, receive = anyio.create_memory_object_stream[tuple[int, Result | OrchestratorError]](len(batch) or 1)

        async def produce() -> None:
            async with send:
                await self.generate_batch(batch, concurrency=concurrency, on_done=lambda i, o: send.send_nowait((i, o)))

        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(produce)
            try:
                yield receive
            finally:
                tg.cancel_scope.cancel()

    def decide(self, request: Request) -> Any:
        """The routing decision for a request, without serving it (no I/O, no money)."""
        decision, _, _ = self._router.decide(_request(request, "decide"))
        return decision

    def reload_router_model(self) -> None:
        """Route with the learned model file as it is now (after `orchestrator.refit` replaced it).

        Requests already decided keep their decision; ConfigError if the file cannot be
        read, and the model in use stays.
        """
        self._router.reload_estimator()

    def generation(self, generation: int) -> None:
        """Say which GA generation the requests from now on belong to, for `budget.pacing`'s allotments.

        A request's own `metadata.generation` (the evolution hooks set it) takes
        precedence. Without pacing it changes nothing.
        """
        if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation < 10**9:
            raise InvalidRequest(f"a generation is a whole number from 0, got {generation!r}")
        self._router.pacer.generation = generation

    # -- feedback and introspection ------------------------------------------------------

    def feedback(self, request_id: str, score: float) -> None:
        """Record the caller's score for a result (a GA's fitness, in [0, 1]): telemetry, and the
        online learner (`routing.online`) credits the tier that answered it. A score that is not a
        finite number, or an id that is not text, raises InvalidRequest and records nothing."""
        self._running()
        score = validate_feedback(request_id, score)
        if self._telemetry is not None:
            self._telemetry.emit(ev.FeedbackGiven(time.time(), request_id, score))
        self._router.observe(request_id, score)

    async def generate_verified(
        self,
        request: Request,
        verifier: Verifier,
        *,
        max_depth: int = 3,
        budget_nd: int | None = None,
        accept: float = 0.5,
        start_at_cheapest: bool = False,
        min_success: float | None = None,
    ) -> Verified:
        """Cheapest adequate tier first; escalate while `verifier` rejects (see orchestrator.cascade)."""
        self._running()
        return await generate_verified(self, _request(request, "generate_verified"), verifier, max_depth=max_depth, budget_nd=budget_nd,
                                       accept=accept, start_at_cheapest=start_at_cheapest, min_success=min_success)

    def health(self) -> dict[str, dict[str, object]]:
        """Each actor: running, circuit state, restarts and the last crash's cause."""
        return self._supervisor.health()

    def ready(self) -> tuple[bool, str]:
        """Whether requests can be served now, and why not: the ledger down, or every provider."""
        if not self._supervisor.available("ledger"):
            return False, "the budget ledger is unavailable: " + str(
                self._supervisor.health()["ledger"]["last_error"] or "starting"
            )
        if not any(self._supervisor.available(p.name) for p in self.engine.providers):
            return False, "no provider is available (every circuit is open or restarting)"
        return True, "ok"

    def routing_stats(self) -> dict[str, object]:
        return self._router.stats()

    async def cache_stats(self) -> Any:
        self._running()
        return None if self._cache is None else await self._cache.stats()

    async def forecast(self, requests: Sequence[Request]) -> Forecast:
        """What `requests` would cost, per tier, expected and worst case, before any is sent.

        Routed by this orchestrator's router as it stands (no call, no money); expected
        output lengths from its telemetry log (docs/LEDGER.md, "forecast").
        """
        self._running()
        routed = []
        for request in _requests(requests, "forecast"):
            decision, _, messages = self._router.decide(request)
            routed.append(Routed.of(self.engine, request, messages, decision.tier, decision.provider,
                                    decision.estimated_cost_nd))
        log_dir = self.engine.telemetry.dir
        if self._telemetry is not None:
            await self._telemetry.flush()
        history = TokenHistory() if log_dir is None else await anyio.to_thread.run_sync(TokenHistory.from_log, log_dir)
        status = await self.budget()
        return forecast(routed, history, limit_nd=status.limit_nd, remaining_nd=status.remaining_nd)

    async def budget(self) -> Any:
        """The ledger's status; raises LedgerUnavailable (never an actor-runtime error) when it cannot answer, and
        ActorStopped after the orchestrator's block has ended."""
        self._running()
        try:
            return await self._ledger.status()
        except (ActorStopped, AskTimeout) as exc:
            raise LedgerUnavailable(f"the budget ledger did not answer: {exc}") from exc


class _OnlineState:
    """The online learner's posterior, kept with the run's state (owner-only, written atomically)."""

    def __init__(self, state_dir: Path, learner: OnlineLearner | None) -> None:
        self.path = state_dir / "routing" / "online.json"
        self.learner = learner

    def load(self) -> None:
        if self.learner is None or not self.path.exists():
            return
        try:
            snapshot = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: cannot read the online learner's state ({exc}); move it aside") from None
        self.learner.restore(snapshot, str(self.path))

    def save(self) -> None:
        if self.learner is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_durably(self.path, orjson.dumps(self.learner.snapshot()))


def _request(value: object, where: str) -> Request:
    """A caller's mistake named where it is made, not an AttributeError from inside the router."""
    if not isinstance(value, Request):
        raise InvalidRequest(f"{where}: expected a Request (Request.prompt(text) or Request(task=...)), "
                             f"got {type(value).__name__}")
    return value


def _requests(values: Iterable[Request], where: str) -> list[Request]:
    """Every request checked before any is sent: a batch with a stray item fails whole, having spent nothing."""
    if isinstance(values, (Request, str, bytes)) or not isinstance(values, Iterable):
        raise InvalidRequest(f"{where}: expected an iterable of Requests, got {type(values).__name__}")
    return [_request(value, f"{where}: item {index}") for index, value in enumerate(values)]


def _concurrency(value: int | None, default: int) -> int:
    if value is None:
        return default
    return whole_number("concurrency", value, 1, f" (or None for the config's batch_concurrency, {default})")


class BlockingOrchestrator:
    """The Orchestrator for synchronous code: each call blocks until its answer.

        with BlockingOrchestrator.start("configs/simulated.yaml") as orch:
            result = orch.generate(Request(task=task))
    """

    def __init__(self, portal: BlockingPortal, orch: Orchestrator) -> None:
        self._portal = portal
        self._orch = orch
        self._stopped = False

    @classmethod
    @contextlib.contextmanager
    def start(cls, config: Config | str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        with start_blocking_portal(backend="asyncio") as portal:
            with portal.wrap_async_context_manager(Orchestrator.start(config, **kwargs)) as orch:
                blocking = cls(portal, orch)
                try:
                    yield blocking
                finally:
                    blocking._stopped = True

    def _running(self) -> None:
        """After the `with` block, ActorStopped rather than the portal's RuntimeError, which named neither the
        orchestrator nor why."""
        if self._stopped:
            raise ActorStopped("the orchestrator has stopped: its `with BlockingOrchestrator.start(...)` block has ended")

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        self._running()
        return self._portal.call(function, *args)

    def generate(self, request: Request) -> Result:
        return self._call(self._orch.generate, request)

    def generate_batch(
        self,
        requests: Sequence[Request],
        concurrency: int | None = None,
        on_done: Callable[[int, Result | OrchestratorError], None] | None = None,
    ) -> list[Result | OrchestratorError]:
        return self._call(lambda: self._orch.generate_batch(requests, concurrency=concurrency, on_done=on_done))

    def generate_verified(self, request: Request, verifier: Verifier, **options: Any) -> Verified:
        return self._call(lambda: self._orch.generate_verified(request, verifier, **options))

    def decide(self, request: Request) -> Any:
        return self._call(self._orch.decide, request)

    def iter_completed(
        self, requests: Iterable[Request], concurrency: int | None = None
    ) -> Iterator[tuple[int, Result | OrchestratorError]]:
        """Results as they complete, each with its index, for synchronous code.

        A batch refused whole (InvalidRequest) raises here rather than leave the loop
        waiting for results that will not come; leaving the loop early cancels the
        requests still running (their money settled or released by the attempt's rules).
        """
        self._running()
        done: queue.Queue[tuple[int, Result | OrchestratorError] | None] = queue.Queue()

        async def produce() -> None:
            try:
                await self._orch.generate_batch(requests, concurrency=concurrency, on_done=lambda i, o: done.put((i, o)))
            finally:
                done.put(None)

        future = self._portal.start_task_soon(produce)
        try:
            while (item := done.get()) is not None:
                yield item
            future.result()
        finally:
            if not future.done():
                future.cancel()

    def feedback(self, request_id: str, score: float) -> None:
        self._call(self._orch.feedback, request_id, score)

    def reload_router_model(self) -> None:
        """Route with the learned model file as it is now (after `orchestrator.refit` replaced it).

        Requests already decided keep their decision; ConfigError if the file cannot be
        read, and the model in use stays.
        """
        self._call(self._orch.reload_router_model)

    def generation(self, generation: int) -> None:
        self._call(self._orch.generation, generation)

    def health(self) -> dict[str, dict[str, object]]:
        return self._call(self._orch.health)

    def routing_stats(self) -> dict[str, object]:
        return self._call(self._orch.routing_stats)

    def cache_stats(self) -> Any:
        return self._call(self._orch.cache_stats)

    def budget(self) -> Any:
        return self._call(self._orch.budget)
