"""How long `orchestrator routing eval` takes on an 11-model, 1,500-prompt table with per-prompt costs.

    python tools/bench.py eval-speed [--requests ROWS]

The table is synthetic and seeded (no public 11-model table is on these machines):
distinct coding prompts of about 2,500 characters (`orchestrator.workload.text_requests`),
a third with a "hard" word; model j succeeds with probability 0.35 + 0.055 j, less 0.3
on hard prompts, and costs 1.6^j x $0.0001 scaled by the prompt's length. It is
written as a CSV with binary-float costs (as public router benchmarks store them) and
evaluated by the CLI in a subprocess, 5 folds, every router.
"""

from __future__ import annotations

import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.tables import render_table
from orchestrator.workload import text_requests

TIERS = 11
HARD = ("recursion", "concurrency", "proof", "distributed")
ROOT = Path(__file__).resolve().parent.parent.parent


def write_table(path: Path, rows: int, chars: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    models = [f"m{t:02d}" for t in range(TIERS)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", *models, *(f"{m}_cost" for m in models)])
        for index, request in enumerate(text_requests(rows, chars, seed=seed + 100)):
            prompt = request.messages[0].content + (" " + rng.choice(HARD) if index % 3 == 0 else "")
            hard = any(word in prompt for word in HARD)
            outcomes = [int(rng.random() < min(0.98, max(0.02, 0.35 + 0.055 * t - (0.3 if hard else 0.0))))
                        for t in range(TIERS)]
            costs = [0.0001 * 1.6**t * len(prompt) / chars for t in range(TIERS)]
            writer.writerow([prompt, *outcomes, *costs])


def main(rows: int = 1500, chars: int = 2500) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        table = Path(scratch) / "eleven.csv"
        write_table(table, rows, chars)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "routing", "eval", "--data", str(table)],
                              cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"routing eval failed ({done.returncode}): {done.stderr[-2000:]}")
    print(done.stdout)
    print(render_table(("table", "routing eval, s"), [(f"{TIERS} models x {rows} prompts (~{chars} chars), 5 folds",
                                                       f"{took:.1f}")],
                       title="evaluation speed (target <= 60 s)"))
