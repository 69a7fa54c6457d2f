"""`orchestrator doctor`: is this setup ready to run, and if not, what to fix.

    orchestrator doctor [--config C] [--state-dir D] [--json]

It reads, and never writes: the configuration it resolved (the file and its `extends`
chain, the platform profile that applied and why), each tier's providers (endpoint, protocol, key variable present or missing,
never its value, and whether the endpoint accepts a connection within a few seconds),
how requests are scored (the estimator, and whether each model file it needs loads),
the state directory (writable, free space, whether another process holds the ledger's
journal), the ledger (backend, limit, settled, held), and the cache's and the telemetry
log's sizes. Every problem comes with what to do about it. With `--probe` it also sends
each provider one priced one-token request through the engine (`orchestrator/probe.py`):
that spends, and is journaled and logged like any request. Exit 0 when everything a run
needs is there; 2 when something is missing (a warning alone, such as an optional tier
without its key, or a budget too small for a paid answer when a free local tier can
still serve, does not fail).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import anyio
import attrs
import orjson

from actors.errors import ConfigError, OrchestratorError
from actors.ledger.actor import open_read_only
from actors.ledger.pricing import worst_case_nd
from actors.money import format_usd
from actors.policy import learned
from orchestrator.api import SIMULATOR_URL_ENV
from orchestrator.cli.preflight import PROBE_TIMEOUT_S, missing_keys, probe_all, real_providers, shown_url
from orchestrator.config import (
    Config,
    default_config_path,
    load_config,
    resolve_config_path,
)
from orchestrator.config_sections import SIMULATOR_SCHEME
from orchestrator.configdoc import extends_chain
from orchestrator.platforms import PLATFORMS
from orchestrator.tables import render_table

EXIT_NOT_READY = 2
"""As for a bad configuration: a missing key or endpoint is the setup's problem, not a run's."""
FREE_SPACE_WARNING = 100 * 1024 * 1024
"""Below this much free space in the state directory, the journal and the cache may soon fail to write."""


@attrs.frozen
class Check:
    area: str
    subject: str
    ok: bool
    detail: str
    fix: str = ""
    needed: bool = True
    """A failed check that is not needed is a warning: it does not stop a run."""

    @property
    def status(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.needed else "warn")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check keys, endpoints, state and ledger; say what to fix",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="state directory (default: the config's)")
    parser.add_argument("--platform", choices=PLATFORMS, default=None,
                        help="use this platform's profile instead of the detected one (docs: orchestrator/platforms.py)")
    parser.add_argument("--probe", action="store_true",
                        help="also send each provider one priced one-token request through the engine (it spends, "
                             "and is journaled and logged like any request)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config or default_config_path())
    config = load_config(path, state_dir=args.state_dir, platform=args.platform)
    checks = examine(config, path, dict(os.environ))
    if args.probe:
        checks += _probed(config, checks)
    ready = all(c.ok or not c.needed for c in checks)
    if args.json:
        print(orjson.dumps({"ready": ready, "checks": [attrs.asdict(c) | {"status": c.status} for c in checks]},
                           option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(checks, ready))
    return 0 if ready else EXIT_NOT_READY


def examine(config: Config, path: Path, environ: dict[str, str]) -> list[Check]:
    chain = " <- ".join(str(p) for p in extends_chain(path))
    checks = [Check("config", "file", True, chain)]
    if config.platform is not None:
        where = config.platform
        changed = "; ".join(where.notes) or "nothing changed"
        checks.append(Check("config", "platform", True,
                            f"{where.name} ({where.why}); GPU: {'yes' if where.gpu else 'no'} ({where.gpu_why}); {changed}"))
    checks += _providers(config, environ)
    checks += _routing(config)
    checks += _state(config)
    checks += _ledger(config)
    checks += _sizes(config)
    return checks


def _providers(config: Config, environ: dict[str, str]) -> list[Check]:
    checks = []
    real = real_providers(config)
    keyless = missing_keys(real, environ)
    simulator_url = environ.get(SIMULATOR_URL_ENV)
    targets = {p.base_url for p in real if p.name not in keyless}
    if simulator_url and config.uses_simulator:
        targets.add(simulator_url)
    reachable = probe_all(targets, PROBE_TIMEOUT_S)
    tier_of = {name: tier for tier in config.engine.router.tiers for name in tier.providers}
    for provider in config.engine.providers:
        tier = tier_of.get(provider.name)
        optional = tier is not None and tier.name in config.optional_tiers
        subject = f"{tier.name if tier else '-'} / {provider.name} ({provider.protocol}, {provider.model})"
        if provider.base_url.startswith(SIMULATOR_SCHEME):
            where = simulator_url or "the in-process simulator"
            problem = reachable.get(simulator_url, "") if simulator_url else ""
            checks.append(Check("provider", subject, not problem, f"{shown_url(where)}: {problem or 'no key needed'}",
                                f"start `orchestrator simulator` at {shown_url(where)} or unset {SIMULATOR_URL_ENV}"
                                if problem else ""))
            continue
        variable = provider.api_key_env
        if provider.name in keyless:
            checks.append(Check("provider", subject, False, f"{shown_url(provider.base_url)}: {keyless[provider.name]}",
                                f"export {variable}=... (the provider's key; it is read from the environment only)",
                                needed=not optional))
            continue
        problem = reachable.get(provider.base_url, "")
        key = f"key in {variable}" if variable else "no key configured"
        checks.append(Check(
            "provider", subject, not problem, f"{shown_url(provider.base_url)}: {key}; "
            + (f"unreachable ({problem})" if problem else "accepts connections"),
            "start the server, fix its api_endpoint, or mark the tier `optional: true`" if problem else "",
            needed=not optional,
        ))
    return checks


def _routing(config: Config) -> list[Check]:
    """How requests are scored, and whether each model file the scoring needs loads."""
    settings = config.engine.router.estimator
    how = settings.kind + (f", by value (λ {settings.value_lambda:g})" if settings.value_lambda is not None else "")
    checks = [Check("routing", "estimator", True, how)]
    for role, path, scope in (("model", settings.model_path, ""),
                              ("text model", settings.text_model_path, f"; scores {settings.text_model_scope} text")):
        if path is None:
            continue
        try:
            model = learned.load(path)
        except ConfigError as exc:
            checks.append(Check("routing", role, False, str(exc),
                                "fit one (orchestrator routing fit) or fix the path in complexity_detection"))
            continue
        unbounded = "" if len(model.dense_low) else ("; its length and count features are unbounded (fitted "
                                                     "before their training range was kept: fit it again to hold them)")
        checks.append(Check("routing", role, True, f"{path}: {len(model.models)} models, {model.trained_rows} training "
                                                   f"rows ({model.source}){scope}{unbounded}"))
    return checks


def _probed(config: Config, checks: list[Check]) -> list[Check]:
    """One priced call to each provider whose key and endpoint passed (`orchestrator/probe.py`)."""
    from orchestrator.probe import probe_providers

    provider_checks = [c for c in checks if c.area == "provider"]  # one per provider, in the config's order
    names = [p.name for p, check in zip(config.engine.providers, provider_checks, strict=True) if check.ok]
    found = anyio.run(probe_providers, config, names)
    return [Check("probe", probe.provider, probe.ok, probe.detail,
                  "" if probe.ok else "see the error: a rejected key, a wrong model name, a provider down")
            for probe in found]


def _state(config: Config) -> list[Check]:
    state = config.state_dir
    existing = next((p for p in (state, *state.parents) if p.exists()), Path("/"))
    writable = os.access(existing, os.W_OK | os.X_OK)
    detail = f"{state} ({'exists' if state.exists() else f'will be created under {existing}'})"
    checks = [Check("state", "directory", writable, f"{detail}; {'writable' if writable else 'NOT writable'}",
                    "" if writable else f"choose a writable --state-dir or fix the permissions of {existing}")]
    free = shutil.disk_usage(existing).free
    checks.append(Check("state", "free space", free >= FREE_SPACE_WARNING, f"{free / 2**30:.1f} GiB free",
                        "free some space: the journal, cache and telemetry grow there" if free < FREE_SPACE_WARNING
                        else "", needed=False))
    journal = config.engine.ledger.journal_path
    if journal is not None:
        holder = _lock_holder(Path(journal + ".lock"))
        checks.append(Check("state", "ledger journal lock", holder is None,
                            "free" if holder is None else f"held by process {holder}",
                            "" if holder is None else "another orchestrator runs on this state directory: stop it, "
                            "or give this one its own --state-dir", needed=False))
    return checks


def _lock_holder(lock: Path) -> str | None:
    """The pid holding the journal's lock, or None when it is free (tried without waiting, read-only)."""
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        return None
    finally:
        os.close(fd)
    return None


def _ledger(config: Config) -> list[Check]:
    settings = config.engine.ledger
    try:
        if settings.backend == "postgres":
            from actors.ledger.postgres import PostgresBook

            book = PostgresBook(settings, owner="orchestrator-doctor")
            try:
                status = book.status()
            finally:
                book.close()
        else:
            status = open_read_only(settings).status()
    except (OrchestratorError, OSError) as exc:
        return [Check("ledger", settings.backend, False, f"cannot be read: {exc}",
                      "check budget.dsn and that the database runs" if settings.backend == "postgres"
                      else "see `orchestrator budget` for the journal's problem")]
    smallest = _smallest_paid_answer(config)
    enough = smallest is None or status.remaining_nd >= smallest
    return [Check(
        "ledger", settings.backend, enough,
        f"limit {format_usd(status.limit_nd, 2)}, settled {format_usd(status.settled_nd, 6)}, "
        f"held {format_usd(status.unreconciled_nd, 6)}, remaining {format_usd(status.remaining_nd, 6)}",
        "" if enough else f"what is left cannot pay one answer of the cheapest paid tier ({format_usd(smallest or 0, 6)} "
        "for its max_tokens): raise optimization.budget_limit, or `orchestrator budget reconcile --release` what "
        "is held if those calls were not billed",
        needed=not config.engine.router.local,
    )]


def _smallest_paid_answer(config: Config) -> int | None:
    """The least a reservation of a paid tier can be: no prompt, the tier's max_tokens (its worst case)."""
    providers = {p.name: p for p in config.engine.providers}
    margin = config.engine.ledger.safety_margin_ppm
    costs = [
        worst_case_nd(0, tier.max_tokens, providers[name].input_price_nd_per_mtok,
                      providers[name].output_price_nd_per_mtok, margin)
        for tier in config.engine.router.paid for name in tier.providers
    ]
    return min(costs) if costs else None


def _sizes(config: Config) -> list[Check]:
    cache = config.engine.cache.path
    cache_bytes = Path(cache).stat().st_size if cache and Path(cache).exists() else 0
    log = config.engine.telemetry.dir
    log_bytes = sum(p.stat().st_size for p in Path(log).glob("*") if p.is_file()) if log and Path(log).is_dir() else 0
    return [
        Check("cache", "responses", True, f"{cache_bytes / 2**20:.1f} MiB" + ("" if cache else " (not persistent)")),
        Check("telemetry", "log", True, f"{log_bytes / 2**20:.1f} MiB" + ("" if log else " (off)")),
    ]


def render(checks: list[Check], ready: bool) -> str:
    table = render_table(("area", "what", "status", "detail"), [(c.area, c.subject, c.status, c.detail) for c in checks],
                         title="orchestrator doctor")
    fixes = [f"- {c.subject}: {c.fix}" for c in checks if not c.ok and c.fix]
    verdict = "ready to run" if ready else "NOT ready: fix the FAIL lines"
    return "\n".join([table, "", verdict, *(["", "what to fix:", *fixes] if fixes else [])])
