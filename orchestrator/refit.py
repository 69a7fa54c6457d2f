"""A long `serve` learns from its own feedback (`serve --refit-every SECONDS`).

Every period the learned router is fitted again on the telemetry's scored answers
(`orchestrator.lab.history`: each `orch.feedback` a row, the answering model its
column). A candidate fitted on four fifths of the rows must predict the held-out fifth
no worse (Brier score over the observed cells) than the model in use; only then is the
model fitted on every row written over the model file (atomically: `learned.save`) and
the router rebuilt from it between two decisions. The fit runs on a worker thread, so
the event loop keeps serving; a period with too little feedback, or whose feedback
lacks one of the model's tiers, is skipped with its reason.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import anyio
import attrs
import numpy as np

from actors.errors import ConfigError
from actors.policy import learned
from orchestrator.lab.history import table_from_telemetry
from orchestrator.lab.outcomes import OutcomeTable, OutcomeTableError

HOLDOUT_FOLDS = 5


@attrs.frozen
class RefitReport:
    rows: int
    swapped: bool
    why: str
    brier_in_use: float | None = None
    brier_candidate: float | None = None

    def line(self) -> str:
        scores = ("" if self.brier_candidate is None else
                  f"; held-out Brier {self.brier_candidate:.4f} (model in use {self.brier_in_use:.4f})")
        return f"{self.rows} scored prompts{scores}: {self.why}"


def refit(telemetry_dir: Path, model_path: Path, min_rows: int, success_at: float | None = None) -> RefitReport:
    """Fit, compare on held-out feedback, and replace `model_path` if the candidate is no worse."""
    in_use = learned.load(model_path)
    try:
        table, _ = table_from_telemetry(telemetry_dir, success_at)
    except OutcomeTableError as exc:
        return RefitReport(0, False, f"skipped: {exc}")
    missing = [m for m in in_use.models if m not in table.models]
    if missing:
        return RefitReport(len(table), False, f"skipped: no scored answer yet from {', '.join(missing)}")
    table = table.select(in_use.models)
    if table.models != in_use.models:
        return RefitReport(len(table), False, f"skipped: the telemetry prices the models in another order "
                                              f"({', '.join(table.models)}) than {model_path} ({', '.join(in_use.models)})")
    if len(table) < min_rows:
        return RefitReport(len(table), False, f"skipped: fewer than {min_rows} scored prompts")
    held_out = np.array([zlib.crc32(p.encode()) % HOLDOUT_FOLDS == 0 for p in table.prompts])
    if held_out.all() or not held_out.any():
        return RefitReport(len(table), False, "skipped: the prompts do not split into training and held-out rows")
    settings = learned.FitSettings(spec=in_use.spec)
    candidate = learned.fit(table.rows(np.flatnonzero(~held_out)), settings)
    test = table.rows(np.flatnonzero(held_out))
    brier_candidate, brier_in_use = _brier(candidate, test), _brier(in_use, test)
    if brier_candidate > brier_in_use:
        return RefitReport(len(table), False, "kept the model in use (it predicts the held-out feedback better)",
                           brier_in_use, brier_candidate)
    learned.save(learned.fit(table, settings), model_path)
    return RefitReport(len(table), True, f"swapped in a model fitted on every row ({model_path})",
                       brier_in_use, brier_candidate)


def _brier(model: learned.LearnedModel, table: OutcomeTable) -> float:
    predicted = model.predict_batch(learned.table_features(table, model.spec))
    observed = ~np.isnan(table.scores)
    return float(np.mean((predicted[observed] - table.scores[observed]) ** 2))


class Reloads(Protocol):
    def reload_router_model(self) -> None: ...


async def refit_periodically(orch: Reloads, every_s: float, telemetry_dir: Path, model_path: Path, min_rows: int,
                             report: Callable[[str], None], success_at: float | None = None) -> None:
    """Until cancelled: every `every_s`, `refit` on a worker thread; swap the router's model when it says so.

    A period that fails, for whatever reason (the model file unreadable, a fit that
    raises, a reload the router refuses), is reported and the model in use keeps
    routing: the learner runs beside the server and never takes it down.
    """
    while True:
        await anyio.sleep(every_s)
        try:
            outcome = await anyio.to_thread.run_sync(refit, telemetry_dir, model_path, min_rows, success_at,
                                                    abandon_on_cancel=True)
            if outcome.swapped:
                orch.reload_router_model()
        except (ConfigError, OutcomeTableError, OSError) as exc:
            report(f"refit failed, the model in use stays: {exc}")
            continue
        except Exception as exc:  # a fit's own failure: reported with its type, the next period tries again
            report(f"refit failed, the model in use stays: {type(exc).__name__}: {exc}")
            continue
        report(f"refit: {outcome.line()}")
