"""A separate orchestrator-like process hammering the shared ledger (for tests and the benchmark).

    python tests/ledger_pg_child.py DSN LIMIT_ND COUNT AMOUNT [--hang]

Reserves COUNT times AMOUNT nd through its own ledger actor (batched), settles each
grant at a random share of it, and prints `settled <total> granted <n> denied <m>`.
With --hang it prints READY after its first grants and then waits, holding them open,
to be killed.
"""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.catalog import CODEC  # noqa: E402
from actors.ledger.client import LedgerClient  # noqa: E402
from actors.ledger.pg_actor import PostgresLedgerActor  # noqa: E402
from actors.ledger.settings import LedgerSettings  # noqa: E402
from actors.runtime.supervisor import Supervisor  # noqa: E402


async def main() -> None:
    dsn, limit, count, amount = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    hang = "--hang" in sys.argv
    settings = LedgerSettings(limit_nd=limit, backend="postgres", dsn=dsn, lease_s=2.0)
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: PostgresLedgerActor(settings)))
    rng = random.Random()
    totals = {"settled": 0, "granted": 0, "denied": 0}

    async def one(i: int) -> None:
        rid = uuid.uuid4().hex
        reply = await ledger.reserve(rid, f"q{i}", "tier_1", "m", amount)
        if not reply.granted:
            totals["denied"] += 1
            return
        totals["granted"] += 1
        if hang:
            return
        cost = rng.randint(0, amount)
        await ledger.settle(rid, cost)
        totals["settled"] += cost

    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        async with anyio.create_task_group() as clients:
            for i in range(count):
                clients.start_soon(one, i)
        if hang:
            print("READY", totals["granted"], flush=True)
            await anyio.sleep_forever()
        print(f"settled {totals['settled']} granted {totals['granted']} denied {totals['denied']}", flush=True)
        supervisor.stop()


if __name__ == "__main__":
    anyio.run(main)
