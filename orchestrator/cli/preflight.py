"""What `orchestrator run` and `serve` check before they start: keys, then endpoints.

A tier none of whose providers has its key variable set, or none of whose endpoints
accepts a TCP connection within `PROBE_TIMEOUT_S`, is refused at start in one line that
names the tier and the variables (or the endpoint and what the connection said): exit
2, before anything is tried, instead of five failed calls and a crashed provider. A
tier the configuration marks `optional: true` is left out instead, with a warning; so
is one provider of several in a tier. Endpoints of the shipped simulator
(`simulator:/v1`) need no key; `$ORCHESTRATOR_SIMULATOR_URL`, when set, must answer.
Keys are read from the environment only, and only their variables' names are printed.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping

import attrs

from actors.errors import ConfigError
from actors.policy.settings import TierSettings
from actors.providers.settings import ProviderSettings, key_problem
from orchestrator.api import SIMULATOR_URL_ENV
from orchestrator.config import Config
from orchestrator.config_sections import SIMULATOR_SCHEME, url_problem

PROBE_TIMEOUT_S = 3.0
"""How long one endpoint has to accept a TCP connection (all are probed at once)."""


def preflight(
    config: Config,
    environ: Mapping[str, str] | None = None,
    *,
    timeout_s: float = PROBE_TIMEOUT_S,
    warn: Callable[[str], None] | None = None,
) -> Config:
    """`config` with every unusable optional tier or spare provider left out.

    Raises:
        ConfigError: if a tier not marked optional has no provider whose key variable is
            set (naming each such tier's variables), or none whose endpoint accepts a
            connection (naming the endpoints), or if no paid tier is left, or if
            $ORCHESTRATOR_SIMULATOR_URL is set but malformed or does not answer.
    """
    env = os.environ if environ is None else environ
    say = warn or (lambda line: print(f"orchestrator: warning: {line}", file=sys.stderr))
    _check_simulator_url(config, env, timeout_s)
    tiers = config.engine.router.tiers
    real = {p.name: p for p in real_providers(config)}
    if not real:
        return config

    problems = missing_keys(real.values(), env)
    refused = [t for t in tiers if _dead(t, problems) and t.name not in config.optional_tiers]
    if refused:
        needs = "; ".join(
            f"{_named(t)} needs {' or '.join(_variables(t, real, problems))}" for t in refused
        )
        raise ConfigError(
            f"{config.source}: API keys missing from the environment (or unusable): {needs} "
            "(export them, or mark a tier `optional: true` to run without it)"
        )

    reachable = probe_all({real[name].base_url for name in real if name not in problems}, timeout_s)
    for name, provider in real.items():
        if name not in problems and reachable[provider.base_url]:
            problems[name] = f"{shown_url(provider.base_url)} unreachable ({reachable[provider.base_url]})"
    refused = [t for t in tiers if _dead(t, problems) and t.name not in config.optional_tiers]
    if refused:
        why = "; ".join(f"{_named(t)}: {', '.join(problems[p] for p in t.providers)}" for t in refused)
        raise ConfigError(
            f"{config.source}: endpoints that do not answer: {why} "
            "(start the server, fix api_endpoint, or mark the tier `optional: true`)"
        )
    return _without(config, problems, say)


def real_providers(config: Config) -> list[ProviderSettings]:
    """The providers that are not the shipped simulator: the ones with keys and endpoints to check."""
    return [p for p in config.engine.providers if not p.base_url.startswith(SIMULATOR_SCHEME)]


def missing_keys(providers: Iterable[ProviderSettings], env: Mapping[str, str]) -> dict[str, str]:
    """Each provider whose key variable is not set in `env` or holds what no HTTP header can carry, by name, with
    what to say (the variable's name, never its value)."""
    problems = {p.name: key_problem(p.api_key_env, env.get(p.api_key_env)) for p in providers if p.api_key_env}
    return {name: problem for name, problem in problems.items() if problem}


def _dead(tier: TierSettings, problems: Mapping[str, str]) -> bool:
    return all(name in problems for name in tier.providers)


def _named(tier: TierSettings) -> str:
    return f"{tier.name} ({tier.label})" if tier.label != tier.name else tier.name


def _variables(tier: TierSettings, real: Mapping[str, ProviderSettings], problems: Mapping[str, str]) -> list[str]:
    """The key variables `tier` waits for, each with what is wrong with it when it is set but unusable."""
    return list(dict.fromkeys(
        str(real[name].api_key_env) + ("" if problems[name].endswith(" is not set") else f" ({problems[name]})")
        for name in tier.providers if name in problems
    ))


def _without(config: Config, problems: Mapping[str, str], say: Callable[[str], None]) -> Config:
    """`config` without the providers in `problems` and the tiers they leave empty, each left out with a warning."""
    if not problems:
        return config
    tiers = []
    for tier in config.engine.router.tiers:
        kept = tuple(name for name in tier.providers if name not in problems)
        for name in tier.providers:
            if name in problems and kept:
                say(f"{_named(tier)}: provider {name} left out: {problems[name]}")
        if not kept:
            say(f"{_named(tier)} left out (optional): {'; '.join(problems[name] for name in tier.providers)}")
            continue
        tiers.append(tier if kept == tier.providers else attrs.evolve(tier, providers=kept))
    if all(tier.local for tier in tiers):
        raise ConfigError(f"{config.source}: no paid tier is left to route to once the unusable ones are left out")
    engine = config.engine
    router = attrs.evolve(engine.router, tiers=tuple(tiers))
    providers = tuple(p for p in engine.providers if p.name not in problems)
    return attrs.evolve(config, engine=attrs.evolve(engine, router=router, providers=providers))


def _check_simulator_url(config: Config, env: Mapping[str, str], timeout_s: float) -> None:
    url = env.get(SIMULATOR_URL_ENV)
    if not (url and config.uses_simulator):
        return
    problem = url_problem(url.rstrip("/"))
    if problem:
        raise ConfigError(f"${SIMULATOR_URL_ENV}={url!r}: not an http(s) URL of a simulator ({problem})")
    unreachable = probe_all([url], timeout_s)[url]
    if unreachable:
        raise ConfigError(
            f"${SIMULATOR_URL_ENV}={shown_url(url)}: unreachable ({unreachable}); start `orchestrator simulator` "
            f"there, or unset {SIMULATOR_URL_ENV} to run the simulator in-process"
        )


def shown_url(url: str) -> str:
    """`url` without any user or password in it."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def probe_all(urls: Iterable[str], timeout_s: float) -> dict[str, str]:
    """For each URL, "" if its host accepts a TCP connection within `timeout_s`, else what went wrong.

    Each probe runs in a daemon thread, so a name lookup that ignores the timeout
    delays nothing past the deadline.
    """
    found: dict[str, str] = {}
    threads = []
    for url in urls:
        thread = threading.Thread(target=lambda u=url: found.__setitem__(u, _probe(u, timeout_s)), daemon=True)
        thread.start()
        threads.append((url, thread))
    deadline = time.monotonic() + timeout_s + 0.5
    for _, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {url: found.get(url, f"no answer within {timeout_s:g} s") for url, _ in threads}


def _probe(url: str, timeout_s: float) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    except TimeoutError:
        return f"no connection within {timeout_s:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
