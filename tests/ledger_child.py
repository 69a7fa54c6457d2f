"""A ledger under load, for the SIGKILL test: prints each operation once it is acknowledged."""

from __future__ import annotations

import random
import sys

import anyio

from actors.catalog import CODEC
from actors.ledger.actor import LedgerActor
from actors.ledger.client import LedgerClient
from actors.ledger.settings import LedgerSettings
from actors.runtime.supervisor import Supervisor


async def main(state_dir: str, seed: int) -> None:
    settings = LedgerSettings(limit_nd=5_000_000, journal_path=f"{state_dir}/journal", state_dir=state_dir)
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings)))
    rng = random.Random(seed)
    out = sys.stdout

    async def worker(worker_id: int) -> None:
        for n in range(10_000):
            rid = f"{seed}-{worker_id}-{n}"
            amount = rng.randint(1, 2000)
            reply = await ledger.reserve(rid, rid, "t", "m", amount)
            if not reply.granted:
                continue
            out.write(f"R {rid} {amount}\n")
            if rng.random() < 0.2:
                await ledger.release(rid)
                out.write(f"X {rid}\n")
            else:
                actual = rng.randint(0, amount)
                await ledger.settle(rid, actual)
                out.write(f"S {rid} {actual}\n")
            out.flush()

    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        print("READY", flush=True)
        async with anyio.create_task_group() as workers:
            for worker_id in range(16):
                workers.start_soon(worker, worker_id)
        supervisor.stop()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]))
