"""Prometheus text exposition of a running orchestrator's counters and gauges."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.api import Orchestrator

_STATES = ("closed", "restarting", "open", "half_open", "disabled")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.name = name

    def add(self, value: float, **labels: str) -> None:
        self.lines.append(f"{self.name}{_labels(labels)} {value}")


def _render(families: Iterable[_Family]) -> str:
    return "\n".join(line for family in families for line in family.lines) + "\n"


async def render_metrics(orch: Orchestrator) -> str:
    stats = orch.routing_stats()
    families = []
    decisions = _Family("orchestrator_routing_decisions_total", "counter", "Routing decisions by tier.")
    for tier, count in sorted(stats["tiers"].items()):  # type: ignore[union-attr]
        decisions.add(count, tier=tier)
    families.append(decisions)
    levels = _Family("orchestrator_routing_levels_total", "counter", "Routing decisions by complexity level.")
    for level, count in sorted(stats["levels"].items()):  # type: ignore[union-attr]
        levels.add(count, level=level)
    families.append(levels)
    outcomes = _Family("orchestrator_requests_total", "counter", "Finished requests by outcome code.")
    outcomes.add(stats["results"], code="OK")  # type: ignore[arg-type]
    for code, count in sorted(stats["errors"].items()):  # type: ignore[union-attr]
        outcomes.add(count, code=code)
    families.append(outcomes)
    reloads = _Family("orchestrator_router_model_reloads_total", "counter",
                      "Times the learned router's model was swapped for a refitted one (serve --refit-every).")
    reloads.add(stats["model_reloads"])  # type: ignore[arg-type]
    families.append(reloads)
    late = _Family("orchestrator_late_answers_total", "counter",
                   "Held reservations closed by an answer that came after its attempt stopped waiting, by action.")
    for action in ("settle", "release"):
        late.add(stats["late_answers"].get(action, 0), action=action)  # type: ignore[union-attr]
    families.append(late)
    spent = _Family("orchestrator_cost_nanodollars_total", "counter", "Money spent by answered requests.")
    spent.add(stats["cost_nd"])  # type: ignore[arg-type]
    families.append(spent)
    budget = await orch.budget()
    gauge = _Family("orchestrator_budget_nanodollars", "gauge", "The ledger's totals, in nanodollars; held is the part "
                    "of reserved whose calls' outcome is unknown, spent until `orchestrator budget reconcile`.")
    for kind in ("limit", "settled", "reserved", "remaining"):
        gauge.add(getattr(budget, f"{kind}_nd"), kind=kind)
    gauge.add(budget.unreconciled_nd, kind="held")
    families.append(gauge)
    queue, journal = "orchestrator_budget_queue_", "orchestrator_ledger_journal_"
    for name, kind, help_text, value in (
        (queue + "waiting", "gauge", "Reservations waiting in the budget queue for reserved money to settle.",
         budget.waiting),
        (queue + "waiting_nanodollars", "gauge", "Worst cases of those waiting.", budget.waiting_nd),
        (queue + "waits_total", "counter", "Reservations that entered the budget queue.", budget.waited),
        (queue + "expired_total", "counter", "Waits that ran out (refused with the cause).", budget.wait_expired),
        (queue + "wait_seconds_total", "counter", "Time spent waiting, summed.", budget.wait_s_total),
        (journal + "slow_writes_total", "counter", "Journal writes on the loop that took budget.journal_inline_ms or "
         "longer.", budget.journal_slow_writes),
        (journal + "loop_seconds_total", "counter", "Time the event loop spent in journal writes.",
         budget.journal_loop_s_total),
    ):
        family = _Family(name, kind, help_text)
        family.add(value)
        families.append(family)
    writes = _Family(journal + "writes_total", "counter",
                     "Journal writes with their fsync, on the event loop (the disk proving fast) or in a worker thread.")
    writes.add(budget.journal_writes_on_loop, on="loop")
    writes.add(budget.journal_writes_in_thread, on="thread")
    families.append(writes)
    circuit = _Family("orchestrator_circuit_state", "gauge", "1 for each provider's current circuit state.")
    restarts = _Family("orchestrator_actor_restarts_total", "counter", "Supervisor restarts per actor.")
    for name, health in sorted(orch.health().items()):
        for state in _STATES:
            circuit.add(1 if health["state"] == state else 0, actor=name, state=state)
        restarts.add(health["restarts"], actor=name)  # type: ignore[arg-type]
    families += [circuit, restarts]
    cache = await orch.cache_stats()
    if cache is not None:
        cached = _Family("orchestrator_cache_events_total", "counter", "Cache lookups by outcome.")
        cached.add(cache.hits, outcome="hit")
        cached.add(cache.similar_hits, outcome="similar_hit")
        cached.add(cache.misses, outcome="miss")
        saved = _Family("orchestrator_cache_saved_nanodollars_total", "counter", "Money not spent thanks to the cache.")
        saved.add(cache.saved_nd)
        families += [cached, saved]
    return _render(families)
