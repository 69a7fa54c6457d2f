"""How much a cheapest-first cascade can save by not escalating what the strong model will get wrong too.

    python tools/escalation_study.py [--table T.csv] [--config gsm8k_recorded] [--folds 5]

With a perfect verifier, a cascade pays the strong model for every prompt the weak
model gets wrong; the only spending that can go without losing accuracy is on the
prompts the strong model gets wrong as well. This measures how well those can be told
apart before paying: the project's learned router (`actors.policy.learned`, k-fold
cross-validated) is fitted on the escalated prompts alone, to predict the strong
model's success from the prompt followed by the weak model's rejected answer. It
prints the AUC and, skipping the escalations predicted least likely to succeed, the
accuracy lost and the cascade's cost as a share of always-strong, priced by the
recorded world exactly as `tools/cascade_eval.py` prices it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import load_config  # noqa: E402
from orchestrator.lab.evaluation import cross_validated  # noqa: E402
from orchestrator.lab.outcomes import OutcomeTable  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402
from tools.cascade_eval import recorded_ends  # noqa: E402

DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """The probability that a random positive scores above a random negative (ties count a half)."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for value in np.unique(score):
        tied = score == value
        ranks[tied] = ranks[tied].mean()
    positives, negatives = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--config", default="gsm8k_recorded")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    prepared = recorded_ends(args.table, load_config(args.config))
    if prepared is None:
        return 2
    run, ends, scores = prepared
    table = run.world.table
    escalated = np.flatnonzero(scores[:, ends.weak] < 0.5)
    strong_right = scores[escalated, ends.strong] >= 0.5
    studied = OutcomeTable(
        prompts=tuple(f"{table.prompts[i]}\n\n{table.response(i, table.models[ends.weak]) or ''}" for i in escalated),
        models=(table.models[ends.strong],),
        scores=scores[escalated, ends.strong : ends.strong + 1],
        costs_nd=np.full((len(escalated), 1), np.nan),
        source=f"{table.source} (escalated prompts)",
    )
    predicted = cross_validated(studied, np.arange(len(escalated)), args.folds, args.seed)[:, 0]
    always_strong = int(ends.strong_costs.sum())
    base = int(ends.weak_costs.sum() + ends.strong_costs[escalated].sum())
    accuracy = float(np.mean(np.maximum(scores[:, ends.weak] >= 0.5, scores[:, ends.strong] >= 0.5)))
    order = np.argsort(predicted, kind="stable")
    rows = []
    for skipped in (0, 5, 10, 20, 30, 40, 60, 80, int((~strong_right).sum())):
        gone = order[:skipped]
        lost = int(strong_right[gone].sum())
        cost = base - int(ends.strong_costs[escalated[gone]].sum())
        rows.append((str(skipped), str(lost), f"{accuracy - lost / len(table):.3f}", f"{cost / always_strong:.1%}"))
    print(render_table(
        ("escalations skipped", "of them right", "cascade accuracy", "share of always-strong cost"), rows,
        title=(f"{len(escalated)} of {len(table)} prompts escalated, {int((~strong_right).sum())} of them wrong at the "
               f"strong model too; AUC of the predicted success {auc(predicted, strong_right):.3f} "
               f"({args.folds}-fold cross-validated)"),
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
