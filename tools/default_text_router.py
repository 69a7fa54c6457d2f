"""Build and measure the shipped text router (`configs/models/text_default.npz`) from public outcome tables.

    python tools/default_text_router.py --routellm PATH/TO/RouteLLM [--out configs/models/text_default.npz]

The tables are RouteLLM's (lm-sys/RouteLLM, Apache-2.0; the shipped model used commit
0b64fdafe049e596a3f5657c219329f24af24198): Mixtral-8x7B vs GPT-4 correctness on the 57
MMLU subjects (`routellm/evals/mmlu/responses/mmlu_*.csv`) and on GSM8K
(`routellm/evals/gsm8k/gsm8k_responses.csv`, also in ../shared/data). They are cut into
five domains: GSM8K and MMLU's four standard categories (STEM, humanities, social
sciences, other).

Leave one domain out: for each domain, the learned router is fitted on the other four
and scored on it (APGR, two tiers): the blended score (the model's gain and the
prompt's length, each as a percentile of the training prompts, averaged: what
`complexity_detection.text_model` routes by), the model alone, prompt length and the
keyword heuristic. Then the model is fitted on all five and written to `--out`.
A fit on ~15,000 long prompts takes a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.policy import learned  # noqa: E402
from orchestrator.lab.domains import concatenated, leave_one_domain_out  # noqa: E402
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
MODELS = ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
"""(weak, strong) in every RouteLLM table used."""


def domain_tables(routellm: Path) -> dict[str, OutcomeTable]:
    """Each domain's table, complete rows only, the two models in (weak, strong) order."""
    evals = routellm / "routellm" / "evals"
    tables = {"gsm8k": concatenated([read_table(evals / "gsm8k" / "gsm8k_responses.csv")], MODELS, "gsm8k")}
    for domain, subjects in MMLU_CATEGORIES.items():
        parts = [read_table(evals / "mmlu" / "responses" / f"mmlu_{subject}.csv") for subject in subjects.split()]
        tables[domain] = concatenated(parts, MODELS, domain)
    return {name: table.complete() for name, table in tables.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routellm", type=Path, required=True, help="a checkout of lm-sys/RouteLLM")
    parser.add_argument("--out", type=Path, default=None, help="write the model fitted on every domain here")
    args = parser.parse_args(argv)
    tables = domain_tables(args.routellm)
    results = leave_one_domain_out(
        tables, fitted=lambda domain, rows: print(f"  {domain} held out: fitted on {rows} rows", file=sys.stderr))
    print(render_table(
        ("held-out domain", "prompts", "as shipped", "coding signal", "blended (model + length)", "model alone",
         "length", "heuristic", "shipped - length"),
        [(r.domain, r.prompts, f"{r.shipped:.3f}", r.coded, f"{r.blended:.3f}", f"{r.model:.3f}", f"{r.length:.3f}",
          f"{r.heuristic:.3f}", f"{r.shipped - r.length:+.3f}") for r in results],
        title="leave one domain out: APGR fitted on the other four, scored on the held-out one (two tiers)",
    ))
    if args.out is not None:
        everything = concatenated(list(tables.values()), MODELS, "RouteLLM gsm8k + mmlu (lm-sys/RouteLLM 0b64fda)")
        learned.save(learned.fit(everything), args.out)
        print(f"\nwrote {args.out}: fitted on {len(everything)} prompts of {len(tables)} domains")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
