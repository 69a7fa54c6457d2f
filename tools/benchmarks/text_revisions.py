"""Text prompts end to end, one git revision against this tree: client CPU per request, interleaved.

    python tools/bench.py text-revisions --revisions b4a330e --requests 2000 --rounds 3
    python tools/bench.py plain-revisions --revisions b40312b --requests 2000   # plain text (GSM8K), routed

The revision is exported (`git archive`) and given this tree's e2e client and prompt
generator (`orchestrator/workload.py`), so a revision from before the text workload
existed measures the same distinct 760-character prompts. Each client is a process of
its own, pinned to core 1 with the simulator on core 0 (tools/benchmarks/e2e.py).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from orchestrator.tables import render_table
from tools.benchmarks.e2e import ROOT, Simulator, export_revision, measure, pinning_note

WORKLOADS = {  # workload: (its bare client, the orchestrated modes, what the prompts are)
    "text": ("bare-text", ("text-pinned", "text-routed"), "distinct 760-character coding prompts"),
    "plain": ("bare-plain", ("plain-routed",), "distinct plain-text prompts (GSM8K questions)"),
}


def run(revision: str, requests: int, concurrency: int, rounds: int, workload: str = "text") -> None:
    bare_mode, modes, prompts = WORKLOADS[workload]
    with tempfile.TemporaryDirectory() as scratch:
        tree = export_revision(revision, Path(scratch))
        (Path(scratch) / "shared").symlink_to(ROOT.parent / "shared")  # the client reads GSM8K beside its tree
        (tree / "tools" / "benchmarks").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "tools" / "benchmarks" / "e2e_client.py", tree / "tools" / "benchmarks")
        shutil.copy(ROOT / "orchestrator" / "workload.py", tree / "orchestrator")
        roots = {revision: tree, "this tree": ROOT}
        results: dict[str, list[dict[str, float]]] = {"bare": []}
        with Simulator(0.0) as sim:
            measure(sim, bare_mode, 200, concurrency)
            for _ in range(rounds):
                results["bare"].append(measure(sim, bare_mode, requests, concurrency))
                for mode in modes:
                    for name, root in roots.items():
                        results.setdefault(f"{name}, {mode}", []).append(measure(sim, mode, requests, concurrency, root))
    bare = statistics.median(r["cpu_us"] for r in results["bare"])
    rows = [
        (name, f"{statistics.median(r['cpu_us'] for r in rs):.0f} [{min(r['cpu_us'] for r in rs):.0f}-"
               f"{max(r['cpu_us'] for r in rs):.0f}]",
         f"{bare / statistics.median(r['cpu_us'] for r in rs):.3f}", f"{statistics.median(r['rps'] for r in rs):.0f}")
        for name, rs in results.items()
    ]
    print(render_table(("client", "CPU µs/request", "ratio bare/x", "req/s"), rows,
                       title=f"{requests} {prompts} at concurrency {concurrency}, {rounds} "
                             f"interleaved rounds; bare client {bare:.0f} µs/request; {pinning_note()}"))
    print()
