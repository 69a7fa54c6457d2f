"""The runtime's cost of one ask to an idle actor, revision against revision.

    python tools/bench.py ask --revisions 71fe820,HEAD [--rounds 3]

One caller asks an echo actor 30,000 times in a row, each reply awaited before the
next ask: every ask wakes the idle actor and then its asker, so this is the price of
a hop on the request path (encode, queue, wake, handle, reply, wake, decode) with
nothing else running. Each git revision's tree measures itself in a process of its
own, interleaved; pin the parent (`taskset -c 1`) and the children inherit it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.tables import render_table  # noqa: E402

ASKS = 30_000

_CLIENT = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import anyio
from actors.catalog import CODEC
from actors.messages import ChatMessage
from actors.runtime.actor import Actor
from actors.runtime.supervisor import Supervisor

class Echo(Actor):
    async def handle(self, msg, corr):
        return msg

def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

async def main(asks):
    supervisor = Supervisor(CODEC)
    ref = supervisor.add("echo", Echo)
    message = ChatMessage("user", "hi")
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        for _ in range(2000):
            await ref.ask(message)
        before = cpu_s()
        for _ in range(asks):
            await ref.ask(message)
        print((cpu_s() - before) / asks * 1e6)
        supervisor.stop()

anyio.run(main, int(sys.argv[2]))
"""


def run_revisions(revisions: list[str], rounds: int = 3) -> None:
    from tools.benchmarks.e2e import against_first, figures_by_revision

    rows = against_first(figures_by_revision(revisions, _CLIENT, str(ASKS), rounds), ".2f")
    print(render_table(("revision", "CPU µs per ask", f"against {revisions[0]}"), rows,
                       title=f"one ask to an idle echo actor, {ASKS} in a row, {rounds} interleaved rounds"))
    print()
