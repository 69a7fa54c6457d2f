"""The configuration's sections, each mapped onto the engine's settings class.

`orchestrator.config.load_config` reads the document and hands each section here;
each function reads one part of the story's `llm_routing` format (or one of the
sections this project adds), rejects keys it does not know, checks every value's
range, and says where a bad value is (file, line and key path).
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import attrs

from actors.cache.settings import CacheSettings
from actors.ledger.pacing import PacingPlan, weights_for
from actors.ledger.settings import LedgerSettings
from actors.money import dollars_to_nd, format_usd
from actors.policy.experiments import SPLITS
from actors.policy.online import OnlineSettings
from actors.policy.settings import (
    Arm,
    EstimatorSettings,
    Experiments,
    SelectionSettings,
    TierSettings,
)
from actors.providers.protocols import PROTOCOLS
from actors.providers.retry import RetrySettings
from actors.providers.settings import ProviderSettings
from actors.runtime.breaker import BreakerSettings
from actors.settings import EngineSettings
from actors.telemetry.settings import TelemetrySettings
from orchestrator.configdoc import LocatedDict
from orchestrator.yamlnode import Node

MAX_CONCURRENCY = 4096
"""Calls one provider may have in flight: each is a worker task and a pooled connection."""
MAX_BUDGET_USD = 1_000_000_000
"""The largest budget or cap, in dollars: the ledger's sums of nanodollars must fit its 64-bit integers."""
MAX_PRICE_USD = 100_000
"""The largest price per million tokens, in dollars; a worst-case reservation must still fit the ledger."""
MAX_TOKENS = 100_000_000
"""The largest max_tokens or context_window: no model comes near it, and a typo past it would reserve absurd sums."""
MAX_ANSWER_BYTES = 1 << 30
"""The largest max_answer_bytes a provider may be given (1 GiB): the whole body is held in memory."""
MAX_WAIT_S = 86_400.0
"""The longest timeout, backoff, cooldown, deadline or lease, in seconds (a day): beyond it is a typo."""
MAX_TTL_S = 10 * 366 * 86_400.0
"""The longest cache entry lifetime, in seconds (ten years)."""

SIMULATOR_SCHEME = "simulator:"
TEXT_MODEL_SCOPES = ("plain", "all")
"""`text_model_scope`: the text model scores prompts without a coding signal, or every text prompt."""
_FALLBACK_STRATEGIES = ("retry", "downgrade", "upgrade", "round_robin", "best_available")




def estimator(node: Node) -> EstimatorSettings:
    node.reject_unknown({"estimator", "features", "thresholds", "model_path", "target", "value_lambda",
                         "value_lambda_paced", "text_model", "text_model_scope"})
    kind = node.get("estimator", "auto").text()
    weights: dict[str, float] = {}
    features = node.get("features", [])
    entries = features.sequence() if isinstance(features.value, list) else [features]
    for entry in entries:
        for name, weight in entry.items():
            weights[name] = weight.number(minimum=0.0)
    thresholds_node = node.get("thresholds")
    thresholds: list[tuple[str, float]] = []
    previous = -1.0
    for level, bound_node in thresholds_node.items():
        bound = bound_node.number(minimum=0.0, maximum=100.0)
        if bound <= previous:
            raise bound_node.error(f"must be greater than the previous threshold {previous:g}")
        previous = bound
        thresholds.append((level, bound))
    if not thresholds:
        raise thresholds_node.error("must give at least one level")
    if max(b for _, b in thresholds) > 1.0 and any(0.0 < b < 1.0 for _, b in thresholds):
        raise thresholds_node.error(
            "mixes scales: thresholds are fractions of the score (0-1, e.g. 0.3) or points (0-100, e.g. 30), not both"
        )
    model_path = node.get("model_path", None).optional()
    text_model = node.get("text_model", None).optional()
    if text_model is not None and kind not in ("text", "auto"):
        if node.get("estimator", "auto").file == text_model.file:
            raise text_model.error(f"scores text prompts for estimator text or auto, not {kind!r}")
        text_model = None  # inherited from an extended config that routed text by it: not for this estimator
    scope = node.get("text_model_scope", "plain").choice(TEXT_MODEL_SCOPES)
    target = node.get("target", None).optional()
    value_lambda = node.get("value_lambda", None).optional()
    if value_lambda is not None and (kind not in ("learned", "arc", "text", "auto") or target is not None):
        raise value_lambda.error("needs estimator learned, arc, text or auto, and no target (value and target are "
                                 "two policies)")
    return EstimatorSettings(
        kind=kind, weights=weights, thresholds=tuple(thresholds),
        model_path=None if model_path is None else str(Path(node.file).parent / model_path.text()),
        text_model_path=None if text_model is None else str(Path(text_model.file).parent / text_model.text()),
        text_model_scope=scope,
        target=None if target is None else target.number(minimum=0.0, maximum=1.0),
        value_lambda=None if value_lambda is None else value_lambda.number(minimum=0.0, maximum=1e6),
        value_lambda_paced=_paced(node, value_lambda),
    )


def _paced(node: Node, value_lambda: Node | None) -> bool:
    paced = node.get("value_lambda_paced", False)
    if paced.flag() and value_lambda is None:
        raise paced.error("needs value_lambda (it scales λ by the pacing plan's spending)")
    return paced.flag()


_PROVIDER_KEYS = {
    "name",
    "protocol",
    "api_endpoint",
    "model",
    "api_key_env",
    "context_window",
    "cost_per_million_tokens",
    "cost_input",
    "cost_output",
    "requests_per_minute",
    "tokens_per_minute",
    "max_concurrency",
    "timeout",
    "connect_timeout",
    "first_token_timeout",
    "queue_limit",
    "max_answer_bytes",
    "headers",
}
_TIER_KEYS = _PROVIDER_KEYS | {
    "optional",
    "complexity_range",
    "max_tokens",
    "temperature",
    "local",
    "model_path",
    "strict_budget_check",
    "level",
    "escalation_only",
    "providers",
    "quality",
}


def tiers_and_providers(
    node: Node, estimator: EstimatorSettings, optimization: Node
) -> tuple[tuple[TierSettings, ...], tuple[ProviderSettings, ...]]:
    levels = [level for level, _ in estimator.thresholds]
    parallel = optimization.get("parallel_requests", 3).integer(minimum=1, maximum=MAX_CONCURRENCY)
    tiers: list[TierSettings] = []
    providers: list[ProviderSettings] = []
    names: set[str] = set()
    ranked = 0
    for tier_name, tier in node.items():
        tier.reject_unknown(_TIER_KEYS)
        label = tier.get("name", tier_name).text()
        local = tier.get("local", False).flag()
        if tier.has("level"):
            level = tier.get("level").choice(tuple(levels) + ("local",))
        elif local:
            level = "local"
        elif ranked < len(levels):
            level = levels[ranked]
        else:
            raise tier.error(f"has no level: there are only {len(levels)} thresholds")
        if not local:
            ranked += 1
        entries = tier.get("providers").sequence() if tier.has("providers") else [tier]
        if not entries:
            raise tier.get("providers").error("must list at least one provider")
        tier_providers = []
        for entry in entries:
            provider = _provider(entry, tier, label, local, parallel)
            if provider.name in names:
                raise entry.error(f"provider name {provider.name!r} is used twice")
            names.add(provider.name)
            providers.append(provider)
            tier_providers.append(provider.name)
        low, high = _range(tier.get("complexity_range", [0.0, 1.0]))
        tiers.append(
            TierSettings(
                name=tier_name,
                label=label,
                level=level,
                providers=tuple(tier_providers),
                max_tokens=tier.get("max_tokens").integer(minimum=1, maximum=MAX_TOKENS),
                temperature=tier.get("temperature", 0.7).number(minimum=0.0, maximum=2.0),
                complexity_range=(low, high),
                local=local,
                escalation_only=tier.get("escalation_only", level == levels[-1] and len(levels) > 3).flag(),
                quality=tier.get("quality").number(minimum=0.0, maximum=1.0) if tier.has("quality") else None,
            )
        )
    if not tiers:
        raise node.error("must define at least one tier")
    return tuple(tiers), tuple(providers)


def optional_tiers(node: Node) -> frozenset[str]:
    """The tiers marked `optional: true`: `orchestrator run` and `serve` leave such a tier out,
    with a warning, when its key is missing or its endpoint does not answer, instead of refusing to start."""
    return frozenset(name for name, tier in node.items() if tier.get("optional", False).flag())


def _range(node: Node) -> tuple[float, float]:
    items = node.sequence()
    if len(items) != 2:
        raise node.error("must be a pair [low, high]")
    low = items[0].number(minimum=0.0, maximum=100.0)
    high = items[1].number(minimum=low, maximum=100.0)
    return low, high


def _provider(entry: Node, tier: Node, label: str, local: bool, parallel: int) -> ProviderSettings:
    if entry is not tier:
        entry.reject_unknown(_PROVIDER_KEYS)

    def pick(key: str, default: Any = None) -> Node:
        if entry.has(key):
            return entry.get(key)
        if tier.has(key):
            return tier.get(key)
        return entry.child(key, default)

    protocol_node = pick("protocol", "openai")
    protocol = protocol_node.text()
    if protocol not in PROTOCOLS:
        raise protocol_node.error(f"unknown provider protocol (known: {', '.join(sorted(PROTOCOLS))})")
    endpoint_node = pick("api_endpoint")
    if endpoint_node.value is None:
        raise (entry if entry.has("name") else tier).missing("api_endpoint")
    endpoint = endpoint_node.text().rstrip("/")
    if not endpoint.startswith(SIMULATOR_SCHEME):
        problem = url_problem(endpoint)
        if problem:
            detail = f" ({problem})" if endpoint.startswith(("http://", "https://")) else ""
            raise endpoint_node.error(f"must be an http(s):// URL or simulator:/path{detail}")
    model = pick("model", label).text()
    input_price, output_price = _prices(entry, tier, local)
    key_env_node = pick("api_key_env")
    key_env = None if key_env_node.value is None else key_env_node.text()
    if key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        raise key_env_node.error("must be the name of an environment variable")
    headers_node = pick("headers", {})
    headers = {k: v.text(allow_empty=True) for k, v in headers_node.items()}
    for header in headers:
        if header.lower() in {"authorization", "x-api-key", "x-goog-api-key"}:
            raise headers_node.child(header, "…").error(
                "credentials must come from api_key_env, not the configuration file"
            )
    timeout_default = 60.0 if local else 120.0
    rpm = pick("requests_per_minute").optional()
    tpm = pick("tokens_per_minute").optional()
    first_token = pick("first_token_timeout", None).optional()
    return ProviderSettings(
        name=entry.get("name", label).text(),
        protocol=protocol,
        base_url=endpoint,
        model=model,
        input_price_nd_per_mtok=input_price,
        output_price_nd_per_mtok=output_price,
        api_key_env=key_env,
        context_window=pick("context_window", 32_768).integer(minimum=1, maximum=MAX_TOKENS),
        max_concurrency=pick("max_concurrency", parallel).integer(minimum=1, maximum=MAX_CONCURRENCY),
        requests_per_minute=None if rpm is None else rpm.integer(minimum=1),
        tokens_per_minute=None if tpm is None else tpm.integer(minimum=1),
        timeout_s=pick("timeout", timeout_default).number(minimum=0.001, maximum=MAX_WAIT_S),
        connect_timeout_s=pick("connect_timeout", 10.0).number(minimum=0.001, maximum=MAX_WAIT_S),
        first_token_timeout_s=None if first_token is None else first_token.number(minimum=0.001, maximum=MAX_WAIT_S),
        queue_limit=pick("queue_limit", 10_000).integer(minimum=1),
        max_answer_bytes=pick("max_answer_bytes", 64 * 1024 * 1024).integer(minimum=1024, maximum=MAX_ANSWER_BYTES),
        local=local,
        extra_headers=headers,
    )


def _prices(entry: Node, tier: Node, local: bool) -> tuple[int, int]:
    source = entry if any(entry.has(k) for k in ("cost_per_million_tokens", "cost_input")) else tier
    if source.has("cost_per_million_tokens"):
        price = _dollars(source.get("cost_per_million_tokens"), maximum=MAX_PRICE_USD)
        return price, price
    if source.has("cost_input") or source.has("cost_output"):
        return (_dollars(source.get("cost_input"), maximum=MAX_PRICE_USD),
                _dollars(source.get("cost_output"), maximum=MAX_PRICE_USD))
    if local:
        return 0, 0
    raise source.error("must give its price: cost_per_million_tokens, or cost_input and cost_output")


def url_problem(url: str) -> str:
    """What is wrong with an http(s) URL (scheme, host, port), or "" when nothing is."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 is not a server's port"
    return ""


def _dollars(node: Node, *, minimum: float = 0.0, maximum: float = MAX_BUDGET_USD) -> int:
    node.number(minimum=minimum, maximum=maximum)
    try:
        return dollars_to_nd(node.value)
    except ValueError:
        raise node.error("must be a dollar amount with at most 9 decimals") from None


def online(node: Node) -> OnlineSettings:
    node.reject_unknown({"enabled", "bands", "target", "explore_share", "min_observations"})
    default = OnlineSettings()
    return OnlineSettings(
        enabled=node.get("enabled", default.enabled).flag(),
        bands=node.get("bands", default.bands).integer(minimum=1, maximum=100),
        target=node.get("target", default.target).number(minimum=0.01, maximum=1.0),
        explore_share=node.get("explore_share", default.explore_share).number(minimum=0.0, maximum=1.0),
        min_observations=node.get("min_observations", default.min_observations).integer(minimum=1),
    )


def experiments(routing: Node, base: EstimatorSettings) -> Experiments | None:
    """`routing.experiments`: each arm's `complexity_detection` keys in place of the configured ones (whole values)."""
    node = routing.get("routing", {}).get("experiments", None).optional()
    if node is None:
        return None
    node.reject_unknown({"split_by", "arms"})
    split_by = node.get("split_by", "task").choice(SPLITS)
    arms_node = node.get("arms")
    named = list(arms_node.items())
    if len(named) < 2:
        raise arms_node.error("needs two or more arms to compare")
    base_mapping = routing.get("complexity_detection").mapping()
    arms = []
    for name, arm in named:
        overrides = dict(arm.mapping())
        weight = arm.get("weight", 1).integer(minimum=0, maximum=1_000_000)
        overrides.pop("weight", None)
        merged_keys = LocatedDict(base_mapping, origins=getattr(base_mapping, "origins", {}))
        merged_keys.update(overrides)
        merged_keys.origins.update(getattr(arm.value, "origins", {}))
        merged = Node(merged_keys, arm.file, arm.path, arm.line)
        settings = estimator(merged)
        if tuple(level for level, _ in settings.thresholds) != tuple(level for level, _ in base.thresholds):
            raise arm.get("thresholds", {}).error(
                f"must name the same levels as complexity_detection ({', '.join(l for l, _ in base.thresholds)}): "
                "an arm changes where the bounds lie, not which tiers exist"
            )
        arms.append(Arm(name, settings, weight))
    if not any(arm.weight for arm in arms):
        raise arms_node.error("every arm has weight 0: no request could be routed")
    return Experiments(split_by, tuple(arms))


def selection(routing: Node) -> SelectionSettings:
    node = routing.get("routing", {})
    node.reject_unknown(
        {
            "stagnation_threshold",
            "budget_pressure_share",
            "downgrade_on_budget",
            "context_upgrade",
            "fallback_strategy",
            "online",
            "experiments",
        }
    )
    pressure = node.get("budget_pressure_share", 0.2).optional()
    return SelectionSettings(
        stagnation_threshold=node.get("stagnation_threshold", 5).integer(minimum=1),
        budget_pressure_share=None if pressure is None else pressure.number(minimum=0.0, maximum=1.0),
        downgrade_on_budget=node.get("downgrade_on_budget", True).flag(),
        context_upgrade=node.get("context_upgrade", True).flag(),
        fallback_strategy=node.get("fallback_strategy", "best_available").choice(_FALLBACK_STRATEGIES),
    )


def ledger(
    optimization: Node, budget: Node, tiers: tuple[TierSettings, ...], state: Path
) -> LedgerSettings:
    budget.reject_unknown(
        {"daily_limit", "monthly_limit", "tier_caps", "warning_thresholds", "safety_margin", "journal",
         "backend", "dsn", "lease_s", "wait_s", "pacing", "journal_inline_ms"}
    )
    backend = budget.get("backend", "journal").choice(("journal", "postgres"))
    dsn = budget.get("dsn", None).optional()
    if backend == "postgres" and dsn is None:
        raise budget.get("backend").error("needs budget.dsn, e.g. dsn: ${ORCHESTRATOR_PG_DSN}")
    limit = _dollars(optimization.get("budget_limit"))
    if limit == 0:
        raise optimization.get("budget_limit").error(
            "must be above 0: a zero budget leaves every paid tier unreachable and sends all traffic to the free "
            "local tier (or fails it); give the limit in dollars"
        )
    warning = optimization.get("budget_warning_threshold", 0.8).number(minimum=0.0, maximum=1.0)
    thresholds = {warning}
    for item in budget.get("warning_thresholds", []).sequence():
        thresholds.add(item.number(minimum=0.0, maximum=1.0))
    tier_names = {t.name for t in tiers}
    caps: dict[str, int] = {}
    for tier_name, cap in budget.get("tier_caps", {}).items():
        if tier_name not in tier_names:
            raise cap.error(f"names no tier (tiers: {', '.join(sorted(tier_names))})")
        caps[tier_name] = _dollars(cap)
    daily = budget.get("daily_limit", None).optional()
    monthly = budget.get("monthly_limit", None).optional()
    margin = budget.get("safety_margin", 0.0).number(minimum=0.0, maximum=10.0)
    journal = budget.get("journal", True).flag()
    return LedgerSettings(
        limit_nd=limit,
        daily_limit_nd=None if daily is None else _dollars(daily),
        monthly_limit_nd=None if monthly is None else _dollars(monthly),
        tier_caps_nd=caps,
        warning_thresholds=tuple(sorted(thresholds)),
        safety_margin_ppm=round(margin * 1_000_000),
        journal_path=str(state / "ledger" / "journal") if journal and backend == "journal" else None,
        state_dir=str(state),
        backend=backend,
        dsn=None if dsn is None else dsn.text(),
        lease_s=budget.get("lease_s", 60.0).number(minimum=1.0, maximum=MAX_WAIT_S),
        wait_s=budget.get("wait_s", 60.0).number(minimum=0.0, maximum=MAX_WAIT_S),
        inline_write_s=budget.get("journal_inline_ms", 2.0).number(minimum=0.0, maximum=1000.0) / 1000,
        pacing=pacing(budget.get("pacing", None).optional(), limit),
    )


def pacing(node: Node | None, limit_nd: int) -> PacingPlan | None:
    """`budget.pacing`: the run's allotment split across generations, a reserve for escalations."""
    if node is None:
        return None
    node.reject_unknown({"run", "budget", "generations", "schedule", "carry_over", "reserve", "purposes"})
    run = node.get("run", "run").text()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", run):
        raise node.get("run").error("must be 1 to 64 letters, digits, '_', '.' or '-' (it names ledger scopes)")
    budget_node = node.get("budget", None).optional()
    budget_nd = limit_nd if budget_node is None else _dollars(budget_node)
    if budget_nd > limit_nd:
        raise node.get("budget").error(f"must be within optimization.budget_limit ({format_usd(limit_nd, 2)})")
    schedule = node.get("schedule", "even")
    if isinstance(schedule.value, list):
        shares = [item.number(minimum=0.0, maximum=1e9) for item in schedule.sequence()]
        if not shares or min(shares) <= 0:
            raise schedule.error("must list one share above 0 per generation")
        if node.has("generations") and node.get("generations").integer() != len(shares):
            raise node.get("generations").error(f"must equal the {len(shares)} shares the schedule lists")
        weights = tuple(max(1, round(share * 1_000_000)) for share in shares)
    else:
        generations = node.get("generations").integer(minimum=1, maximum=100_000)
        weights = weights_for(schedule.choice(("even", "front_loaded")), generations)
    reserve = node.get("reserve", 0.0).number(minimum=0.0, maximum=1.0)
    caps: dict[str, int] = {}
    for purpose, share in node.get("purposes", {}).items():
        if purpose not in ("seeding", "mutation"):
            raise share.error("names no purpose with a cap (seeding, mutation; escalation's is the reserve)")
        caps[purpose] = budget_nd * round(share.number(minimum=0.0, maximum=1.0) * 1_000_000) // 1_000_000
    return PacingPlan(
        run=run,
        budget_nd=budget_nd,
        weights=weights,
        reserve_nd=budget_nd * round(reserve * 1_000_000) // 1_000_000,
        carry_over=node.get("carry_over", True).flag(),
        purpose_caps_nd=caps,
    )


def cache(optimization: Node, node: Node, state: Path) -> CacheSettings:
    node.reject_unknown({"enabled", "persistent", "max_entries", "max_mb", "ttl_s"})
    ttl = node.get("ttl_s", None).optional()
    persistent = node.get("persistent", True).flag()
    return CacheSettings(
        path=str(state / "cache" / "responses.sqlite3") if persistent else None,
        similarity_threshold=optimization.get("cache_similarity_threshold", 0.85).number(
            minimum=0.0, maximum=1.0
        ),
        max_entries=node.get("max_entries", 100_000).integer(minimum=1),
        max_bytes=node.get("max_mb", 512).integer(minimum=1) * 1024 * 1024,
        default_ttl_s=None if ttl is None else ttl.number(minimum=0.001, maximum=MAX_TTL_S),
        enabled=node.get("enabled", True).flag(),
    )


def telemetry(node: Node, state: Path) -> TelemetrySettings:
    node.reject_unknown({"enabled", "dir", "segment_mb", "buffer_events"})
    enabled = node.get("enabled", True).flag()
    directory = node.get("dir", str(state / "telemetry")).text()
    return TelemetrySettings(
        dir=directory if enabled else None,
        segment_bytes=node.get("segment_mb", 64).integer(minimum=1) * 1024 * 1024,
        buffer_events=node.get("buffer_events", 65_536).integer(minimum=16),
    )


def breaker(node: Node) -> BreakerSettings:
    node.reject_unknown(
        {
            "failures_to_crash",
            "max_restarts",
            "window_s",
            "backoff_initial_s",
            "backoff_cap_s",
            "cooldown_s",
            "probe_permits",
            "probe_timeout_s",
        }
    )
    default = BreakerSettings()
    return BreakerSettings(
        failures_to_crash=node.get("failures_to_crash", default.failures_to_crash).integer(minimum=1),
        max_restarts=node.get("max_restarts", default.max_restarts).integer(minimum=0),
        window_s=node.get("window_s", default.window_s).number(minimum=0.001, maximum=MAX_WAIT_S),
        backoff_initial_s=node.get("backoff_initial_s", default.backoff_initial_s).number(maximum=MAX_WAIT_S),
        backoff_cap_s=node.get("backoff_cap_s", default.backoff_cap_s).number(maximum=MAX_WAIT_S),
        cooldown_s=node.get("cooldown_s", default.cooldown_s).number(minimum=0.001, maximum=MAX_WAIT_S),
        probe_permits=node.get("probe_permits", default.probe_permits).integer(minimum=1),
        probe_timeout_s=node.get("probe_timeout_s", default.probe_timeout_s).number(minimum=0.001, maximum=MAX_WAIT_S),
    )


def retry(node: Node) -> RetrySettings:
    node.reject_unknown(
        {"initial_s", "factor", "cap_s", "max_retries", "jitter", "before_fallback", "max_retry_after_s",
         "request_deadline_s"}
    )
    default = RetrySettings()
    return RetrySettings(
        initial_s=node.get("initial_s", default.initial_s).number(maximum=MAX_WAIT_S),
        factor=node.get("factor", default.factor).number(minimum=1.0, maximum=100.0),
        cap_s=node.get("cap_s", default.cap_s).number(maximum=MAX_WAIT_S),
        max_retries=node.get("max_retries", default.max_retries).integer(minimum=0),
        jitter=node.get("jitter", default.jitter).number(minimum=0.0, maximum=1.0),
        before_fallback=node.get("before_fallback", default.before_fallback).integer(minimum=0),
        max_retry_after_s=node.get("max_retry_after_s", default.max_retry_after_s).number(minimum=0.0, maximum=MAX_WAIT_S),
    )


def request_deadline(node: Node) -> float:
    default = attrs.fields(EngineSettings).request_deadline_s.default
    return node.get("request_deadline_s", default).number(minimum=0.001, maximum=MAX_WAIT_S)
