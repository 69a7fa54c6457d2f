"""The recorded-outcomes world: the simulator answers with what a real model really said.

Given an outcome table with response texts, a prompt the table holds, asked of a model
the table holds (or one mapped to it), is answered with that model's recorded response.
Everything else in the orchestrator (routing, budget, cache, telemetry) runs for real,
so a router can be measured end to end on real answers:

    orchestrator run --config configs/gsm8k_recorded.yaml \
        --requests ../shared/data/routellm-gsm8k/gsm8k_responses.csv

The prompt is the last user message, matched exactly. A prompt or model the table does
not hold gets the simulator's usual synthetic answer (and counts as `recorded_miss`).

`RecordedRun` is the run command's side: the table's prompts as requests, and the
accuracy and cost of what came back, next to always-cheapest and always-strongest
priced from the same recorded answers with the simulator's token rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from actors.errors import ConfigError, OrchestratorError
from actors.messages import Request, Result
from actors.money import format_usd, token_cost_nd
from orchestrator.lab.outcomes import OutcomeTable, read_table
from orchestrator.simulator import content


@attrs.frozen(eq=False)
class RecordedWorld:
    table: OutcomeTable
    models: Mapping[str, str] = attrs.field(factory=dict)
    rows: Mapping[str, int] = attrs.field(factory=dict)

    @classmethod
    def load(cls, table: str | Path | OutcomeTable, models: Mapping[str, str] | None = None) -> RecordedWorld:
        loaded = table if isinstance(table, OutcomeTable) else read_table(table)
        if not loaded.responses:
            raise ConfigError(f"simulator.recorded: {loaded.source} has no response columns (<model>_response)")
        unknown = sorted(set((models or {}).values()) - set(loaded.models))
        if unknown:
            raise ConfigError(f"simulator.recorded.models: {', '.join(unknown)} not in {loaded.source} ({', '.join(loaded.models)})")
        return cls(loaded, dict(models or {}), {prompt: row for row, prompt in enumerate(loaded.prompts)})

    def table_model(self, model: str) -> str | None:
        name = self.models.get(model, model)
        return name if name in self.table.models else None

    def answer(self, messages: Sequence[tuple[str, str]], model: str) -> str | None:
        """The recorded response of `model` to the last user message, or None if not recorded."""
        prompt = next((text for role, text in reversed(messages) if role == "user"), None)
        row = self.rows.get(prompt) if prompt is not None else None
        name = self.table_model(model)
        if row is None or name is None:
            return None
        return self.table.response(row, name)


def world_from_dict(data: Any) -> RecordedWorld:
    """The `simulator.recorded` section: {table: PATH, models: {served model: table model}}."""
    if not isinstance(data, dict) or not isinstance(data.get("table"), str):
        raise ConfigError("simulator.recorded: must be a mapping with `table` (an outcome table path)")
    unknown = set(data) - {"table", "models"}
    if unknown:
        raise ConfigError(f"simulator.recorded: unknown key(s) {', '.join(sorted(unknown))}")
    models = data.get("models") or {}
    if not isinstance(models, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in models.items()):
        raise ConfigError("simulator.recorded.models: must map served model names to table model names")
    return RecordedWorld.load(data["table"], models)


def is_outcome_table(path: Path) -> bool:
    """A CSV, or a JSONL whose first row groups per-model `outcomes`: not a plain request workload."""
    if path.suffix.lower() == ".csv":
        return True
    try:
        with path.open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip() and not line.lstrip().startswith("#")), "")
    except (OSError, UnicodeDecodeError):
        return False
    return '"outcomes"' in first


@attrs.frozen(eq=False)
class Ends:
    """Table columns and per-prompt costs (nanodollars) of the cheapest and the strongest paid tier."""

    weak: int
    strong: int
    weak_costs: np.ndarray
    strong_costs: np.ndarray


@attrs.frozen(eq=False)
class RecordedRun:
    world: RecordedWorld
    config: Any

    @classmethod
    def prepare(cls, path: Path, config: Any) -> RecordedRun:
        """The config with the simulator serving `path`'s answers, for a run over its prompts."""
        simulator = dict(config.simulator or {})
        recorded = dict(simulator.get("recorded") or {})
        recorded["table"] = str(path)
        world = world_from_dict(recorded)
        simulator["recorded"] = recorded
        return cls(world, attrs.evolve(config, simulator=simulator))

    def requests(self) -> list[Request]:
        return [Request.prompt(p, request_id=f"row-{i}") for i, p in enumerate(self.world.table.prompts)]

    def column(self, tier: Any) -> int | None:
        """The table's column for the model `tier`'s first provider stands for (None: no model of the table)."""
        name = self.world.table_model(self.config.engine.provider(tier.providers[0]).model)
        return None if name is None else self.world.table.models.index(name)

    def row_costs(self, tier: Any) -> np.ndarray | None:
        """What sending each prompt to `tier`'s first provider costs, in nanodollars, from the recorded answers."""
        provider = self.config.engine.provider(tier.providers[0])
        column = self.column(tier)
        if column is None:
            return None
        name = self.world.table.models[column]
        costs = np.zeros(len(self.world.table.prompts), dtype=np.int64)
        for row, prompt in enumerate(self.world.table.prompts):
            text, _ = content.truncate_to_tokens(self.world.table.response(row, name) or "", tier.max_tokens)
            costs[row] = token_cost_nd(content.prompt_tokens([("user", prompt)]), provider.input_price_nd_per_mtok)
            costs[row] += token_cost_nd(content.text_tokens(text), provider.output_price_nd_per_mtok)
        return costs

    def ends(self) -> Ends:
        """The cheapest and the strongest paid tier as the table sees them; ConfigError if either is not in it."""
        paid = [t for t in self.config.engine.router.tiers if not t.local]
        weak, strong = self.column(paid[0]), self.column(paid[-1])
        weak_costs, strong_costs = self.row_costs(paid[0]), self.row_costs(paid[-1])
        if weak is None or strong is None or weak_costs is None or strong_costs is None:
            raise ConfigError(f"{self.config.source}: its cheapest and strongest tiers must stand for models of the table")
        return Ends(weak, strong, weak_costs, strong_costs)

    def tier_cost(self, tier: Any) -> tuple[int, float] | None:
        """(cost, accuracy) of sending every prompt to `tier`'s first provider, from the recorded answers."""
        costs, column = self.row_costs(tier), self.column(tier)
        if costs is None or column is None:
            return None
        return int(costs.sum()), float(np.nanmean(self.world.table.scores[:, column]))

    def score(self, index: int, outcome: Result | OrchestratorError) -> float:
        """What the table says the answer to prompt `index` was worth (0 for a failure or an unknown model)."""
        name = self.world.table_model(outcome.model) if isinstance(outcome, Result) else None
        score = self.world.table.scores[index, self.world.table.models.index(name)] if name is not None else 0.0
        return 0.0 if np.isnan(score) else float(score)

    def grade(self, outcomes: Sequence[Result | OrchestratorError]) -> dict[str, Any]:
        got = [self.score(index, outcome) for index, outcome in enumerate(outcomes)]
        paid = [t for t in self.config.engine.router.tiers if not t.local]
        summary: dict[str, Any] = {
            "prompts": len(outcomes), "accuracy": float(np.mean(got)) if got else 0.0,
            "cost_nd": sum(o.cost_nd for o in outcomes if isinstance(o, Result)), "baselines": {},
        }
        for label, tier in (("always-cheapest", paid[0]), ("always-strongest", paid[-1])):
            priced = self.tier_cost(tier)
            if priced is not None:
                summary["baselines"][label] = {"tier": tier.name, "accuracy": priced[1], "cost_nd": priced[0]}
        return summary


def render_grade(summary: Mapping[str, Any]) -> str:
    lines = [f"recorded answers      {summary['prompts']} prompts graded against the outcome table"]
    rows = [("this run", summary["accuracy"], summary["cost_nd"])] + [
        (f"{label} ({b['tier']})", b["accuracy"], b["cost_nd"]) for label, b in summary["baselines"].items()
    ]
    strongest = summary["baselines"].get("always-strongest")
    for label, accuracy, cost in rows:
        share = f"  ({100 * cost / strongest['cost_nd']:.1f}% of always-strongest)" if strongest and strongest["cost_nd"] else ""
        lines.append(f"  {label:<28} accuracy {100 * accuracy:5.1f}%   cost {format_usd(cost, 6)}{share}")
    return "\n".join(lines)
