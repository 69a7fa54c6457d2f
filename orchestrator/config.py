"""Load a YAML configuration into the engine's frozen settings classes.

The file format is the ARC story's `llm_routing` document, extended: a tier may list
several `providers` (each with its protocol, endpoint, model and key variable) and the
optional sections `budget`, `routing`, `retry`, `circuit`, `cache`, `telemetry` and
`simulator` tune the rest. `extends: other.yaml` deep-merges this file over another.
`${VAR}` and `${VAR:-default}` are replaced from the environment before parsing
values; a missing variable without a default is an error naming it. An endpoint of
the form `simulator:/v1` points at the shipped simulator (started in-process, or
the one at $ORCHESTRATOR_SIMULATOR_URL).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from actors.errors import ConfigError
from actors.policy.settings import (
    RouterSettings,
)
from actors.settings import EngineSettings
from orchestrator import config_sections as sections
from orchestrator.config_sections import SIMULATOR_SCHEME
from orchestrator.configdoc import read_document
from orchestrator.platforms import PLATFORMS, Platform, adapt, detect, state_dir_for
from orchestrator.yamlnode import Node


@attrs.frozen
class Config:
    """A loaded configuration: the engine's settings plus what only the face needs."""

    source: str
    engine: EngineSettings
    state_dir: Path
    fingerprint: str
    simulator: dict[str, Any] | None = None
    monitoring: dict[str, Any] = attrs.field(factory=dict)
    optional_tiers: frozenset[str] = frozenset()
    """Tiers marked `optional: true`: left out with a warning when their key or endpoint is missing at start."""
    platform: Platform | None = None
    """Where it runs, why that was decided, and what the platform changed."""

    @property
    def uses_simulator(self) -> bool:
        return any(p.base_url.startswith(SIMULATOR_SCHEME) for p in self.engine.providers)


SHIPPED = Path(__file__).resolve().parent / "configs"
"""The configurations shipped with the package (the project's configs/, installed as package data)."""
STATE_DIR_ENV = "ORCHESTRATOR_STATE_DIR"


def default_config_path() -> Path:
    """The shipped simulated.yaml, wherever the package is installed and whatever the working directory."""
    return SHIPPED / "simulated.yaml"


def resolve_config_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A path as given, or the name of a shipped configuration (`simulated`, `llm_routing`, ...)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    shipped = SHIPPED / f"{path}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.yaml")))
    raise ConfigError(f"{name_or_path}: no such configuration file, and no shipped configuration of that name ({names})")


def default_state_dir(env: Mapping[str, str]) -> Path:
    """$ORCHESTRATOR_STATE_DIR, else $XDG_STATE_HOME/llm-orchestrator, else ~/.local/state/llm-orchestrator.

    One place per user, whatever the working directory: two runs from two directories
    share one ledger (one budget), as they must.
    """
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "llm-orchestrator"


def _check_platforms(platforms: object, file: str) -> None:
    """`platforms:` maps platform names to configuration overrides; a list or a string was an unexpected TypeError
    or a message listing the string's letters as unknown platforms."""
    if platforms is None:
        return
    if not isinstance(platforms, dict):
        raise ConfigError(f"{file}: platforms: must map platform names ({', '.join(PLATFORMS)}) to overrides, "
                          f"got {type(platforms).__name__}")
    unknown = sorted(str(name) for name in platforms if name not in PLATFORMS)
    if unknown:
        raise ConfigError(f"{file}: platforms: {', '.join(unknown)}: not one of {', '.join(PLATFORMS)}")
    for name, overrides in platforms.items():
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError(f"{file}: platforms.{name}: must be a mapping of configuration keys, "
                              f"got {type(overrides).__name__}")


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    platform: str | None = None,
) -> Config:
    """`platform` forces a platform profile (`orchestrator/platforms.py`); by default it is detected."""
    env = os.environ if environ is None else environ
    path = resolve_config_path(path)
    file = str(path)
    document = read_document(path, env)
    _check_platforms(document.get("platforms"), file)
    document, where = adapt(document, detect(env, platform), SIMULATOR_SCHEME)
    root = Node(document, file)
    root.reject_unknown({"llm_routing"})
    routing = root.get("llm_routing")
    routing.reject_unknown(
        {
            "complexity_detection",
            "model_tiers",
            "optimization",
            "monitoring",
            "budget",
            "routing",
            "retry",
            "circuit",
            "cache",
            "telemetry",
            "simulator",
            "state_dir",
        }
    )
    if state_dir is not None:
        state = Path(state_dir)
    elif env.get(STATE_DIR_ENV):
        state = Path(env[STATE_DIR_ENV])
    elif routing.has("state_dir"):
        configured = routing.get("state_dir")
        state = Path(configured.file).parent / configured.text()
    elif (on_platform := state_dir_for(where)) is not None:
        state = on_platform
        where = attrs.evolve(where, notes=(*where.notes, f"state directory {state}"))
    else:
        state = default_state_dir(env)
    state = state.absolute()
    optimization = routing.get("optimization", {})
    optimization.reject_unknown(
        {
            "cache_similarity_threshold",
            "budget_limit",
            "budget_warning_threshold",
            "batch_size",
            "parallel_requests",
            "batch_concurrency",
        }
    )
    estimator = sections.estimator(routing.get("complexity_detection"))
    tiers, providers = sections.tiers_and_providers(routing.get("model_tiers"), estimator, optimization)
    optional_tiers = sections.optional_tiers(routing.get("model_tiers"))
    router = RouterSettings(
        tiers=tiers, estimator=estimator, selection=sections.selection(routing),
        online=sections.online(routing.get("routing", {}).get("online", {})),
        experiments=sections.experiments(routing, estimator),
    )
    engine = EngineSettings(
        router=router,
        providers=providers,
        ledger=sections.ledger(optimization, routing.get("budget", {}), tiers, state),
        cache=sections.cache(optimization, routing.get("cache", {}), state),
        telemetry=sections.telemetry(routing.get("telemetry", {}), state),
        breaker=sections.breaker(routing.get("circuit", {})),
        retry=sections.retry(routing.get("retry", {})),
        request_deadline_s=sections.request_deadline(routing.get("retry", {})),
        batch_concurrency=optimization.get("batch_concurrency", 64).integer(minimum=1),
    )
    if estimator.value_lambda_paced and engine.ledger.pacing is None:
        raise routing.get("complexity_detection").get("value_lambda_paced").error(
            "needs budget.pacing (λ follows how a generation spends against its allotment)")
    fingerprint = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    simulator = routing.get("simulator", None).value
    if simulator is not None and not isinstance(simulator, dict):
        raise routing.get("simulator").error("must be a mapping")
    return Config(
        source=file,
        engine=attrs.evolve(
            engine,
            telemetry=attrs.evolve(engine.telemetry, fingerprint=fingerprint),
        ),
        state_dir=state,
        fingerprint=fingerprint,
        simulator=simulator,
        monitoring=routing.get("monitoring", {}).mapping(),
        optional_tiers=optional_tiers,
        platform=where,
    )


