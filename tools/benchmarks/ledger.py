"""Ledger throughput: reserve+settle pairs per second through the actor, durable journal."""

from __future__ import annotations

import os
import tempfile
import time

import anyio

from actors.catalog import CODEC
from actors.ledger.actor import LedgerActor
from actors.ledger.client import LedgerClient
from actors.ledger.settings import LedgerSettings
from actors.runtime.supervisor import Supervisor
from orchestrator.tables import render_table


async def _pairs(settings: LedgerSettings, ops: int, clients: int) -> float:
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings)))
    per_client = ops // clients

    async def client(c: int) -> None:
        for i in range(per_client):
            rid = f"{c}-{i}"
            await ledger.reserve(rid, rid, "tier_1", "m", 1000)
            await ledger.settle(rid, 700)

    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        start = time.perf_counter()
        async with anyio.create_task_group() as clients_tg:
            for c in range(clients):
                clients_tg.start_soon(client, c)
        elapsed = time.perf_counter() - start
        supervisor.stop()
    return per_client * clients / elapsed


def run(ops: int = 20_000, clients: int = 100) -> dict[str, float]:
    out = {}
    for label, journal, group in (("in memory (no journal)", False, True), ("journal, group commit", True, True),
                                  ("journal, fsync per operation", True, False)):
        with tempfile.TemporaryDirectory() as state:
            settings = LedgerSettings(limit_nd=10**15, journal_path=f"{state}/journal" if journal else None,
                                      state_dir=state, group_commit=group)
            count = ops if group else max(clients * 10, ops // 10)
            out[label] = anyio.run(_pairs, settings, count, clients)
            if journal:
                out[label + " bytes/op"] = os.path.getsize(f"{state}/journal") / (2 * (count // clients) * clients)
    return out


def main() -> None:
    results = run()
    rows = [(k, f"{v:.0f}" if "bytes" not in k else f"{v:.1f}") for k, v in results.items()]
    print(render_table(("ledger (100 concurrent clients)", "reserve+settle pairs/s or bytes/op"), rows,
                       title="ledger throughput"))
    print()


if __name__ == "__main__":
    main()
