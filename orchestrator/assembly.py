"""The actor system behind an Orchestrator: which actors, how they are wired, what the process tunes.

`orchestrator/api.py` holds the API; this module builds what it drives: one
supervisor over the ledger (the shared PostgreSQL book or this process's journal),
the cache, the telemetry collector and one actor per provider, and the router wired to
their addresses. It also resolves `simulator:` endpoints to a running simulator and
quiets the garbage collector for processes the orchestrator owns.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Mapping

import attrs

from actors.cache.actor import CacheActor
from actors.cache.client import CacheClient
from actors.catalog import engine_codec
from actors.ledger.actor import LedgerActor, StorageFactory, file_storage_factory
from actors.ledger.client import LedgerClient
from actors.ledger.journal import MemoryStorage
from actors.ledger.pg_actor import PostgresLedgerActor
from actors.ledger.postgres import new_owner
from actors.ledger.settings import LedgerSettings
from actors.providers.actor import ProviderActor
from actors.providers.settings import ProviderSettings
from actors.providers.transport import AiohttpTransport, Transport
from actors.router.router import Router
from actors.runtime.actor import Actor
from actors.runtime.breaker import Transition
from actors.runtime.bridge import HttpLoop
from actors.runtime.clock import loop_clock
from actors.runtime.supervisor import Supervisor
from actors.settings import EngineSettings
from actors.telemetry import events as ev
from actors.telemetry.client import TelemetryClient
from actors.telemetry.collector import TelemetryCollector
from orchestrator.config import SIMULATOR_SCHEME

TransportFactory = Callable[[ProviderSettings, HttpLoop], Transport]
LEDGER_ASK_TIMEOUT_S = 60.0
"""No ledger answer takes this long unless the ledger is stuck; the request then fails alone."""


@attrs.frozen
class System:
    supervisor: Supervisor
    router: Router
    ledger: LedgerClient
    cache: CacheClient | None
    telemetry: TelemetryClient | None


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between young-generation collections while `freeze_gc` holds (CPython's default: 700)."""


def quiet_collector(resources: contextlib.ExitStack) -> None:
    """Freeze what start-up made and collect the young generation less often, both undone at stop.

    With a hundred requests in flight, a young collection finds most of what it walks
    still alive (messages, futures, HTTP state), promotes it, and walks it again in the
    older generations: at CPython's threshold of 700 the collector took about 60 µs of
    each request's CPU on the ARC benchmark, at 10,000 about 20 (docs/BENCHMARKS.md).
    Cycles are still collected, in pauses of about a millisecond.
    """
    thaw = gc.get_freeze_count() == 0
    gc.collect()
    gc.freeze()
    if thaw:
        resources.callback(gc.unfreeze)
    resources.callback(gc.set_threshold, *gc.get_threshold())
    young, *older = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_COLLECTION_THRESHOLD), *older)


def resolve_simulator(engine: EngineSettings, url: str | None) -> EngineSettings:
    if url is None:
        return engine
    base = url.rstrip("/")
    providers = tuple(
        attrs.evolve(p, base_url=base + p.base_url[len(SIMULATOR_SCHEME):], api_key_env=None)
        if p.base_url.startswith(SIMULATOR_SCHEME)
        else p
        for p in engine.providers
    )
    return attrs.evolve(engine, providers=providers)


def assemble(
    engine: EngineSettings,
    http_loop: HttpLoop,
    transport_factory: TransportFactory | None,
    env: Mapping[str, str],
    alert_callback: Callable[[ev.BudgetAlert], None] | None,
) -> System:
    """Every actor under one supervisor, and the router wired to them; nothing runs until the supervisor does."""
    telemetry_holder: list[TelemetryClient] = []

    def emit(event: object) -> None:
        if telemetry_holder:
            telemetry_holder[0].emit(event)

    def on_transition(transition: Transition) -> None:
        emit(ev.CircuitChanged(time.time(), transition.provider, transition.old.value,
                               transition.new.value, transition.reason))

    clock = loop_clock()
    supervisor = Supervisor(engine_codec(), clock=clock, on_transition=on_transition)
    telemetry = None
    if engine.telemetry.dir is not None:
        settings = engine.telemetry
        telemetry = TelemetryClient(
            supervisor.add("telemetry", lambda: TelemetryCollector(settings), capacity=settings.buffer_events)
        )
        telemetry_holder.append(telemetry)
    ledger = LedgerClient(
        supervisor.add("ledger", _ledger_factory(engine.ledger, emit, alert_callback)), timeout=LEDGER_ASK_TIMEOUT_S
    )
    cache = None
    if engine.cache.enabled:
        cache = CacheClient(supervisor.add("cache", lambda: CacheActor(engine.cache)), path=engine.cache.path)
    make_transport = transport_factory or AiohttpTransport
    providers = {}
    for provider in engine.providers:
        providers[provider.name] = supervisor.add(
            provider.name,
            _provider_factory(provider, make_transport, http_loop, engine, dict(env), clock),
            engine.breaker,
        )
    try:
        router = Router(
            engine,
            ledger=ledger,
            providers=providers,
            circuits=supervisor.circuits(tuple(providers)),
            cache=cache,
            telemetry=telemetry,
            clock=clock,
        )
    except BaseException:
        supervisor.dispose()  # a routing model that does not load: the inboxes made so far are released, not leaked
        raise
    return System(supervisor, router, ledger, cache, telemetry)


def _ledger_factory(
    settings: LedgerSettings,
    emit: Callable[[object], None],
    alert_callback: Callable[[ev.BudgetAlert], None] | None,
) -> Callable[[], Actor]:
    """The ledger actor: the shared PostgreSQL ledger, or this process's journal (or memory)."""
    if settings.backend == "postgres":
        owner = new_owner()
        return lambda: PostgresLedgerActor(settings, on_event=emit, alert_callback=alert_callback, owner=owner)
    storage = _ledger_storage(settings)
    return lambda: LedgerActor(settings, on_event=emit, alert_callback=alert_callback, storage_factory=storage)


def _ledger_storage(settings: LedgerSettings) -> StorageFactory:
    """The journal on disk, or (with `journal: false`) memory that outlives every restart of the actor."""
    on_disk = file_storage_factory(settings)
    if on_disk is not None:
        return on_disk
    memory = MemoryStorage()
    return lambda: memory


def _provider_factory(
    provider: ProviderSettings,
    make_transport: TransportFactory,
    http_loop: HttpLoop,
    engine: EngineSettings,
    env: dict[str, str],
    clock: Callable[[], float],
) -> Callable[[], ProviderActor]:
    def make() -> ProviderActor:
        return ProviderActor(
            provider,
            make_transport(provider, http_loop),
            failures_to_crash=engine.breaker.failures_to_crash,
            clock=clock,
            environ=env,
        )

    return make
