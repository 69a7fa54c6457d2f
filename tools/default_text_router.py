"""Build and measure the shipped text router (`configs/models/text_default.npz`) from public outcome tables.

    python tools/default_text_router.py --routellm PATH/TO/RouteLLM [--out configs/models/text_default.npz]

The tables are RouteLLM's (lm-sys/RouteLLM, Apache-2.0; the shipped model used commit
0b64fdafe049e596a3f5657c219329f24af24198): Mixtral-8x7B vs GPT-4 correctness on the 57
MMLU subjects (`routellm/evals/mmlu/responses/mmlu_*.csv`) and on GSM8K
(`routellm/evals/gsm8k/gsm8k_responses.csv`, also in ../shared/data). They are cut into
five domains: GSM8K and MMLU's four standard categories (STEM, humanities, social
sciences, other).

Leave one domain out: for each domain, the learned router is fitted on the other four
and scored on it (APGR, two tiers): the shipped score (the model's gain and the
prompt's length, each as a percentile of the training prompts, averaged: what
`complexity_detection.text_model` routes by), the model alone, prompt length and the
keyword heuristic. Then the model is fitted on all five and written to `--out`.
A fit on ~15,000 long prompts takes a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.policy import learned  # noqa: E402
from orchestrator.lab import metrics  # noqa: E402
from orchestrator.lab.evaluation import heuristic_scores  # noqa: E402
from orchestrator.lab.outcomes import OutcomeTable, read_table  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402

MMLU_CATEGORIES = {
    "mmlu-stem": (
        "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science "
        "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
        "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
        "high_school_mathematics high_school_physics high_school_statistics machine_learning"
    ),
    "mmlu-humanities": (
        "formal_logic high_school_european_history high_school_us_history high_school_world_history "
        "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory "
        "professional_law world_religions"
    ),
    "mmlu-social": (
        "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
        "high_school_microeconomics high_school_psychology human_sexuality professional_psychology public_relations "
        "security_studies sociology us_foreign_policy"
    ),
    "mmlu-other": (
        "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing "
        "medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology"
    ),
}
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def domain_tables(routellm: Path) -> dict[str, OutcomeTable]:
    """Each domain's table, complete rows only, the two models in (weak, strong) order."""
    evals = routellm / "routellm" / "evals"
    tables = {"gsm8k": _concatenated([read_table(evals / "gsm8k" / "gsm8k_responses.csv")], "gsm8k")}
    for domain, subjects in MMLU_CATEGORIES.items():
        parts = [read_table(evals / "mmlu" / "responses" / f"mmlu_{subject}.csv") for subject in subjects.split()]
        tables[domain] = _concatenated(parts, domain)
    return {name: table.complete() for name, table in tables.items()}


def _concatenated(parts: list[OutcomeTable], source: str) -> OutcomeTable:
    """The parts' rows under one header, columns in (weak, strong) order whatever order each part read them in.

    A table without costs orders its models by mean score, so a subject where Mixtral
    beat GPT-4 would otherwise come out with its columns swapped.
    """
    columns = []
    for part in parts:
        if set(part.models) != {WEAK, STRONG}:
            raise SystemExit(f"{part.source}: models {part.models}, expected {WEAK} and {STRONG}")
        columns.append([part.models.index(WEAK), part.models.index(STRONG)])
    return OutcomeTable(
        prompts=tuple(p for part in parts for p in part.prompts), models=(WEAK, STRONG),
        scores=np.vstack([part.scores[:, c] for part, c in zip(parts, columns)]),
        costs_nd=np.vstack([part.costs_nd[:, c] for part, c in zip(parts, columns)]),
        source=source,
    )


def _apgr(score: np.ndarray, table: OutcomeTable) -> float:
    costs = table.relative_costs()
    return metrics.two_tier(score, table.scores[:, 0], table.scores[:, 1], costs[:, 0], costs[:, 1]).apgr


def leave_one_domain_out(tables: dict[str, OutcomeTable]) -> list[tuple[str, int, float, float, float, float]]:
    """Per held-out domain: prompts, APGR of the shipped score (model and length blended), the model alone,
    prompt length, and the keyword heuristic."""
    rows = []
    for held_out, test in tables.items():
        train = _concatenated([t for name, t in tables.items() if name != held_out], f"all but {held_out}")
        started = time.perf_counter()
        model = learned.fit(train)
        predicted = model.predict_batch(learned.table_features(test, model.spec))
        gains = learned.gain_score(predicted)
        shipped = np.array([model.blended_percentile(float(g), len(p)) for g, p in zip(gains, test.prompts)])
        learned_apgr = _apgr(predicted[:, 1] - predicted[:, 0], test)
        length_apgr = _apgr(np.array([len(p) for p in test.prompts], dtype=float), test)
        heuristic_apgr = _apgr(heuristic_scores(test.prompts), test)
        rows.append((held_out, len(test), _apgr(shipped, test), learned_apgr, length_apgr, heuristic_apgr))
        print(f"  {held_out}: fitted on {len(train)} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routellm", type=Path, required=True, help="a checkout of lm-sys/RouteLLM")
    parser.add_argument("--out", type=Path, default=None, help="write the model fitted on every domain here")
    args = parser.parse_args(argv)
    tables = domain_tables(args.routellm)
    rows = leave_one_domain_out(tables)
    print(render_table(
        ("held-out domain", "prompts", "shipped (model + length)", "model alone", "length", "heuristic",
         "shipped - length"),
        [(name, n, f"{s:.3f}", f"{a:.3f}", f"{b:.3f}", f"{c:.3f}", f"{s - b:+.3f}") for name, n, s, a, b, c in rows],
        title="leave one domain out: APGR fitted on the other four, scored on the held-out one (two tiers)",
    ))
    if args.out is not None:
        everything = _concatenated(list(tables.values()), "RouteLLM gsm8k + mmlu (lm-sys/RouteLLM 0b64fda)")
        learned.save(learned.fit(everything), args.out)
        print(f"\nwrote {args.out}: fitted on {len(everything)} prompts of {len(tables)} domains")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
