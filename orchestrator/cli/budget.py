"""`orchestrator budget`: the ledger's limit, settled, reserved and remaining money.

`budget reconcile` decides the held reservations, calls whose outcome is unknown (sent
with no usable answer, or in flight when a process stopped; they count as spent until
then): by default each is charged at its reserved amount, the safe choice when the
provider may have billed; `--release` frees them when you know it did not.
`budget reset --confirm` starts a new budget period from zero (journaled, not erased).
With `budget.backend: postgres` it shows the shared ledger: the totals every process
shares, and per process what it settled and holds open; `reconcile` then charges (or
`--release` frees) only the reservations of processes whose lease has expired.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson

from actors.catalog import CODEC
from actors.ledger.actor import LedgerActor, open_read_only
from actors.ledger.client import LedgerClient
from actors.ledger.journal import lock_holder
from actors.ledger.messages import BudgetStatus
from actors.ledger.postgres import PostgresBook
from actors.money import format_usd
from actors.runtime.supervisor import Supervisor
from orchestrator.config import default_config_path, load_config
from orchestrator.tables import render_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "budget", help="show the budget; reconcile held reservations; reset", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=("show", "reconcile", "reset"), default="show")
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the ledger journal lives (default: the config's)")
    parser.add_argument("--release", action="store_true", help="with reconcile: release instead of charging")
    parser.add_argument("--confirm", action="store_true", help="required by reset")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "reset" and not args.confirm:
        print("orchestrator budget reset: add --confirm to start the budget from zero")
        return 2
    config = load_config(args.config or default_config_path(), state_dir=args.state_dir)
    if config.engine.ledger.backend == "postgres":
        return _shared(config.engine.ledger, args)
    before = open_read_only(config.engine.ledger).status()
    running = lock_holder(config.engine.ledger.journal_path) if config.engine.ledger.journal_path else None
    status = before if args.action == "show" else anyio.run(_act, config.engine.ledger, args.action, args.release)
    decided = {"reservations": before.outstanding, "nd": before.unreconciled_nd,
               "action": "released" if args.release else "charged"} if args.action == "reconcile" else None
    if args.json:
        print(orjson.dumps({**_as_dict(status), "running_pid": running, **({"reconciled": decided} if decided else {})},
                           option=orjson.OPT_INDENT_2).decode())
    else:
        if decided:
            print(f"reconciled {decided['reservations']} held reservations: {format_usd(decided['nd'], 6)} "
                  f"{decided['action']}\n")
        print(render_status(status, running))
    return 0


async def _act(settings: Any, action: str, release: bool) -> BudgetStatus:
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: LedgerActor(settings)))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        if action == "reconcile":
            status = await ledger.reconcile(release)
        else:
            status = await ledger.reset()
        supervisor.stop()
    return status


def _shared(settings: Any, args: argparse.Namespace) -> int:
    """The shared PostgreSQL ledger: totals, and each process's settled and open money."""
    if args.action == "reset":
        print("orchestrator budget reset: a shared ledger is not reset from one process", file=sys.stderr)
        return 2
    book = PostgresBook(settings, owner="orchestrator-cli")
    book.connect()
    try:
        status = book.reconcile(args.release) if args.action == "reconcile" else book.status()
        owners = book.owners()
    finally:
        book.close()
    if args.json:
        print(orjson.dumps({**_as_dict(status), "processes": owners}, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(render_status(status))
    rows = [(o["owner"], "alive" if o["alive"] else "lease expired", format_usd(o["settled_nd"], 6),  # type: ignore[arg-type]
             format_usd(o["open_nd"], 6), o["open"]) for o in owners]  # type: ignore[arg-type]
    print("\n" + render_table(("process", "lease", "settled", "open", "open reservations"), rows,
                              title="per process (shared ledger)"))
    return 0


def _as_dict(status: BudgetStatus) -> dict[str, Any]:
    return {
        "limit_nd": status.limit_nd,
        "settled_nd": status.settled_nd,
        "reserved_nd": status.reserved_nd,
        "unreconciled_nd": status.unreconciled_nd,
        "remaining_nd": status.remaining_nd,
        "outstanding": status.outstanding,
        "overruns": status.overruns,
        "operations": status.operations,
        "limits": [
            {"scope": l.scope, "limit_nd": l.limit_nd, "settled_nd": l.settled_nd,
             "reserved_nd": l.reserved_nd, "remaining_nd": l.remaining_nd}
            for l in status.limits
        ],
    }


def render_status(status: BudgetStatus, running_pid: int | None = None) -> str:
    """The limits table and what is held; with `running_pid`, the journal is a running orchestrator's, whose open
    reservations are mostly calls in flight rather than held ones."""
    rows = [
        (l.scope, format_usd(l.limit_nd, 6), format_usd(l.settled_nd, 6), format_usd(l.reserved_nd, 6),
         format_usd(l.remaining_nd, 6), f"{100 * (l.settled_nd + l.reserved_nd) / l.limit_nd:.1f}%" if l.limit_nd else "-")
        for l in status.limits
    ]
    lines = [render_table(("scope", "limit", "settled", "reserved", "remaining", "used"), rows)]
    if running_pid is not None:
        lines.append(f"\na running orchestrator (pid {running_pid}) holds this ledger: these are its journal's figures, "
                     f"and its {status.outstanding} open reservations ({format_usd(status.reserved_nd, 6)}) are calls in "
                     "flight or held")
    elif status.unreconciled_nd:
        lines.append(
            f"\n{format_usd(status.unreconciled_nd, 6)} is held: calls whose outcome is unknown (sent with no usable "
            "answer, or in flight when a process stopped) count as spent until `orchestrator budget reconcile`"
        )
    if status.overruns:
        lines.append(f"{status.overruns} settlements exceeded their reservation (providers ignoring max_tokens)")
    lines.append(f"{status.operations} journaled operations")
    return "\n".join(lines)
