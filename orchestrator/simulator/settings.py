"""What the simulator does: latency, context windows, content seed and injected faults."""

from __future__ import annotations

from typing import Any

import attrs

from orchestrator.simulator.recorded import RecordedWorld, world_from_dict
from orchestrator.yamlnode import Node

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "hang",
    "drop",
    "context_length",
    "malformed",
    "missing_usage",
    "slow_body",
    "oversized",
    "oversized_stream",
    "ignore_max_tokens",
    "auth",
)
ROUTES = ("openai", "anthropic", "gemini")


@attrs.frozen
class FaultRule:
    """Inject `kind` into matching requests.

    A rule matches a request by `model` and `route` (None matches all), while the
    server's age is inside one of `schedule`'s [start, end) windows (none: always),
    with probability `rate` (drawn from the seeded generator). With `count` set, the
    rule applies to the next `count` matching requests only: a script.
    """

    kind: str
    rate: float = 1.0
    model: str | None = None
    route: str | None = None
    schedule: tuple[tuple[float, float], ...] = ()
    count: int | None = None
    status: int | None = None
    retry_after: float | None = 1.0


@attrs.frozen
class SimulatorSettings:
    seed: int = 0
    latency_s: float = 0.0
    latency_per_token_s: float = 0.0
    default_context_window: int = 131_072
    context_windows: dict[str, int] = attrs.field(factory=dict)
    required_api_key: str | None = attrs.field(default=None, repr=False)
    bearer_token: str | None = attrs.field(default=None, repr=False)
    hang_s: float = 3600.0
    slow_body_s: float = 0.5
    oversized_bytes: int = 80 * 1024 * 1024
    """How long an `oversized` answer is (declared), or an `oversized_stream` one (sent in chunks, undeclared)."""
    faults: tuple[FaultRule, ...] = ()
    recorded: RecordedWorld | None = None
    """Answer prompts of an outcome table with its models' recorded responses (recorded.py)."""


def fault_from_node(node: Node) -> FaultRule:
    node.reject_unknown({"kind", "rate", "model", "route", "schedule", "count", "status", "retry_after"})
    windows = []
    for window in node.get("schedule", []).sequence():
        pair = window.sequence()
        if len(pair) != 2:
            raise window.error("must be a window [start_s, end_s]")
        start = pair[0].number()
        windows.append((start, pair[1].number(minimum=start)))
    model = node.get("model", None).optional()
    route = node.get("route", None).optional()
    count = node.get("count", None).optional()
    status = node.get("status", None).optional()
    retry_after = node.get("retry_after", 1.0).optional()
    return FaultRule(
        kind=node.get("kind").choice(FAULT_KINDS),
        rate=node.get("rate", 1.0).number(minimum=0.0, maximum=1.0),
        model=None if model is None else model.text(),
        route=None if route is None else route.choice(ROUTES),
        schedule=tuple(windows),
        count=None if count is None else count.integer(minimum=1),
        status=None if status is None else status.integer(minimum=100, maximum=599),
        retry_after=None if retry_after is None else retry_after.number(),
    )


def simulator_settings_from_dict(data: dict[str, Any], where: str = "simulator") -> SimulatorSettings:
    """Build settings from a config's `simulator:` section; errors name the key path."""
    node = Node(data, where)
    node.reject_unknown(
        {
            "seed",
            "latency_s",
            "latency_per_token_s",
            "default_context_window",
            "context_windows",
            "hang_s",
            "slow_body_s",
            "oversized_bytes",
            "faults",
            "recorded",
        }
    )
    recorded = node.get("recorded", None).value
    return SimulatorSettings(
        seed=node.get("seed", 0).integer(minimum=None),
        latency_s=node.get("latency_s", 0.0).number(),
        latency_per_token_s=node.get("latency_per_token_s", 0.0).number(),
        default_context_window=node.get("default_context_window", 131_072).integer(minimum=1),
        context_windows={k: v.integer(minimum=1) for k, v in node.get("context_windows", {}).items()},
        hang_s=node.get("hang_s", 3600.0).number(),
        slow_body_s=node.get("slow_body_s", 0.5).number(),
        oversized_bytes=node.get("oversized_bytes", 80 * 1024 * 1024).integer(minimum=1),
        faults=tuple(fault_from_node(f) for f in node.get("faults", []).sequence()),
        recorded=None if recorded is None else world_from_dict(recorded),
    )
