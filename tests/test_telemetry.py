"""The telemetry log: framing, rotation, damage, shedding, and what a run records."""

from __future__ import annotations

import errno
import logging
import os
import struct
from pathlib import Path

import anyio
import attrs
import pytest

from actors.catalog import CODEC
from actors.ledger.actor import open_core
from actors.ledger.journal import FileStorage
from actors.messages import ArcTask, Attempt, Request
from actors.money import token_cost_nd
from actors.runtime.supervisor import Supervisor
from actors.telemetry import log as log_module
from actors.telemetry.audit import audit
from actors.telemetry.client import TelemetryClient
from actors.telemetry.collector import TelemetryCollector
from actors.telemetry.events import (
    AttemptFinished,
    FeedbackGiven,
    RequestReceived,
    RequestServed,
    ReservationDecided,
    ResultRecorded,
    RoutingDecided,
    TelemetryShed,
    expand,
)
from actors.telemetry.log import FRAME, LogReader, SegmentWriter, frame
from actors.telemetry.settings import TelemetrySettings
from actors.telemetry.summary import results, summarize
from orchestrator import Orchestrator, load_config
from orchestrator.whatif import compare
from tests.fakes import openai_ok

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def feedback(i: int) -> FeedbackGiven:
    return FeedbackGiven(1.7e9 + i, f"r{i}", i / 100)


def write_events(directory: Path, count: int, segment_bytes: int = 1 << 20) -> None:
    writer = SegmentWriter(directory, segment_bytes, "fp")
    for i in range(count):
        writer.write(frame(CODEC.encode(feedback(i))), 1)
    writer.close()


def test_events_round_trip_and_segments_rotate_by_size(tmp_path: Path) -> None:
    write_events(tmp_path, 500, segment_bytes=4096)
    reader = LogReader(tmp_path)
    events = list(reader.events())
    assert events == [feedback(i) for i in range(500)]
    assert len(reader.segments()) > 3
    assert all(h.fingerprint == "fp" for h in reader.headers)
    assert not reader.problems


def test_a_torn_last_record_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_events(tmp_path, 10)
    segment = LogReader(tmp_path).segments()[0]
    segment.write_bytes(segment.read_bytes()[:-3])
    with caplog.at_level(logging.WARNING):
        events = list(LogReader(tmp_path).events())
    assert events == [feedback(i) for i in range(9)]
    assert "torn last record" in caplog.text


def test_a_corrupt_record_in_the_middle_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    write_events(tmp_path, 300, segment_bytes=2048)
    reader = LogReader(tmp_path)
    middle = reader.segments()[1]
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    middle.write_bytes(bytes(data))
    events = list(reader.events())
    assert 290 <= len(events) < 300
    assert any("corrupt record" in p.what and p.segment == middle.name for p in reader.problems)


class _DiskFills:
    """os.write as the log module calls it, on a disk that fills: `room` more bytes fit, then ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = self.real(fd, bytes(data[: self.room]))
        self.room -= written
        return written


def test_a_write_cut_short_by_a_full_disk_leaves_no_torn_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Half a frame stayed in the file, and every record written after it (once space returned) was read as part
    of it: lost, with a "corrupt record" problem."""
    writer = SegmentWriter(tmp_path, 1 << 20, "fp")
    writer.write(frame(CODEC.encode(feedback(0))), 1)
    monkeypatch.setattr(log_module.os, "write", _DiskFills(room=10))
    with pytest.raises(OSError, match="No space left"):
        writer.write(frame(CODEC.encode(feedback(1))) + frame(CODEC.encode(feedback(2))), 2)
    monkeypatch.undo()
    for i in (3, 4):
        writer.write(frame(CODEC.encode(feedback(i))), 1)
    writer.close()
    reader = LogReader(tmp_path)
    assert list(reader.events()) == [feedback(0), feedback(3), feedback(4)] and not reader.problems
    assert writer.written == 3


@pytest.mark.anyio
async def test_a_full_disk_drops_and_counts_and_the_collector_writes_on_after(
    anyio_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector crashed with a traceback at every flush while the disk was full; now one line, a count, and the
    count in the log once it writes again."""
    supervisor = Supervisor(CODEC)
    client = TelemetryClient(supervisor.add("telemetry", lambda: TelemetryCollector(TelemetrySettings(dir=str(tmp_path)))))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        client.emit(feedback(0))
        await client.flush()
        with caplog.at_level(logging.WARNING):
            monkeypatch.setattr(log_module.os, "write", _DiskFills(room=0))
            for batch in ((1, 2), (3,)):
                for i in batch:
                    client.emit(feedback(i))
                await client.flush()
            monkeypatch.undo()
            client.emit(feedback(4))
            await client.flush()
        health = supervisor.health()["telemetry"]
        supervisor.stop()
    events = list(LogReader(tmp_path).events())
    assert events[:1] == [feedback(0)] and events[-1] == feedback(4)
    assert [e.count for e in events if isinstance(e, TelemetryShed)] == [3]
    assert health["restarts"] == 0 and summarize(tmp_path).shed == 3
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("actors.")]
    assert lines == [f"telemetry: cannot write to {tmp_path} (No space left on device); events are dropped and "
                     "counted until it can",
                     f"telemetry: writing to {tmp_path} again; 3 events could not be written meanwhile (recorded as "
                     "TelemetryShed)"]


@pytest.mark.anyio
async def test_a_full_buffer_sheds_without_blocking_and_counts_what_it_shed(anyio_backend: str, tmp_path: Path) -> None:
    supervisor = Supervisor(CODEC)
    settings = TelemetrySettings(dir=str(tmp_path), buffer_events=16)
    client = TelemetryClient(supervisor.add("telemetry", lambda: TelemetryCollector(settings), capacity=16))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        for i in range(200):
            client.emit(feedback(i))
        shed = client.shed
        await anyio.sleep(0.05)
        client.emit(feedback(999))
        await client.flush()
        supervisor.stop()
    summary = summarize(tmp_path)
    written = [e for e in LogReader(tmp_path).events() if isinstance(e, FeedbackGiven)]
    assert shed > 0
    assert len(written) + shed == 201
    assert summary.shed == shed


TASK = ArcTask.from_lists("t", [{"input": [[1, 2]], "output": [[2, 1]]}, {"input": [[3, 4, 5]], "output": [[5, 4, 3]]}])


def run_workload(tmp_path: Path, count: int = 20) -> Path:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "state", environ={})
    requests = [Request(task=TASK, sample_index=i) for i in range(count // 2)]
    requests += [Request.prompt(f"Refactor module {i} for clarity") for i in range(count - count // 2)]

    async def main() -> None:
        async with Orchestrator.start(config) as orch:
            done = await orch.generate_batch(requests)
            for result in done:
                orch.feedback(result.request_id, 0.5)  # type: ignore[union-attr]

    anyio.run(main)
    return tmp_path / "state"


def ledger_of(state: Path) -> tuple[dict[str, int], dict[str, str], int]:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=state, environ={})
    storage = FileStorage(config.engine.ledger.journal_path, config.engine.ledger.state_dir)  # type: ignore[arg-type]
    try:
        core = open_core(config.engine.ledger, storage)
    finally:
        storage.close()
    return core.settled_by_reservation, core.closed, core.status().settled_nd


def test_a_run_records_one_result_per_request_and_its_money_matches_the_ledger(tmp_path: Path) -> None:
    state = run_workload(tmp_path)
    recorded = list(results(state / "telemetry"))
    assert len(recorded) == 20 and len({e.request_id for e in recorded}) == 20
    settled, closed, total = ledger_of(state)
    assert sum(e.result.cost_nd for e in recorded) == total  # type: ignore[union-attr]
    report = audit(state / "telemetry", settled, closed)
    assert report.ok and report.attempts_cost_nd == total
    summary = summarize(state / "telemetry", "all", "task_type")
    assert {k for _, k in summary.groups} == {"arc", "text"}
    assert summary.total.row()["mean_feedback"] == 0.5


STEPS = ["RequestReceived", "RoutingDecided", "CacheChecked", "ReservationDecided", "AttemptStarted", "AttemptFinished",
         "ResultRecorded"]


def test_each_request_is_one_record_read_back_as_its_steps(tmp_path: Path) -> None:
    state = run_workload(tmp_path, 6)
    reader = LogReader(state / "telemetry")
    payloads = list(reader.payloads())
    records = [CODEC.decode(payload) for payload in payloads]
    served = [r for r in records if isinstance(r, RequestServed)]
    assert len(served) == 6 and reader.records == len(records)
    for payload, record in zip(payloads, records):
        if isinstance(record, RequestServed):  # the decision is stored once, in the result
            assert record.decision is None and record.result is not None
            assert payload.count(record.result.decision.reasons[0].encode()) == 1
    events = list(LogReader(state / "telemetry").events())
    assert not any(isinstance(e, RequestServed) for e in events)
    for record in served:
        result = record.result
        assert result is not None and record.ended and record.received_at <= record.at
        steps = [e for e in events if not isinstance(e, FeedbackGiven) and (
            getattr(e, "request_id", None) == result.request_id
            or isinstance(e, RequestReceived) and e.request.request_id == result.request_id)]
        assert [type(e).__name__ for e in steps] == STEPS
        received, decided, checked, reserved, started, finished, recorded = steps
        assert received.request == record.request and decided.decision == result.decision
        assert not checked.hit and reserved.granted and reserved.reservation_id == result.attempts[0].reservation_id
        assert (started.provider, started.attempt_no) == (result.provider, 1) and finished.attempt == result.attempts[0]
        assert recorded.result == result and recorded.task_kind == record.request.kind


def test_a_record_from_before_the_decision_was_stored_once_reads_the_same(tmp_path: Path) -> None:
    state = run_workload(tmp_path, 2)
    served = [r for r in map(CODEC.decode, LogReader(state / "telemetry").payloads()) if isinstance(r, RequestServed)]
    for record in served:
        assert record.result is not None
        older = attrs.evolve(record, decision=record.result.decision)
        assert expand(older) == expand(record)
        assert [e.decision for e in expand(record) if isinstance(e, RoutingDecided)] == [record.result.decision]


@attrs.define
class _HeldTransport:
    """Holds every call until released, so a test can cancel its caller mid-call."""

    entered: anyio.Event = attrs.Factory(anyio.Event)
    release: anyio.Event = attrs.Factory(anyio.Event)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, call: object) -> object:
        self.entered.set()
        await self.release.wait()
        return openai_ok()


@pytest.mark.anyio
async def test_a_cancelled_request_is_recorded_with_its_reservation_and_no_result(
    anyio_backend: str, tmp_path: Path
) -> None:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "state", environ={})
    transport = _HeldTransport()
    async with Orchestrator.start(config, transport_factory=lambda settings, loop: transport) as orch:
        async with anyio.create_task_group() as tg:
            tg.start_soon(orch.generate, Request.prompt("Rename a variable", request_id="gone"))
            await transport.entered.wait()
            tg.cancel_scope.cancel()
            transport.release.set()
    served = [e for e in map(CODEC.decode, LogReader(tmp_path / "state" / "telemetry").payloads())
              if isinstance(e, RequestServed)]
    assert len(served) == 1 and not served[0].ended and served[0].result is None
    assert [r.granted for r in served[0].reservations] == [True]
    steps = [type(e).__name__ for e in LogReader(tmp_path / "state" / "telemetry").events()
             if getattr(e, "request_id", "gone") == "gone"]
    assert steps == STEPS[:4], "no result is recorded for a request its caller gave up"


def test_audit_detects_a_tampered_record(tmp_path: Path) -> None:
    state = run_workload(tmp_path, 6)
    segment = LogReader(state / "telemetry").segments()[0]
    data = segment.read_bytes()
    offset, out, done = 10, bytearray(data[:10]), False
    while offset < len(data):
        length, _ = FRAME.unpack_from(data, offset)
        payload = data[offset + 8 : offset + 8 + length]
        event = CODEC.decode(payload)
        if not done and isinstance(event, RequestServed) and event.result is not None and event.result.cost_nd:
            forged = attrs.evolve(event.result, cost_nd=event.result.cost_nd - 1,
                                  attempts=tuple(attrs.evolve(a, cost_nd=a.cost_nd - 1) for a in event.result.attempts))
            payload, done = CODEC.encode(attrs.evolve(event, result=forged)), True
        out += frame(payload)
        offset += 8 + length
    segment.write_bytes(bytes(out))
    settled, closed, _ = ledger_of(state)
    report = audit(state / "telemetry", settled, closed)
    assert done and not report.ok
    assert any("the ledger settled" in f for f in report.findings)


def test_what_if_all_on_the_top_tier_costs_what_its_prices_imply(tmp_path: Path) -> None:
    state = run_workload(tmp_path)
    base = load_config(CONFIGS / "simulated.yaml", state_dir=state, environ={})
    top = load_config(CONFIGS / "whatif_top_tier.yaml", state_dir=state, environ={})
    comparison = compare(state / "telemetry", base, top)
    gpt5 = top.engine.provider("GPT-5")
    expected = sum(
        token_cost_nd(e.result.input_tokens, gpt5.input_price_nd_per_mtok)  # type: ignore[union-attr]
        + token_cost_nd(e.result.output_tokens, gpt5.output_price_nd_per_mtok)  # type: ignore[union-attr]
        for e in results(state / "telemetry")
    )
    assert comparison.alternative.tiers == {"tier_4": 20}
    assert comparison.alternative.cost_nd == expected
    assert comparison.alternative.cost_nd > comparison.recorded.cost_nd
    assert comparison.recorded.expected_score == 0.5


def test_a_rerun_from_the_log_returns_identical_texts_with_no_http_traffic(tmp_path: Path) -> None:
    state = run_workload(tmp_path)
    first = {e.request_id: e.result.text for e in results(state / "telemetry")}  # type: ignore[union-attr]
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "rerun", environ={})
    requests = [e.request for e in LogReader(state / "telemetry").events() if type(e).__name__ == "RequestReceived"]

    async def main() -> tuple[list[object], dict[str, int]]:
        async with Orchestrator.start(config, replay_log=state / "telemetry") as orch:
            done = await orch.generate_batch(requests)
            stats = await _simulator_stats(orch.simulator_url)
        return done, stats

    done, stats = anyio.run(main)
    assert {r.request_id: r.text for r in done} == first  # type: ignore[attr-defined]
    assert all(r.replayed and r.cost_nd == 0 for r in done)  # type: ignore[attr-defined]
    assert not any(k.endswith(":requests") for k in stats), "no request reached a provider"


async def _simulator_stats(url: str | None) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/stats") as response:
        return await response.json()  # type: ignore[no-any-return]


def test_no_key_reaches_the_log_the_cache_or_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-PLANTED-0123456789abcdef"
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "state", environ={})
    providers = tuple(attrs.evolve(p, api_key_env="PLANTED_KEY") for p in config.engine.providers)
    config = attrs.evolve(config, engine=attrs.evolve(config.engine, providers=providers))
    monkeypatch.setenv("PLANTED_KEY", secret)

    async def main() -> None:
        async with Orchestrator.start(config) as orch:
            await orch.generate_batch([Request(task=TASK), Request.prompt("hello")])
            assert secret not in repr(orch.engine) and secret not in repr(orch.health())

    anyio.run(main)
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(files) >= 3
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"the key leaked into {path}"
        assert (path.stat().st_mode & 0o077) == 0, f"{path} is readable by others"
    assert struct.calcsize(">II") == FRAME.size


def test_audit_of_a_chaos_run_matches_to_the_nanodollar(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path / "state", environ={})
    engine = attrs.evolve(
        config.engine,
        retry=attrs.evolve(config.engine.retry, initial_s=0.002, cap_s=0.01),
        breaker=attrs.evolve(config.engine.breaker, backoff_initial_s=0.01, cooldown_s=0.2),
    )
    faults = {"seed": 5, "faults": [{"kind": "server_error", "rate": 0.25}, {"kind": "rate_limit", "rate": 0.1, "retry_after": 0.01},
                                    {"kind": "drop", "rate": 0.05}]}
    config = attrs.evolve(config, engine=engine, simulator=faults)
    requests = [Request.prompt(f"Write parser number {i}") for i in range(300)]

    async def main() -> list[object]:
        async with Orchestrator.start(config) as orch:
            return await orch.generate_batch(requests, concurrency=50)

    outcomes = anyio.run(main)
    retried = sum(len(o.attempts) > 1 for o in outcomes if hasattr(o, "attempts"))
    settled, closed, total = ledger_of(tmp_path / "state")
    report = audit(tmp_path / "state" / "telemetry", settled, closed)
    assert retried > 30, "failures, retries and fallbacks really happened"
    assert report.ok, report.findings[:3]
    assert report.attempts_cost_nd == report.results_cost_nd == total


@pytest.mark.parametrize("form", ["one record per request", "one event per step (logs before schema 2)"])
def test_audit_accounts_for_a_held_attempt_of_a_failed_request_and_nothing_else(tmp_path: Path, form: str) -> None:
    """A request that failed after an attempt was held on an unknown outcome leaves that
    reservation open in the ledger, as it should: its AttemptFinished explains it. A
    granted reservation nothing explains is still a finding."""
    held = Attempt("P", "m", "tier_1", "unavailable", reservation_id="held-1", held_nd=500)
    failed = ("STRATEGY_UNAVAILABLE", "no provider could serve it")
    events: list[object] = [
        ReservationDecided(1.0, "q1", "held-1", "tier_1", "m", True, 500, 10_000),
        AttemptFinished(1.1, "q1", 1, held),
        ResultRecorded(1.2, "q1", "text", None, *failed),
        ReservationDecided(2.0, "q2", "lost-2", "tier_1", "m", True, 500, 9_500),
        ResultRecorded(2.2, "q2", "text", None, *failed),
    ]
    if form == "one record per request":
        events = [
            RequestServed(1.2, 1.0, Request.prompt("a", request_id="q1", task_kind="text"), None, None,
                          (events[0],), (held,), None, *failed),
            RequestServed(2.2, 2.0, Request.prompt("b", request_id="q2", task_kind="text"), None, None,
                          (events[3],), (), None, *failed),
        ]
    writer = SegmentWriter(tmp_path, 1 << 20, "fp")
    for event in events:
        writer.write(frame(CODEC.encode(event)), 1)
    writer.close()
    report = audit(tmp_path, {}, {})
    assert report.findings == ("reservation lost-2: still outstanding in the ledger",)
