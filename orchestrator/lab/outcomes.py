"""Outcome tables: which model answered which prompt how well, the data routers learn from.

A table has one row per prompt and, per model, a score in [0, 1] (correctness is 0 or
1), optionally the model's response text and the cost of that call. Read from:

CSV (the RouteLLM evals' files are read as they are), one row per prompt:

    prompt,<model>,<model>_response,<model>_cost,...

  - `prompt` (required): the prompt text;
  - `<model>`: True/False, 1/0 or a number in [0, 1]; empty = not observed;
  - `<model>_response` (optional): the model's answer;
  - `<model>_cost` (optional): what the call cost, in dollars (exact decimals).
  Columns that are none of these and do not hold scores (an id, a category) are ignored.
  Where a cell's model would be a guess the table is refused: a header column with no
  name or a name given twice, a row with more fields than the header, costs for a
  model no column scores.

JSONL, one object per line: the same keys flat, or grouped per model:

    {"prompt": "...", "outcomes": {"<model>": {"score": 1, "response": "...", "cost": 0.0004}}}

  where an outcome may also be just a score (`true`, `0.5`).

Models are ordered cheapest first: by mean cost per call when every model has costs,
otherwise by mean score, the weakest taken as the cheapest (the usual case: a cheaper
model is a weaker one). Without costs, a model's relative cost is its rank (cheapest 0,
strongest 1), so a two-model table's cost is its share of strong calls.

Rows with the same prompt are merged (scores averaged per model), so a history where a
prompt was asked several times, of different models, becomes one denser row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import orjson

from actors.errors import InvalidRequest
from actors.money import cost_cell_nd

RESPONSE_SUFFIX = "_response"
COST_SUFFIX = "_cost"
_TRUE = {"true", "1", "yes", "correct"}
_FALSE = {"false", "0", "no", "incorrect", "wrong"}


class OutcomeTableError(InvalidRequest):
    """An outcome table that cannot be read: names the file, the line or column, and what is wrong."""

    code = "INVALID_OUTCOME_TABLE"


@attrs.frozen(eq=False)
class OutcomeTable:
    """Prompts × models. `scores` and `costs_nd` are (rows, models); NaN means not observed."""

    prompts: tuple[str, ...]
    models: tuple[str, ...]
    scores: np.ndarray
    costs_nd: np.ndarray
    responses: Mapping[str, tuple[str | None, ...]] = attrs.field(factory=dict)
    source: str = ""
    rounded_costs: int = 0
    """Cost cells that held more than a nanodollar's precision (binary floats) and were rounded."""

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def has_costs(self) -> bool:
        return bool(np.all(np.any(~np.isnan(self.costs_nd), axis=0))) if len(self) else False

    def relative_costs(self) -> np.ndarray:
        """(rows, models) cost of each call in the table's unit: nanodollars, or rank when unknown."""
        if self.has_costs:
            means = np.nanmean(self.costs_nd, axis=0)
            return np.where(np.isnan(self.costs_nd), means, self.costs_nd)
        ranks = np.arange(len(self.models), dtype=float) / max(1, len(self.models) - 1)
        return np.broadcast_to(ranks, self.scores.shape).copy()

    def complete(self) -> OutcomeTable:
        """The rows where every model was observed: what a replay can score."""
        return self.rows(np.flatnonzero(~np.isnan(self.scores).any(axis=1)))

    def rows(self, index: Sequence[int] | np.ndarray) -> OutcomeTable:
        index = np.asarray(index, dtype=int)
        return OutcomeTable(
            prompts=tuple(self.prompts[i] for i in index),
            models=self.models,
            scores=self.scores[index],
            costs_nd=self.costs_nd[index],
            responses={m: tuple(r[i] for i in index) for m, r in self.responses.items()},
            source=self.source,
        )

    def select(self, models: Sequence[str]) -> OutcomeTable:
        """The same rows with only `models` (kept in the table's cheapest-first order)."""
        unknown = [m for m in models if m not in self.models]
        if unknown:
            raise OutcomeTableError(f"{self.source}: no model {', '.join(map(repr, unknown))} (it has {', '.join(self.models)})")
        columns = [i for i, m in enumerate(self.models) if m in models]
        return OutcomeTable(
            prompts=self.prompts,
            models=tuple(self.models[i] for i in columns),
            scores=self.scores[:, columns],
            costs_nd=self.costs_nd[:, columns],
            responses={m: r for m, r in self.responses.items() if m in models},
            source=self.source,
            rounded_costs=self.rounded_costs,
        )

    def response(self, row: int, model: str) -> str | None:
        texts = self.responses.get(model)
        return None if texts is None else texts[row]


def build_table(records: Iterable[Mapping[str, Any]], source: str) -> OutcomeTable:
    """A table from flat records (prompt, <model>, <model>_response, <model>_cost), rows merged by prompt.

    A column is a model's when every value it holds is a score: an id column that
    happens to hold 0 and 1 in some rows, and text in others, is not taken for one.
    """
    located = list(_located(records, source))
    not_scores = {
        key for _, record in located for key, value in record.items()
        if value is not None and value != "" and parse_score(value) is None
    }
    order: dict[str, int] = {}
    scores: list[dict[str, list[float]]] = []
    costs: list[dict[str, list[int]]] = []
    texts: list[dict[str, str]] = []
    models: dict[str, None] = {}
    rounded = 0
    for where, record in located:
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise OutcomeTableError(f"{where}: needs a non-empty string `prompt`")
        row = order.setdefault(prompt, len(order))
        if row == len(scores):
            scores.append({})
            costs.append({})
            texts.append({})
        for key, value in record.items():
            if key == "prompt" or value is None or value == "":
                continue
            if key.endswith(RESPONSE_SUFFIX):
                texts[row].setdefault(key[: -len(RESPONSE_SUFFIX)], str(value))
            elif key.endswith(COST_SUFFIX):
                try:
                    cost, was_rounded = cost_cell_nd(value)
                except ValueError as exc:
                    raise OutcomeTableError(f"{where}: column {key!r}: {exc}") from None
                costs[row].setdefault(key[: -len(COST_SUFFIX)], []).append(cost)
                rounded += was_rounded
            elif key not in not_scores:
                models.setdefault(key)
                scores[row].setdefault(key, []).append(parse_score(value))  # type: ignore[arg-type]
    names = list(models)
    if not names:
        raise OutcomeTableError(f"{source}: no column holds per-model scores (True/False, 1/0 or numbers in [0, 1])")
    unscored = sorted({name for row in costs for name in row} - set(names) - {"prompt"})
    if unscored:  # most often a misspelt model name: its costs would silently not count
        raise OutcomeTableError(f"{source}: costs for {', '.join(map(repr, unscored))}, which no column scores "
                                f"(scored: {', '.join(map(repr, names))})")
    if not order:
        raise OutcomeTableError(f"{source}: has no rows")
    n, m = len(order), len(names)
    score_matrix = np.full((n, m), np.nan)
    cost_matrix = np.full((n, m), np.nan)
    for row in range(n):
        for j, name in enumerate(names):
            if name in scores[row]:
                score_matrix[row, j] = float(np.mean(scores[row][name]))
            if name in costs[row]:
                cost_matrix[row, j] = float(np.mean(costs[row][name]))
    observed = ~np.isnan(score_matrix)
    empty = [names[j] for j in range(m) if not observed[:, j].any()]
    if empty:
        raise OutcomeTableError(f"{source}: model(s) {', '.join(empty)} have no scores")
    costed = np.any(~np.isnan(cost_matrix), axis=0)
    key = np.nanmean(cost_matrix, axis=0) if costed.all() else np.nanmean(score_matrix, axis=0)
    ranking = sorted(range(m), key=lambda j: (key[j], j))
    ordered = [names[j] for j in ranking]
    response_columns = {
        name: tuple(texts[row].get(name) for row in range(n))
        for name in ordered
        if any(name in texts[row] for row in range(n))
    }
    return OutcomeTable(
        prompts=tuple(order),
        models=tuple(ordered),
        scores=score_matrix[:, ranking],
        costs_nd=cost_matrix[:, ranking],
        responses=response_columns,
        source=source,
        rounded_costs=rounded,
    )


def _located(records: Iterable[Mapping[str, Any]], source: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for number, record in enumerate(records, 1):
        yield f"{source}: row {number}", record


def parse_score(value: object) -> float | None:
    """A score in [0, 1] from a cell, or None when the cell is not a score (text, an id).

    A percentage is a score when it says so (`85%`, `85.5 %`); a bare 85 is not (it
    could be an id or a count).
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        percent = text.endswith("%")
        try:
            number = float(text.removesuffix("%").strip()) / (100.0 if percent else 1.0)
        except ValueError:
            return None
    else:
        return None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        return None
    return number


def read_table(path: str | Path) -> OutcomeTable:
    """Read a CSV or JSONL outcome table (by its suffix; .jsonl/.json lines, anything else CSV)."""
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except OSError as exc:
        raise OutcomeTableError(f"{path}: cannot read outcome table: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise OutcomeTableError(f"{path}: is not UTF-8 text") from None
    if file.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return build_table(_jsonl_records(raw, str(path)), str(path))
    return build_table(_csv_records(raw, str(path)), str(path))


def _csv_records(raw: str, source: str) -> list[dict[str, str]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(raw) + 1))
    try:
        reader = csv.DictReader(raw.splitlines(keepends=True))
        header = reader.fieldnames
        if header is None or "prompt" not in header:
            raise OutcomeTableError(f"{source}: the CSV header has no `prompt` column (found: {header})")
        _check_header(header, source)
        try:
            rows = []
            for row in reader:
                if None in row:  # more fields than the header names: which column is which is a guess
                    raise OutcomeTableError(f"{source}: line {reader.line_num}: {len(header) + len(row[None])} "
                                            f"fields, the header names {len(header)}")
                rows.append(row)
            return rows
        except csv.Error as exc:
            raise OutcomeTableError(f"{source}: line {reader.line_num}: {exc}") from None
    finally:
        csv.field_size_limit(limit)


def _check_header(header: Sequence[str], source: str) -> None:
    """A column without a name, or a name given twice (csv keeps the last one's cell), says nothing certain."""
    for number, name in enumerate(header, 1):
        if not name.strip():
            raise OutcomeTableError(f"{source}: the CSV header's column {number} has no name")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise OutcomeTableError(f"{source}: the CSV header names {', '.join(map(repr, twice))} more than once")


def _jsonl_records(raw: str, source: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{source}:{number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise OutcomeTableError(f"{where}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise OutcomeTableError(f"{where}: a row must be a JSON object")
        records.append(flatten(data, where))
    return records


def flatten(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A JSONL row with `outcomes` grouped per model, as the flat CSV-like keys."""
    flat = {k: v for k, v in data.items() if k != "outcomes"}
    outcomes = data.get("outcomes", {})
    if not isinstance(outcomes, dict):
        raise OutcomeTableError(f"{where}: `outcomes` must map model names to outcomes")
    for model, outcome in outcomes.items():
        if isinstance(outcome, dict):
            unknown = set(outcome) - {"score", "response", "cost"}
            if unknown:
                raise OutcomeTableError(f"{where}: outcomes[{model!r}] has unknown key(s) {', '.join(sorted(unknown))}")
            flat[model] = outcome.get("score")
            flat[model + RESPONSE_SUFFIX] = outcome.get("response")
            flat[model + COST_SUFFIX] = outcome.get("cost")
        else:
            flat[model] = outcome
        if flat[model] is not None and parse_score(flat[model]) is None:
            raise OutcomeTableError(f"{where}: outcomes[{model!r}] score {flat[model]!r} is not in [0, 1]")
    return flat


def table_to_jsonl(table: OutcomeTable) -> str:
    """The table in the JSONL form above (costs in dollars), e.g. to save a converted history."""
    lines = []
    for row, prompt in enumerate(table.prompts):
        outcomes: dict[str, Any] = {}
        for j, model in enumerate(table.models):
            if math.isnan(table.scores[row, j]):
                continue
            outcome: dict[str, Any] = {"score": float(table.scores[row, j])}
            text = table.response(row, model)
            if text is not None:
                outcome["response"] = text
            if not math.isnan(table.costs_nd[row, j]):
                outcome["cost"] = round(float(table.costs_nd[row, j])) / 1e9
            outcomes[model] = outcome
        lines.append(orjson.dumps({"prompt": prompt, "outcomes": outcomes}).decode())
    return "\n".join(lines) + "\n"
