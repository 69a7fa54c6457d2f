"""The shared ledger on a real, throwaway PostgreSQL cluster: same rules, many processes, leases, restarts."""

from __future__ import annotations

import itertools
import os
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskGroup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.catalog import CODEC
from actors.errors import LedgerError, LedgerUnavailable
from actors.ledger.client import LedgerClient
from actors.ledger.core import LedgerCore
from actors.ledger.messages import Hold, LedgerAck, LimitStatus, Release, Reserve, ReserveReply, Settle
from actors.ledger.pacing import PacingPlan, weights_for
from actors.ledger.pg_actor import PostgresLedgerActor
from actors.ledger.postgres import PostgresBook
from actors.ledger.settings import LedgerSettings
from actors.runtime.supervisor import Supervisor
from tools.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent
_databases = itertools.count()

pytestmark = pytest.mark.skipif(PgCluster.available() is not None, reason=PgCluster.available() or "")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    made = PgCluster()
    made.init()
    made.start()
    try:
        yield made
    finally:
        made.destroy()


def fresh_dsn(cluster: PgCluster) -> str:
    import psycopg

    name = f"ledger_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.dsn.replace("dbname=postgres", f"dbname={name}")


def book(dsn: str, limit: int = 10_000, **changes: object) -> PostgresBook:
    made = PostgresBook(LedgerSettings(limit_nd=limit, backend="postgres", dsn=dsn, **changes))  # type: ignore[arg-type]
    made.connect()
    return made


def test_the_same_rules_as_the_journaled_ledger(cluster: PgCluster) -> None:
    shared = book(fresh_dsn(cluster), limit=1000)
    replies, _, _ = shared.apply_batch([
        Reserve("a", "q", "tier_1", "m", 600), Reserve("b", "q", "tier_1", "m", 600), Reserve("a", "q", "tier_1", "m", 1),
        Reserve("n", "q", "tier_1", "m", -5), Settle("a", 400), Settle("a", 400), Release("a"), Release("ghost"),
    ])
    assert replies[0] == ReserveReply("a", True, 400) and not replies[1].granted  # type: ignore[union-attr]
    assert isinstance(replies[2], LedgerError) and "already exists" in str(replies[2])
    assert isinstance(replies[3], LedgerError) and "cannot be negative" in str(replies[3])
    assert replies[4] == LedgerAck("a", "settled") and replies[5] == LedgerAck("a", "duplicate")
    assert isinstance(replies[6], LedgerError) and isinstance(replies[7], LedgerError), "each bad op fails alone"
    status = shared.status()
    assert (status.settled_nd, status.reserved_nd, status.outstanding) == (400, 0, 0)
    replies, _, overruns = shared.apply_batch([Reserve("o", "q", "tier_1", "m", 100), Settle("o", 101)])
    assert replies[1] == LedgerAck("o", "settled", 1) and overruns == 1, "one nanodollar over is an overrun"
    assert shared.status().overruns == 1
    shared.close()


OPS = st.lists(
    st.tuples(st.sampled_from(["reserve", "settle", "release", "hold"]), st.integers(0, 5), st.integers(-5, 400)),
    min_size=1, max_size=25,
)


PACED = PacingPlan("ga", 900, weights_for("front_loaded", 3), reserve_nd=150, purpose_caps_nd={"seeding": 300})


@pytest.mark.parametrize("pacing", [None, PACED], ids=["unpaced", "paced"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, cut=st.integers(1, 6))
def test_any_operations_decide_exactly_as_the_core_does(
    cluster: PgCluster, pacing: PacingPlan | None, ops: list[tuple[str, int, int]], cut: int
) -> None:
    """Pacing's scopes too: generation n % 3 (carry-over reads the earlier ones), escalations from the reserve."""
    settings_ = LedgerSettings(limit_nd=1000, backend="postgres", dsn=fresh_dsn(cluster), pacing=pacing)
    shared = PostgresBook(settings_)
    shared.connect()
    model = LedgerCore(settings_)
    messages: list[object] = []
    for kind, n, amount in ops:
        rid = f"r{n}"
        purpose = ("seeding", "mutation", "escalation")[n % 3]
        messages.append({"reserve": Reserve(rid, "q", "tier_1", "m", amount, 0.0, n % 3, purpose), "settle": Settle(rid, max(amount, 0)),
                         "release": Release(rid), "hold": Hold(rid)}[kind])
    got: list[object] = []
    try:
        for start in range(0, len(messages), cut):
            got.extend(shared.apply_batch(messages[start : start + cut])[0])  # type: ignore[arg-type]
        status = shared.status()
    finally:
        shared.close()
    expected = [_model_reply(model, m) for m in messages]
    assert [_shape(g) for g in got] == [_shape(e) for e in expected]
    want = model.status()
    assert (status.settled_nd, status.reserved_nd, status.outstanding, status.overruns, status.operations) == (
        want.settled_nd, want.reserved_nd, want.outstanding, want.overruns, want.operations)
    assert _used(status.limits) == _used(want.limits)
    assert status.settled_nd + status.reserved_nd <= 1000 or model.overruns


def _used(limits: tuple[LimitStatus, ...]) -> list[LimitStatus]:
    """The limits with money booked (the database keeps a row for every scope a batch touched)."""
    return [limit for limit in limits if limit.settled_nd or limit.reserved_nd]


def _model_reply(core: LedgerCore, msg: object) -> object:
    try:
        if isinstance(msg, Reserve):
            decision, entry = core.reserve(msg.reservation_id, msg.request_id, msg.tier, msg.model, msg.amount_nd,
                                           msg.generation, msg.purpose)
            if entry is not None:
                core.apply(entry)
            return ReserveReply(msg.reservation_id, decision.granted, decision.remaining_nd, decision.reason,
                                waitable=decision.waitable)
        entry = (core.settle(msg.reservation_id, msg.actual_nd) if isinstance(msg, Settle)  # type: ignore[union-attr]
                 else core.release(msg.reservation_id) if isinstance(msg, Release)  # type: ignore[union-attr]
                 else core.hold(msg.reservation_id))  # type: ignore[union-attr]
        if entry is None:
            return LedgerAck(msg.reservation_id, "duplicate")  # type: ignore[union-attr]
        applied = core.apply(entry)
        return LedgerAck(msg.reservation_id, applied.outcome, applied.overrun_nd)  # type: ignore[union-attr]
    except LedgerError as exc:
        return exc


def _shape(reply: object) -> object:
    return type(reply).__name__ if isinstance(reply, LedgerError) else reply


def test_several_processes_never_overspend_and_every_settlement_is_counted(cluster: PgCluster) -> None:
    dsn = fresh_dsn(cluster)
    per_process, amount, processes = 400, 1000, 4
    limit = per_process * processes * amount // 5
    book(dsn, limit).close()
    children = [
        subprocess.Popen([sys.executable, str(ROOT / "tests" / "ledger_pg_child.py"), dsn, str(limit),
                          str(per_process), str(amount)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(processes)
    ]
    outputs = [child.communicate(timeout=120)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    settled = sum(int(out[1]) for out in outputs)
    denied = sum(int(out[5]) for out in outputs)
    reader = book(dsn, limit)
    status = reader.status()
    owners = reader.owners()
    reader.close()
    assert status.settled_nd == settled, "the sum of every process's results is the ledger's settled total"
    assert status.settled_nd + status.reserved_nd <= limit and status.outstanding == 0, "overspend exactly 0"
    assert denied > 0, "the budget bound: some reservations were refused"
    assert sum(o["settled_nd"] for o in owners) == settled and len(owners) == processes + 2


def test_a_killed_process_holds_its_reservations_until_its_lease_expires(cluster: PgCluster) -> None:
    import psycopg

    dsn = fresh_dsn(cluster)
    book(dsn, 100_000).close()
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "ledger_pg_child.py"), dsn, "100000", "20", "1000",
                              "--hang"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout is not None
    assert child.stdout.readline().split()[0] == "READY"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    survivor = book(dsn, 100_000)
    held = survivor.status()
    assert held.reserved_nd == 20_000 and held.outstanding == 20, "a dead process's reservations count as spent"
    survivor.reconcile()
    assert survivor.status().reserved_nd == 20_000, "not while its lease may still be live"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE ledger_owners SET lease_until = 0 WHERE owner <> %s", (survivor.owner,))
    after = survivor.reconcile()
    assert (after.reserved_nd, after.settled_nd, after.outstanding) == (0, 20_000, 0), "charged in full once expired"
    survivor.close()


def test_a_database_restart_fails_the_batch_typed_and_loses_nothing_committed(cluster: PgCluster) -> None:
    dsn = fresh_dsn(cluster)
    shared = book(dsn, 10_000)
    shared.apply_batch([Reserve("a", "q", "tier_1", "m", 100), Settle("a", 70)])
    cluster.stop()
    try:
        with pytest.raises(LedgerUnavailable, match="shared ledger"):
            shared.apply_batch([Reserve("b", "q", "tier_1", "m", 100)])
    finally:
        cluster.start()
    replies, _, _ = shared.apply_batch([Reserve("b", "q", "tier_1", "m", 100)])
    assert replies[0].granted  # type: ignore[union-attr]
    status = shared.status()
    assert status.settled_nd == 70 and status.reserved_nd == 100
    shared.close()


def test_orchestrator_processes_with_faulty_providers_share_one_budget(cluster: PgCluster, tmp_path: Path) -> None:
    """Which process spends is a race (the first to start may take the whole budget
    before the other's first request); what holds either way is that both are refused
    once it is gone, the ledger's total is exactly what they were charged, and nothing
    is overspent."""
    import json

    dsn = fresh_dsn(cluster)
    config = tmp_path / "shared.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'simulated.yaml'}\n"
        "llm_routing:\n"
        "  optimization: {budget_limit: 0.02}\n"
        "  routing: {downgrade_on_budget: false}\n"
        "  retry: {initial_s: 0.01, cap_s: 0.05}\n"
        "  budget: {backend: postgres, dsn: '" + dsn + "', lease_s: 30}\n"
        "  simulator:\n"
        "    faults:\n"
        "      - {kind: server_error, rate: 0.15}\n"
        "      - {kind: drop, rate: 0.05}\n"
    )
    workload = tmp_path / "w.jsonl"
    workload.write_text("".join(f'{{"prompt": "Write parser number {i}", "tier": "tier_2", "max_tokens": 2000}}\n'
                                for i in range(300)))
    runs = [
        subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", "run", "--config", str(config), "--requests",
                          str(workload), "--state-dir", str(tmp_path / f"p{n}"), "--json"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for n in range(2)
    ]
    summaries = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    reader = book(dsn, 20_000_000)
    status = reader.status()
    reader.close()
    seen = [{k: s[k] for k in ("succeeded", "budget_exceeded", "cost_nd")} for s in summaries]
    assert all(s["budget_exceeded"] > 0 for s in summaries), f"the shared budget refused requests of both processes: {seen}"
    assert sum(s["succeeded"] for s in summaries) > 0, f"and paid for some: {seen}"
    assert status.settled_nd == sum(s["cost_nd"] for s in summaries), "every result's cost is in the shared ledger"
    assert status.settled_nd + status.reserved_nd <= 20_000_000, "overspend exactly 0"
    assert status.reserved_nd == status.unreconciled_nd or status.reserved_nd == 0, "what stays open is held"


@pytest.mark.anyio
async def test_a_told_settle_rides_on_the_next_reserves_transaction(anyio_backend: str, cluster: PgCluster) -> None:
    """One transaction per request, not two: the settle nobody waits for joins the next reserve's batch."""
    import anyio.lowlevel

    settings = LedgerSettings(limit_nd=10_000, backend="postgres", dsn=fresh_dsn(cluster))
    actor = PostgresLedgerActor(settings)
    actor.TOLD_LINGER_S = 3600.0
    batches: list[list[str]] = []
    apply_batch = actor.book.apply_batch

    def recorded(ops: list[object]) -> object:
        batches.append([type(op).__name__ for op in ops])
        return apply_batch(ops)  # type: ignore[arg-type]

    actor.book.apply_batch = recorded  # type: ignore[method-assign]
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: actor))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        await ledger.reserve("r1", "q", "t", "m", 100)
        await ledger.tell(Settle("r1", 60))
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        await ledger.reserve("r2", "q", "t", "m", 100)
        status = await ledger.status()
        supervisor.stop()
    assert batches[:2] == [["Reserve"], ["Settle", "Reserve"]]
    assert status.settled_nd == 60 and status.reserved_nd == 100


@asynccontextmanager
async def pg_ledgers(settings: LedgerSettings, count: int) -> AsyncIterator[list[LedgerClient]]:
    """`count` ledger actors on one database, as `count` processes would have: each its own owner and connection."""
    supervisor = Supervisor(CODEC)
    clients = [
        LedgerClient(supervisor.add(f"ledger{i}", lambda: PostgresLedgerActor(settings))) for i in range(count)
    ]
    async with anyio.create_task_group() as tasks:
        await tasks.start(supervisor.run)
        yield clients
        supervisor.stop()


async def start_waiter(tasks: TaskGroup, ledger: LedgerClient, rid: str, amount: int,
                       into: list[ReserveReply]) -> None:
    """Ask, in `tasks`, for a reserve that waits up to 30 s for money; return once the ledger has it queued."""
    async def ask() -> None:
        into.append(await ledger.reserve(rid, "q", "t", "m", amount, wait_s=30.0))

    tasks.start_soon(ask)
    while (await ledger.status()).waiting == 0:
        await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_a_process_waits_for_another_processes_settle_instead_of_being_refused(
    anyio_backend: str, cluster: PgCluster
) -> None:
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=fresh_dsn(cluster))
    async with pg_ledgers(settings, 2) as (first, second):
        assert (await first.reserve("a", "q", "t", "m", 600)).granted
        replies: list[ReserveReply] = []
        async with anyio.create_task_group() as tasks:
            await start_waiter(tasks, second, "b", 600, replies)
            assert replies == [], "b waits while a holds its worst case"
            await first.settle("a", 100)
        gone = await second.reserve("c", "q", "t", "m", 950, wait_s=30.0)
        status = await first.status()
    assert replies[0].granted and replies[0].waited_s > 0
    assert not gone.granted and not gone.waitable, "settled 100 + 950 passes the limit: refused at once"
    assert (status.settled_nd, status.reserved_nd) == (100, 600)


@pytest.mark.anyio
async def test_a_wait_on_the_shared_ledger_runs_out_with_its_cause(anyio_backend: str, cluster: PgCluster) -> None:
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=fresh_dsn(cluster))
    async with pg_ledgers(settings, 1) as (ledger,):
        await ledger.reserve("a", "q", "t", "m", 600)
        reply = await ledger.reserve("b", "q", "t", "m", 600, wait_s=0.3)
        status = await ledger.status()
    assert not reply.granted and reply.waitable and "waited" in reply.reason
    assert 0.3 <= reply.waited_s < 2.0
    assert (status.reserved_nd, status.waiting, status.wait_expired) == (600, 0, 1)


@pytest.mark.anyio
async def test_closings_told_during_an_outage_are_sent_again_once_the_database_is_back(
    anyio_backend: str, cluster: PgCluster
) -> None:
    settings = LedgerSettings(limit_nd=10_000, backend="postgres", dsn=fresh_dsn(cluster))
    async with pg_ledgers(settings, 1) as (ledger,):
        for rid in ("a", "b", "c"):
            await ledger.reserve(rid, "q", "t", "m", 1000)
        cluster.stop("immediate")
        try:
            await ledger.tell(Settle("a", 300))
            await ledger.tell(Release("b"))
            await ledger.tell(Hold("c"))
            await anyio.sleep(0.3)
            with pytest.raises(LedgerUnavailable):
                await ledger.reserve("d", "q", "t", "m", 1000)
        finally:
            cluster.start()
        for _ in range(200):
            status = await ledger.status()
            if status.settled_nd == 300:
                break
            await anyio.sleep(0.02)
    assert (status.settled_nd, status.reserved_nd, status.unreconciled_nd, status.outstanding) == (300, 1000, 1000, 1)


@pytest.mark.anyio
async def test_closings_unheard_at_a_stop_are_kept_and_sent_by_the_next_process(
    anyio_backend: str, cluster: PgCluster, tmp_path: Path
) -> None:
    settings = LedgerSettings(limit_nd=10_000, backend="postgres", dsn=fresh_dsn(cluster), state_dir=str(tmp_path))
    async with pg_ledgers(settings, 1) as (ledger,):
        await ledger.reserve("a", "q", "t", "m", 1000)
        cluster.stop("immediate")
        try:
            await ledger.tell(Settle("a", 300))
            await anyio.sleep(0.2)
        except BaseException:
            cluster.start()
            raise
    kept = list((tmp_path / "ledger").glob("unsent-closings-*"))
    assert len(kept) == 1 and stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    cluster.start()
    async with pg_ledgers(settings, 1) as (ledger,):
        for _ in range(200):
            status = await ledger.status()
            if status.settled_nd == 300:
                break
            await anyio.sleep(0.02)
    assert (status.settled_nd, status.reserved_nd, status.outstanding) == (300, 0, 0)
    assert not list((tmp_path / "ledger").glob("unsent-closings-*")), "the file goes once the database has it"


def test_in_a_batch_waiters_behind_a_blocked_one_are_not_decided_and_held_money_is_gone(cluster: PgCluster) -> None:
    shared = book(fresh_dsn(cluster), limit=1000)
    replies, _, _ = shared.apply_batch([
        Reserve("a", "q", "tier_1", "m", 900), Reserve("b", "q", "tier_1", "m", 800, 5.0),
        Reserve("c", "q", "tier_1", "m", 50, 5.0), Reserve("now", "q", "tier_1", "m", 50),
    ])
    assert replies[0].granted and not replies[1].granted and replies[1].waitable  # type: ignore[union-attr]
    assert replies[2] is None, "c would fit, but it waits behind b: first in, first out"
    assert replies[3].granted, "a reserve that does not wait is decided on the numbers as they are"  # type: ignore[union-attr]
    replies, _, _ = shared.apply_batch([Hold("a"), Reserve("d", "q", "tier_1", "m", 150, 5.0)])
    assert not replies[1].granted and not replies[1].waitable, "a held 900 will not settle: the money is gone"  # type: ignore[union-attr]
    replies, _, _ = shared.apply_batch([Reserve("e", "q", "tier_1", "m", 150, 5.0), Reserve("f", "q", "tier_1", "m", 50, 5.0)])
    assert not replies[0].waitable, "the same, with the hold read back from the database"  # type: ignore[union-attr]
    assert replies[1].granted, "a refusal for money gone blocks nobody behind it"  # type: ignore[union-attr]
    shared.close()


def test_the_budget_queue_is_first_in_first_out_across_processes(cluster: PgCluster) -> None:
    dsn = fresh_dsn(cluster)
    first, second = book(dsn, limit=1000), book(dsn, limit=1000)
    replies, _, _ = first.apply_batch([Reserve("a", "q", "tier_1", "m", 900), Reserve("b", "q", "tier_1", "m", 800, 5.0)])
    assert replies[1].waitable  # type: ignore[union-attr]
    replies, _, _ = second.apply_batch([Reserve("c", "q", "tier_1", "m", 50, 5.0)])
    assert replies == [None], "c would fit, but another process's b waits ahead of it"
    replies, _, _ = first.apply_batch([Settle("a", 100), Reserve("b", "q", "tier_1", "m", 800, 5.0)])
    assert replies[1].granted  # type: ignore[union-attr]
    replies, _, _ = second.apply_batch([Reserve("c", "q", "tier_1", "m", 50, 5.0)])
    assert replies[0].granted, "b decided, c is next"  # type: ignore[union-attr]
    first.close()
    second.close()


def test_a_shared_ledger_without_a_dsn_is_refused_naming_the_setting() -> None:
    """`dsn: ${ORCHESTRATOR_PG_DSN}` with the variable set but empty reaches the book as ''."""
    for dsn in (None, ""):
        with pytest.raises(LedgerError, match="budget.dsn"):
            PostgresBook(LedgerSettings(limit_nd=1000, backend="postgres", dsn=dsn))


def test_an_unreachable_database_is_named_with_its_cause(tmp_path: Path) -> None:
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=f"host={tmp_path} port=1 user=postgres dbname=x")
    shared = PostgresBook(settings)
    with pytest.raises(LedgerUnavailable, match=rf"unreachable: .*{tmp_path}/\.s\.PGSQL\.1.*No such file") as failed:
        shared.connect()
    assert "\n" not in str(failed.value), "the driver's first line, not its whole report"
    assert repr(shared).endswith("connected=False>")


def test_the_book_never_shows_the_dsn_and_connects_on_first_use(cluster: PgCluster) -> None:
    dsn = fresh_dsn(cluster) + " password=s3cret-pw"
    shared = PostgresBook(LedgerSettings(limit_nd=1000, backend="postgres", dsn=dsn), owner="host:1:abc")
    assert repr(shared) == "<PostgresBook owner=host:1:abc connected=False>"
    assert shared.status().limit_nd == 1000, "a first call connects"
    assert repr(shared) == "<PostgresBook owner=host:1:abc connected=True>" and "s3cret" not in repr(shared.settings)
    shared.close()
    actor = PostgresLedgerActor(shared.settings, owner="host:1:abc")
    assert repr(actor) == "<PostgresLedgerActor owner=host:1:abc pending=0 unheard=0 waiting=0>"


def test_a_version_1_ledger_is_migrated_and_a_newer_one_refused_untouched(cluster: PgCluster) -> None:
    import psycopg

    dsn = fresh_dsn(cluster)
    book(dsn).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE ledger_waiting")
        conn.execute("UPDATE ledger_meta SET value = '1' WHERE key = 'schema'")
    migrated = book(dsn, limit=1000)
    replies, _, _ = migrated.apply_batch([Reserve("a", "q", "tier_1", "m", 900), Reserve("b", "q", "tier_1", "m", 800, 5.0)])
    assert replies[1].waitable, "the waiting table the migration made takes the waiter"  # type: ignore[union-attr]
    migrated.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema'").fetchone() == ("2",)
        assert conn.execute("SELECT count(*) FROM ledger_waiting").fetchone() == (1,)
        conn.execute("UPDATE ledger_meta SET value = '3' WHERE key = 'schema'")
    newer = PostgresBook(LedgerSettings(limit_nd=1000, backend="postgres", dsn=dsn))
    for _ in range(2):
        with pytest.raises(LedgerError, match="schema is version 3; this program uses 2"):
            newer.status()
    assert repr(newer).endswith("connected=False>"), "a refused ledger is not kept open to be used after all"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema'").fetchone() == ("3",)


def test_a_warning_threshold_alerts_once_across_batches_and_processes(cluster: PgCluster) -> None:
    dsn = fresh_dsn(cluster)
    first, second = book(dsn, limit=1000), book(dsn, limit=1000)
    _, alerts, _ = first.apply_batch([Reserve("a", "q", "tier_1", "m", 700), Settle("a", 700)])
    assert alerts == [], "70% of the limit: under the 80% warning"
    _, alerts, _ = first.apply_batch([Reserve("b", "q", "tier_1", "m", 150), Settle("b", 150)])
    assert [(a.scope, a.threshold, a.spent_nd, a.limit_nd) for a in alerts] == [("total", 0.8, 850, 1000)]
    for shared, rid in ((first, "c"), (second, "d")):
        _, alerts, _ = shared.apply_batch([Reserve(rid, "q", "tier_1", "m", 50), Settle(rid, 50)])
        assert alerts == [], "said once, by whichever process crossed it"
    first.close()
    second.close()


@pytest.mark.anyio
async def test_a_running_process_renews_its_lease_so_its_reservations_are_never_reconciled(
    anyio_backend: str, cluster: PgCluster
) -> None:
    """Another process's reconcile charges only the dead; a live one past several lease lengths is not dead."""
    dsn = fresh_dsn(cluster)
    settings = LedgerSettings(limit_nd=10_000, backend="postgres", dsn=dsn, lease_s=1.0)
    other = book(dsn, 10_000)
    try:
        async with pg_ledgers(settings, 1) as (ledger,):
            await ledger.reserve("a", "q", "t", "m", 1000)
            await anyio.sleep(2.5)
            status = await anyio.to_thread.run_sync(other.reconcile)
            owners = await anyio.to_thread.run_sync(other.owners)
    finally:
        other.close()
    assert (status.reserved_nd, status.settled_nd, status.unreconciled_nd) == (1000, 0, 0), "in flight, not held"
    assert sorted(o["alive"] for o in owners) == [True, True]


def test_a_waiter_keeps_its_place_across_processes_until_it_is_decided_or_leaves(cluster: PgCluster) -> None:
    """Places are the times each waiter began to wait, across processes: one behind a blocked waiter of its own
    process keeps the time it came, one whose reserve failed and every waiter of a process that stops leave."""
    dsn = fresh_dsn(cluster)
    first, second = book(dsn, limit=1000), book(dsn, limit=1000)
    replies, _, _ = first.apply_batch([Reserve("a", "q", "tier_1", "m", 900), Reserve("b", "q", "tier_1", "m", 800, 5.0),
                                       Reserve("c", "q", "tier_1", "m", 50, 5.0)], now=1000.0)
    assert replies[1].waitable and replies[2] is None  # type: ignore[union-attr]
    first.forget_waiters(["b"])
    assert isinstance(first.apply_batch([Release("nobody")], now=1000.5)[0][0], LedgerError), "b's row goes with it"
    assert second.apply_batch([Reserve("d", "q", "tier_1", "m", 50, 5.0)], now=1001.0)[0] == [None], "c is ahead"
    replies, _, _ = first.apply_batch([Reserve("c", "q", "tier_1", "m", 50, 5.0)], now=1002.0)
    assert replies[0].granted, "c came before d"  # type: ignore[union-attr]
    replies, _, _ = second.apply_batch([Reserve("d", "q", "tier_1", "m", 50, 5.0),
                                        Reserve("e", "q", "tier_1", "m", 800, 5.0)], now=1003.0)
    assert replies[0].granted and replies[1].waitable  # type: ignore[union-attr]
    replies, _, _ = second.apply_batch([Reserve("e", "q", "tier_1", "m", -5, 5.0)], now=1004.0)
    assert isinstance(replies[0], LedgerError), "e's reserve failed: e is decided"
    replies, _, _ = first.apply_batch([Reserve("f", "q", "tier_1", "m", 800, 5.0)], now=1005.0)
    assert replies[0].waitable, "f waits for money, not behind e, which left the queue"  # type: ignore[union-attr]
    first.withdraw_all_waiters()
    replies, _, _ = second.apply_batch([Reserve("g", "q", "tier_1", "m", 800, 5.0)], now=1006.0)
    assert replies[0] is not None and replies[0].waitable, "f's process stopped: g is not behind f"  # type: ignore[union-attr]
    first.close()
    second.close()


@pytest.mark.anyio
async def test_a_warning_reaches_the_telemetry_and_the_callback_once(anyio_backend: str, cluster: PgCluster) -> None:
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=fresh_dsn(cluster))
    events: list[object] = []
    called: list[object] = []
    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lambda: PostgresLedgerActor(settings, events.append, called.append)))
    async with anyio.create_task_group() as tasks:
        await tasks.start(supervisor.run)
        for rid, amount in (("a", 700), ("b", 150), ("c", 50)):
            await ledger.reserve(rid, "q", "t", "m", amount)
            await ledger.settle(rid, amount)
        supervisor.stop()
    assert events == called and [(e.period, e.threshold, e.spent_nd, e.limit_nd) for e in events] == [  # type: ignore[attr-defined]
        ("total", 0.8, 850, 1000)]


def test_a_reserve_that_does_not_wait_blocks_no_waiter_behind_it(cluster: PgCluster) -> None:
    shared = book(fresh_dsn(cluster), limit=1000)
    replies, _, _ = shared.apply_batch([Reserve("a", "q", "tier_1", "m", 900), Reserve("x", "q", "tier_1", "m", 800),
                                        Reserve("y", "q", "tier_1", "m", 50, 5.0)])
    assert not replies[1].granted and replies[1].waitable, "x could wait for a's money, but did not ask to"  # type: ignore[union-attr]
    assert replies[2].granted, "so y is not behind it"  # type: ignore[union-attr]
    shared.close()


def test_a_run_on_an_unreachable_shared_ledger_stops_at_the_start_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli.main import main

    config = tmp_path / "shared.yaml"
    config.write_text(f"extends: {ROOT / 'configs' / 'simulated.yaml'}\nllm_routing:\n"
                      f"  budget: {{backend: postgres, dsn: 'host={tmp_path} port=5 user=postgres dbname=x'}}\n")
    code = main(["run", "--config", str(config), "--tasks", "3", "--state-dir", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    assert code == 1 and "LEDGER_UNAVAILABLE: the shared ledger is unreachable" in err and f"{tmp_path}/.s.PGSQL.5" in err
    assert "answered" not in out, "no request is sent before the books can be kept"


@pytest.mark.anyio
async def test_at_a_stop_told_closings_are_sent_and_waiters_refused_and_out_of_the_shared_queue(
    anyio_backend: str, cluster: PgCluster
) -> None:
    dsn = fresh_dsn(cluster)
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=dsn)

    def lingering() -> PostgresLedgerActor:
        actor = PostgresLedgerActor(settings)
        actor.TOLD_LINGER_S = 3600.0  # the told settle is still lingering when the stop comes
        return actor

    supervisor = Supervisor(CODEC)
    ledger = LedgerClient(supervisor.add("ledger", lingering))
    replies: list[ReserveReply] = []
    with anyio.fail_after(20):  # a waiter nobody answers at the stop would hang here
        async with anyio.create_task_group() as tasks:
            await tasks.start(supervisor.run)
            await ledger.reserve("a", "q", "t", "m", 900)
            await ledger.reserve("c", "q", "t", "m", 50)
            await start_waiter(tasks, ledger, "b", 60, replies)
            await ledger.tell(Settle("c", 50))
            supervisor.stop()
    other = book(dsn, 1000)
    status = other.status()
    after, _, _ = other.apply_batch([Reserve("z", "q", "tier_1", "m", 10, 5.0)])
    other.close()
    assert status.settled_nd == 50, "the told settle went out with the stop"
    assert not replies[0].granted and "the ledger stopped" in replies[0].reason
    assert after[0] is not None and after[0].granted, "b left the shared queue: z is not behind it"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_the_shared_ledger_reconciles_through_the_actor_and_is_never_reset_from_one_process(
    anyio_backend: str, cluster: PgCluster
) -> None:
    dsn = fresh_dsn(cluster)
    dead = book(dsn, 10_000)
    dead.apply_batch([Reserve("gone", "q", "tier_1", "m", 700)])
    dead.close()
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE ledger_owners SET lease_until = 0")
    settings = LedgerSettings(limit_nd=10_000, backend="postgres", dsn=dsn)
    async with pg_ledgers(settings, 1) as (ledger,):
        reconciled = await ledger.reconcile()
        with pytest.raises(LedgerError, match="not reset from one process"):
            await ledger.reset()
        status = await ledger.status()
    assert (reconciled.settled_nd, reconciled.reserved_nd) == (700, 0) and status.settled_nd == 700


@pytest.mark.anyio
async def test_a_waiter_whose_asker_gives_up_is_withdrawn_and_never_granted(anyio_backend: str, cluster: PgCluster) -> None:
    """An attempt cancelled while its reserve waits releases it: the reserve must never be granted afterwards,
    or its money would stay reserved for a caller that is gone."""
    dsn = fresh_dsn(cluster)
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=dsn)
    replies: list[ReserveReply] = []
    other = book(dsn, 1000)
    with anyio.fail_after(20):
        async with pg_ledgers(settings, 1) as (ledger,):
            await ledger.reserve("a", "q", "t", "m", 900)
            async with anyio.create_task_group() as tasks:
                await start_waiter(tasks, ledger, "b", 600, replies)
                ack = await ledger.release("b")
            await ledger.settle("a", 100)
            status = await ledger.status()
            after, _, _ = await anyio.to_thread.run_sync(other.apply_batch, [Reserve("z", "q", "t", "m", 10, 5.0)])
    other.close()
    assert after[0] is not None and after[0].granted, "b left the shared queue too"  # type: ignore[union-attr]
    assert ack == LedgerAck("b", "withdrawn")
    assert not replies[0].granted and "withdrawn by its asker" in replies[0].reason
    assert (status.settled_nd, status.reserved_nd, status.waiting) == (100, 0, 0)


@pytest.mark.anyio
async def test_an_operation_the_rules_refuse_fails_its_asker_alone(anyio_backend: str, cluster: PgCluster) -> None:
    settings = LedgerSettings(limit_nd=1000, backend="postgres", dsn=fresh_dsn(cluster))
    with anyio.fail_after(20):  # an asker left unanswered would hang here
        async with pg_ledgers(settings, 1) as (ledger,):
            with pytest.raises(LedgerError, match="cannot be negative"):
                await ledger.reserve("n", "q", "t", "m", -5)
            with pytest.raises(LedgerError, match="ghost"):
                await ledger.settle("ghost", 5)
            granted = await ledger.reserve("a", "q", "t", "m", 100)
    assert granted.granted, "the actor serves the next asker"
