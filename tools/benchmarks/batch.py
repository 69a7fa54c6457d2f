"""A GA population through `generate_batch`, revision against revision.

    taskset -c 1 python tools/bench.py batch --revisions 8522d83,HEAD [--requests 3000 --rounds 3]

The way a GA seeds a population: one `generate_batch` of warm ARC requests at
concurrency 100, providers answering at once from the in-memory transport of
`overhead.py`, the orchestrator started as `orchestrator run` starts it. The figure
is the process's CPU per request for the whole batch (the orchestrator, its actors,
their threads). Each revision's tree measures itself, in a process of its own,
interleaved; pin the parent (`taskset -c 1`) and the children inherit it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.tables import render_table  # noqa: E402

_CLIENT = """
import resource, sys, tempfile
sys.path.insert(0, sys.argv[1])
import anyio, attrs
from actors.messages import CachePolicy
from orchestrator.api import Orchestrator
from orchestrator.config import load_config
from tools.benchmarks import overhead
from tools.benchmarks.e2e_client import arc_bench_requests

def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

async def main(count, state):
    config = overhead.with_parts(load_config(overhead.ROOT / "configs" / "simulated.yaml", state_dir=state),
                                 overhead.VARIANTS["full"], 100)
    population = arc_bench_requests(count)
    async with Orchestrator.start(config, transport_factory=lambda settings, loop=None: overhead.InstantTransport(),
                                  freeze_gc=True) as orch:
        warmup = [attrs.evolve(r, cache=CachePolicy.OFF) for r in arc_bench_requests(count, offset=10**6)]
        await orch.generate_batch(warmup, concurrency=100)
        before = cpu_s()
        await orch.generate_batch(population, concurrency=100)
        print((cpu_s() - before) / count * 1e6)

with tempfile.TemporaryDirectory() as state:
    anyio.run(main, int(sys.argv[2]), state)
"""


def run_revisions(revisions: list[str], requests: int = 3000, rounds: int = 3) -> None:
    from tools.benchmarks.e2e import against_first, figures_by_revision

    rows = against_first(figures_by_revision(revisions, _CLIENT, str(requests), rounds), ".0f")
    print(render_table(("revision", "CPU µs/request", f"against {revisions[0]}"), rows,
                       title=f"a population of {requests} warm ARC requests through generate_batch at concurrency "
                             f"100, no HTTP, {rounds} interleaved rounds"))
    print()
