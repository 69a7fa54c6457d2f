"""The end-to-end benchmark, made fair for a 2-core machine.

The simulator runs in its own process pinned to core 0 and each measured client in
its own process pinned to core 1 (`taskset`; said so when it is missing), so neither
steals the other's core and background load moves the figures far less. Each client
reports what it cost itself: **client CPU µs per request** (getrusage, all threads),
beside requests/s and latency. Rounds are interleaved (bare, cold, warm, bare, ...)
so drift hits every variant alike; the table gives the median and the spread.

Variants: `bare` (aiohttp straight to the simulator), `cold` (the full orchestrator,
first sight of every task), `warm` (the same after an unmeasured pass has warmed the
estimator and prompt memos; the measured pass asks new samples, so the cache misses).
Then the latency scenario (50 ms per answer, concurrency 16 and 100: added latency,
not CPU, is the question), sequential added latency (concurrency 1), and the import
time and memory of the package.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def _pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


def pinning_note() -> str:
    if _pin(0):
        return "simulator pinned to core 0, each client to core 1 (taskset)"
    return "NOT pinned (no taskset or a single core): figures are noisier"


def bare_reference(requests: int = 2000, concurrency: int = 100) -> float:
    """This machine's bare aiohttp client, µs of client CPU per request (pinned, against a pinned simulator).

    Benchmarks that measure no HTTP state it beside their figures, so figures from
    machines of different speed can be compared as ratios.
    """
    with Simulator(0.0) as sim:
        return measure(sim, "bare", requests, concurrency)["cpu_us"]


class Simulator:
    """The simulator in its own pinned process; `cpu_s()` reads its CPU time from /proc."""

    def __init__(self, latency_s: float) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.proc = subprocess.Popen(
            [*_pin(0), sys.executable, "-m", "orchestrator.cli.main", "simulator", "--port", str(self.port),
             "--latency", str(latency_s)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the simulator exited at start") from None
                time.sleep(0.05)
        raise RuntimeError("the simulator did not start within 30 s")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def measure(
    sim: Simulator, mode: str, requests: int, concurrency: int, root: Path = ROOT, parts: str = "",
    script: str = "e2e_client.py",
) -> dict[str, float]:
    """One pinned client process (`script`, of the tree at `root`); adds the simulator's utilisation during it."""
    before = sim.cpu_s()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        done = subprocess.run(
            [*_pin(1), sys.executable, str(root / "tools" / "benchmarks" / script), mode, sim.url,
             str(requests), str(concurrency), state, *([parts] if parts else [])],
            cwd=root, capture_output=True, text=True, check=False,
        )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"client {mode} failed:\n{done.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["sim_util"] = (sim.cpu_s() - before) / wall
    return figures


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}–{format(max(values), fmt)}]"


def against_first(results: dict[str, list[float]], fmt: str) -> list[tuple[str, str, str]]:
    """Table rows: each name, its median [min–max], and its median's difference from the first name's."""
    first = statistics.median(next(iter(results.values())))
    return [
        (name, _spread(values, fmt), f"{statistics.median(values) - first:+{fmt}}")
        for name, values in results.items()
    ]


WORKLOADS = {"arc": "ARC requests", "text": "distinct 760-character coding prompts",
             "plain": "distinct plain-text prompts (GSM8K questions)"}


def run_cpu(requests: int, concurrency: int, rounds: int, workload: str = "arc") -> dict[str, Any]:
    """Client CPU per request against a bare aiohttp client: ARC tasks, distinct coding prompts (pinned and routed),
    or plain text (GSM8K questions, routed by the learned text default)."""
    from orchestrator.tables import render_table

    modes = {"arc": ("bare", "cold", "warm"), "text": ("bare-text", "text-pinned", "text-routed"),
             "plain": ("bare-plain", "plain-routed")}[workload]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with Simulator(0.0) as sim:
        measure(sim, modes[0], 200, concurrency)
        for _ in range(rounds):
            for mode in modes:
                results[mode].append(measure(sim, mode, requests, concurrency))
    bare_cpu = statistics.median(r["cpu_us"] for r in results[modes[0]])
    rows = []
    for mode in modes:
        rs = results[mode]
        cpu = statistics.median(r["cpu_us"] for r in rs)
        rows.append((
            mode, _spread([r["rps"] for r in rs], ".0f"), _spread([r["cpu_us"] for r in rs], ".0f"),
            f"{bare_cpu / cpu:.3f}", _spread([r["p50_ms"] for r in rs], ".1f"), _spread([r["p99_ms"] for r in rs], ".1f"),
            f"{statistics.median(r['sim_util'] for r in rs):.0%}", f"{max(r['maxrss_mb'] for r in rs):.0f}",
        ))
    print(render_table(
        ("client", "req/s", "client CPU µs/req", "CPU ratio bare/x", "p50 ms", "p99 ms", "sim util", "peak RSS MB"),
        rows,
        title=f"e2e: {requests} {WORKLOADS[workload]} at "
              f"concurrency {concurrency}, {rounds} interleaved rounds; bare client {bare_cpu:.0f} µs/request; "
              f"{pinning_note()}",
    ))
    print()
    return {mode: results[mode] for mode in modes}


def run_latency(requests: int, rounds: int) -> None:
    from orchestrator.tables import render_table

    rows = []
    with Simulator(0.05) as sim:
        for concurrency in (16, 100):
            bare: list[dict[str, float]] = []
            orch: list[dict[str, float]] = []
            for _ in range(rounds):
                bare.append(measure(sim, "bare", requests, concurrency))
                orch.append(measure(sim, "warm", requests, concurrency))
            b_rps = statistics.median(r["rps"] for r in bare)
            o_rps = statistics.median(r["rps"] for r in orch)
            rows.append((
                concurrency, f"{b_rps:.0f}", f"{o_rps:.0f}", f"{o_rps / b_rps:.3f}",
                f"{statistics.median(r['p50_ms'] for r in orch) - statistics.median(r['p50_ms'] for r in bare):+.2f}",
                f"{statistics.median(r['cpu_us'] for r in bare):.0f}", f"{statistics.median(r['cpu_us'] for r in orch):.0f}",
            ))
    print(render_table(("concurrency", "bare req/s", "orch req/s", "throughput ratio", "added p50 ms",
                        "bare CPU µs/req", "orch CPU µs/req"), rows,
                       title=f"latency scenario: 50 ms per answer, {requests} requests, {rounds} rounds; {pinning_note()}"))
    print()


def run_latency_parts(requests: int, concurrency: int, rounds: int) -> None:
    """The latency scenario with the journal, the cache and the telemetry switched off in turn.

    Says how much of the added latency each part accounts for, and whether the target
    (0.95 of bare throughput at concurrency 16) is within reach of the core path at all.
    """
    from orchestrator.tables import render_table
    from tools.benchmarks.variants import VARIANTS

    results: dict[str, list[dict[str, float]]] = {"bare": [], **{name: [] for name in VARIANTS}}
    with Simulator(0.05) as sim:
        for _ in range(rounds):
            results["bare"].append(measure(sim, "bare", requests, concurrency))
            for name in VARIANTS:
                results[name].append(measure(sim, "warm", requests, concurrency, parts=name))
    bare_rps = statistics.median(r["rps"] for r in results["bare"])
    bare_p50 = statistics.median(r["p50_ms"] for r in results["bare"])
    rows = [
        (name, _spread([r["rps"] for r in rs], ".0f"), f"{statistics.median(r['rps'] for r in rs) / bare_rps:.3f}",
         f"{statistics.median(r['p50_ms'] for r in rs) - bare_p50:+.2f}", _spread([r["cpu_us"] for r in rs], ".0f"))
        for name, rs in results.items()
    ]
    print(render_table(("client", "req/s", "throughput ratio", "added p50 ms", "client CPU µs/req"), rows,
                       title=f"latency scenario by part: 50 ms per answer, concurrency {concurrency}, {requests} "
                             f"requests, {rounds} interleaved rounds; {pinning_note()}"))
    print()


def run_sequential(requests: int, rounds: int) -> None:
    from orchestrator.tables import render_table

    bare, orch = [], []
    with Simulator(0.0) as sim:
        for _ in range(rounds):
            bare.append(measure(sim, "bare", requests, 1))
            orch.append(measure(sim, "warm", requests, 1))
    rows = [
        (q, f"{statistics.median(r[f'{q}_ms'] for r in bare):.2f}", f"{statistics.median(r[f'{q}_ms'] for r in orch):.2f}",
         f"{statistics.median(r[f'{q}_ms'] for r in orch) - statistics.median(r[f'{q}_ms'] for r in bare):+.2f}")
        for q in ("p50", "p99")
    ]
    print(render_table(("percentile", "bare ms", "orch ms", "added ms"), rows,
                       title=f"sequential added latency: {requests} requests one at a time, {rounds} rounds; bare client "
                             f"{statistics.median(r['cpu_us'] for r in bare):.0f} µs/request (one at a time); "
                             f"{pinning_note()}"))
    print()


def run_footprint() -> None:
    from orchestrator.tables import render_table

    code = (
        "import time, resource; t = time.perf_counter(); import orchestrator, orchestrator.api; "
        "d = time.perf_counter() - t; print(d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    samples = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        samples.append(tuple(float(x) for x in out.split()))
    print(render_table(("import orchestrator", "seconds", "RSS MB after import"),
                       [("median of 5", f"{statistics.median(s[0] for s in samples):.3f}",
                         f"{statistics.median(s[1] for s in samples):.0f}")], title="footprint"))
    print()


def export_revision(revision: str, scratch: Path) -> Path:
    """The tree of a git revision, exported (`git archive`) into a folder of `scratch`."""
    tree = scratch / revision.replace("/", "_")
    tree.mkdir()
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def figures_by_revision(revisions: list[str], client: str, argument: str, rounds: int) -> dict[str, list[float]]:
    """Each revision's tree runs the `client` script on itself, `rounds` times interleaved.

    The script gets the tree's path and `argument` and prints its figure on its last
    line. Each run is a process of its own; pin the parent and the children inherit it.
    """
    results: dict[str, list[float]] = {revision: [] for revision in revisions}
    with tempfile.TemporaryDirectory() as scratch:
        trees = {revision: export_revision(revision, Path(scratch)) for revision in revisions}
        for _ in range(rounds):
            for revision, tree in trees.items():
                done = subprocess.run([sys.executable, "-c", client, str(tree), argument],
                                      cwd=tree, capture_output=True, text=True, check=True)
                results[revision].append(float(done.stdout.strip().splitlines()[-1]))
    return results


def run_revisions(revisions: list[str], requests: int, concurrency: int, rounds: int, latency_s: float = 0.0) -> None:
    """Before and after: the warm client of each git revision against one pinned simulator, interleaved.

    Each revision is exported (`git archive`) to a temporary tree and given this
    tree's `e2e_client.py`, which uses only the public API (Orchestrator.start,
    load_config, Request), so revisions from before the harness existed measure too.
    With `latency_s` the simulator answers that late, and the question becomes the
    throughput ratio (the latency scenario's, revision against revision).
    """
    from orchestrator.tables import render_table

    with tempfile.TemporaryDirectory() as scratch:
        trees: dict[str, Path] = {}
        for revision in revisions:
            tree = export_revision(revision, Path(scratch))
            (tree / "tools" / "benchmarks").mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "tools" / "benchmarks" / "e2e_client.py", tree / "tools" / "benchmarks")
            trees[revision] = tree
        results: dict[str, list[dict[str, float]]] = {"bare": [], **{r: [] for r in revisions}}
        with Simulator(latency_s) as sim:
            measure(sim, "bare", 200, concurrency)
            for _ in range(rounds):
                results["bare"].append(measure(sim, "bare", requests, concurrency))
                for revision, tree in trees.items():
                    results[revision].append(measure(sim, "warm", requests, concurrency, tree))
    bare_cpu = statistics.median(r["cpu_us"] for r in results["bare"])
    bare_rps = statistics.median(r["rps"] for r in results["bare"])
    rows = [
        (name if name == "bare" else f"{name} (warm)", _spread([r["cpu_us"] for r in rs], ".0f"),
         f"{bare_cpu / statistics.median(r['cpu_us'] for r in rs):.3f}", _spread([r["rps"] for r in rs], ".0f"),
         f"{statistics.median(r['rps'] for r in rs) / bare_rps:.3f}", _spread([r["p50_ms"] for r in rs], ".1f"))
        for name, rs in results.items()
    ]
    answers = f"answers after {latency_s * 1000:g} ms, " if latency_s else ""
    print(render_table(("client", "client CPU µs/req", "CPU ratio bare/x", "req/s", "throughput ratio", "p50 ms"), rows,
                       title=f"revisions: {requests} ARC requests at concurrency {concurrency}, {answers}{rounds} "
                             f"interleaved rounds; {pinning_note()}"))
    print()


def main(requests: int, concurrency: int, rounds: int) -> None:
    run_cpu(requests, concurrency, rounds)
    run_cpu(requests, concurrency, rounds, workload="text")
    run_latency(max(500, requests // 3), max(1, rounds - 1))
    run_sequential(300, rounds)
    run_footprint()


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
