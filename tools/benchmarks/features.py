"""The learned text router's features and prediction per prompt, p50 over distinct prompts, no I/O.

    python -m tools.benchmarks.features

Plain text (GSM8K's questions, ../shared/data) and 760-character coding prompts, with
the shipped text default (`configs/models/text_default.npz`): the part of a plain
prompt's routing decision that the model costs. Run it pinned (`taskset -c 1`); for a
before and after, run it in both trees alternately.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from actors.policy import learned
from actors.policy.prompt_features import dense_features, sparse_features
from orchestrator.tables import render_table
from orchestrator.workload import text_requests
from tools.benchmarks.e2e_client import gsm8k_questions

ROOT = Path(__file__).resolve().parent.parent.parent


def _p50_us(work: Callable[[str], object], texts: list[str]) -> float:
    samples = []
    for text in texts:
        started = time.perf_counter()
        work(text)
        samples.append(time.perf_counter() - started)
    return sorted(samples)[len(samples) // 2] * 1e6


def main() -> None:
    from tools.benchmarks.e2e import bare_reference

    model = learned.load(ROOT / "configs" / "models" / "text_default.npz")
    plain = gsm8k_questions()
    coding = [r.messages[0].content for r in text_requests(1500, 760, seed=7)]  # type: ignore[union-attr]
    parts = (("sparse features", lambda t: sparse_features(t, model.spec)),
             ("dense features", lambda t: dense_features(t, None, model.spec.max_chars)),
             ("prediction (both, and the model)", model.predict_text))
    rows = [(name, f"{_p50_us(work, plain):.1f}", f"{_p50_us(work, coding):.1f}") for name, work in parts]
    print(render_table(("per prompt", "GSM8K question p50 µs", "760-character coding prompt p50 µs"), rows,
                       title=f"the learned text default's features and prediction; this machine's bare client "
                             f"{bare_reference():.0f} µs/request"))
    print()


if __name__ == "__main__":
    main()
