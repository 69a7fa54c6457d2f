"""Telemetry: collector write throughput, and read + summarise throughput over 1M events."""

from __future__ import annotations

import tempfile
import time

import anyio

from actors.catalog import CODEC
from actors.messages import Attempt, Decision, Request, Result
from actors.runtime.supervisor import Supervisor
from actors.telemetry import events as ev
from actors.telemetry.client import TelemetryClient
from actors.telemetry.collector import TelemetryCollector
from actors.telemetry.settings import TelemetrySettings
from actors.telemetry.summary import summarize
from orchestrator.tables import render_table


def request_events(i: int) -> list[object]:
    """The eight events one answered request leaves in the log."""
    now = 1_790_000_000.0 + i
    rid = f"r{i}"
    decision = Decision("tier_1", "qwen", "Qwen", ("tier_2/Gemini",), 0.2, "simple", 0.9, ("grid 0.1",), {"grid_size_score": 0.1}, 700_000)
    attempt = Attempt("Qwen", "qwen", "tier_1", "ok", "", 0.2, 0.0, 400, 60, 69_000, 200)
    result = Result(rid, "def transform(grid):\n    return grid\n", "tier_1", "qwen", "Qwen", 400, 60, 69_000, 0.21, decision, (attempt,))
    return [
        ev.RequestReceived(now, Request.prompt(f"write transform for task {i % 400}", request_id=rid)),
        ev.RoutingDecided(now, rid, decision),
        ev.CacheChecked(now, rid, False),
        ev.ReservationDecided(now, rid, f"{rid}/1", "tier_1", "qwen", True, 700_000, 10**11),
        ev.AttemptStarted(now, rid, 1, "Qwen", "qwen", "tier_1"),
        ev.AttemptFinished(now, rid, 1, attempt),
        ev.ResultRecorded(now, rid, "arc", result),
        ev.FeedbackGiven(now, rid, 0.5),
    ]


async def _write(directory: str, events: int) -> float:
    supervisor = Supervisor(CODEC)
    settings = TelemetrySettings(dir=directory, buffer_events=65_536)
    ref = supervisor.add("telemetry", lambda: TelemetryCollector(settings), capacity=65_536)
    client = TelemetryClient(ref)
    templates = [e for i in range(50) for e in request_events(i)]
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        start = time.perf_counter()
        for i in range(events):
            await ref.tell(templates[i % len(templates)])
        await client.flush()
        elapsed = time.perf_counter() - start
        supervisor.stop()
    return events / elapsed


def run(events: int = 1_000_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        write_rate = anyio.run(_write, directory, events)
        start = time.perf_counter()
        summary = summarize(directory, "day", "tier")
        read_rate = summary.records / (time.perf_counter() - start)
    return {"events": float(events), "write_events_per_s": write_rate, "read_summarise_events_per_s": read_rate}


def main() -> None:
    r = run()
    print(render_table(
        ("telemetry over %d events" % int(r["events"]), "events/s"),
        [("encode + send + collect + write (sender waits when full)", f"{r['write_events_per_s']:,.0f}"),
         ("read + summarise (costs --period day --by tier)", f"{r['read_summarise_events_per_s']:,.0f}")],
        title="telemetry throughput",
    ))
    print()


if __name__ == "__main__":
    main()
