"""The orchestrator's own CPU per request, without HTTP, part by part.

    python tools/bench.py overhead [--requests 3000 --rounds 3]
    python tools/bench.py overhead --revisions 57c8d99,HEAD   # the full path, revision against revision

Providers answer from an in-memory transport at once (a canned OpenAI completion),
and the orchestrator starts as `orchestrator run` starts it (the workload loaded
first, the collector frozen after start-up), so what is measured is the orchestrator alone: routing, the ledger, the cache, the
telemetry, the actors and their messages. Each variant switches parts off; rounds
are interleaved and the median is shown with the spread. Run it pinned to one core
(`taskset -c 1`) for steadier figures; the e2e harness measures the whole path.
"""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import orjson

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from actors.messages import CachePolicy  # noqa: E402
from actors.providers.transport import RawResponse  # noqa: E402
from actors.providers.wire import HttpCall  # noqa: E402
from orchestrator.api import Orchestrator  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.tables import render_table  # noqa: E402
from tools.benchmarks.e2e_client import arc_bench_requests, timed  # noqa: E402
from tools.benchmarks.variants import VARIANTS, with_parts  # noqa: E402

ANSWER = RawResponse(200, {"content-type": "application/json"}, orjson.dumps({
    "id": "x", "object": "chat.completion",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "def transform(grid):\n    return [row[::-1] for row in grid]\n" * 3}}],
    "usage": {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960},
}))


class InstantTransport:
    """Answers every call at once (after one checkpoint, as a socket read would)."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, call: HttpCall) -> RawResponse:
        await anyio.lowlevel.checkpoint()
        return ANSWER


async def _measure(name: str, requests: int, state: str) -> float:
    config = with_parts(load_config(ROOT / "configs" / "simulated.yaml", state_dir=state), VARIANTS[name], 100)
    measured = arc_bench_requests(requests)
    async with Orchestrator.start(
        config, transport_factory=lambda settings, loop=None: InstantTransport(), freeze_gc=True
    ) as orch:
        warmup = [attrs.evolve(r, cache=CachePolicy.OFF) for r in arc_bench_requests(requests, offset=10**6)]
        await timed(orch.generate, warmup, 100)

        async def send(request: Any) -> None:
            await orch.generate(request)

        return (await timed(send, measured, 100))["cpu_us"]


_REVISION_CLIENT = """
import sys, tempfile, anyio
sys.path.insert(0, sys.argv[1])
from tools.benchmarks import overhead
with tempfile.TemporaryDirectory() as state:
    print(anyio.run(overhead._measure, "full", int(sys.argv[2]), state))
"""


def run_revisions(revisions: list[str], requests: int = 3000, rounds: int = 3) -> None:
    """The full variant of each git revision's own overhead measurement, interleaved, in one run.

    Each revision's tree measures itself (its `tools/benchmarks/overhead.py`), in a
    process of its own; pin the parent (`taskset -c 1`) and the children inherit it.
    """
    from tools.benchmarks.e2e import against_first, figures_by_revision

    rows = against_first(figures_by_revision(revisions, _REVISION_CLIENT, str(requests), rounds), ".0f")
    print(render_table(("revision", "CPU µs/request", f"against {revisions[0]}"), rows,
                       title=f"orchestrator overhead without HTTP by revision: {requests} warm ARC requests at "
                             f"concurrency 100, the full path, {rounds} interleaved rounds"))
    print()


def main(requests: int = 3000, rounds: int = 3) -> None:
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            with tempfile.TemporaryDirectory() as state:
                results[name].append(anyio.run(_measure, name, requests, state))
    from tools.benchmarks.e2e import against_first

    print(render_table(("variant", "CPU µs/request", "against full"), against_first(results, ".0f"),
                       title=f"orchestrator overhead without HTTP: {requests} warm ARC requests at concurrency 100, "
                             f"{rounds} interleaved rounds; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"))
    print()
