"""The parts of the orchestrator a benchmark can switch off: the cache, the telemetry log, the ledger journal."""

from __future__ import annotations

import attrs

from orchestrator.config import Config

VARIANTS = {  # name: (cache, telemetry, journal)
    "full": (True, True, True),
    "no telemetry": (True, False, True),
    "no cache": (False, True, True),
    "no journal": (True, True, False),
    "none of the three": (False, False, False),
}


def with_parts(config: Config, parts: tuple[bool, bool, bool], concurrency: int) -> Config:
    """`config` with the cache, the telemetry log and the ledger journal on or off, providers at `concurrency`."""
    cache, telemetry, journal = parts
    engine = config.engine
    engine = attrs.evolve(
        engine,
        providers=tuple(attrs.evolve(p, max_concurrency=concurrency) for p in engine.providers),
        cache=attrs.evolve(engine.cache, enabled=cache),
        telemetry=attrs.evolve(engine.telemetry, dir=engine.telemetry.dir if telemetry else None),
        ledger=attrs.evolve(engine.ledger, journal_path=engine.ledger.journal_path if journal else None),
    )
    return attrs.evolve(config, engine=engine)
