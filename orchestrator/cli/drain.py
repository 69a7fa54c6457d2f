"""A workload served until it ends or a signal stops it, for `orchestrator run`.

SIGTERM or SIGINT stops taking new requests; those in flight have the grace period
to finish, and are cancelled at its end (or at a second signal), their money
settled, released or held by the attempt's rules. What was answered is returned
with the count of what was cancelled or never started, so the caller prints a
partial table instead of a traceback, and the orchestrator then stops as it always
does (telemetry flushed, the ledger written).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import attrs

from actors.errors import OrchestratorError
from actors.messages import Request, Result
from orchestrator.api import Orchestrator

Outcome = Result | OrchestratorError


@attrs.frozen
class Interrupted:
    signal: str
    cancelled: int
    """In flight when the grace period ended (or a second signal came)."""
    not_started: int


async def serve_until_stopped(
    orch: Orchestrator,
    requests: Sequence[Request],
    *,
    concurrency: int,
    grace_s: float,
    on_done: Callable[[int, Outcome], None] | None = None,
) -> tuple[list[Outcome], Interrupted | None]:
    """The outcomes of the requests that ended, in request order, and how a stop cut the rest short."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    pending = iter(enumerate(requests))
    stopping = anyio.Event()
    started = 0
    stopped_by = ""

    async def worker() -> None:
        nonlocal started
        while not stopping.is_set():
            item = next(pending, None)
            if item is None:
                return
            index, request = item
            started += 1
            outcome: Outcome
            try:
                outcome = await orch.generate(request)
            except OrchestratorError as exc:
                outcome = exc
            outcomes[index] = outcome
            if on_done is not None:
                on_done(index, outcome)

    async def watch(signals: AsyncIterator[int], workers: anyio.CancelScope) -> None:
        nonlocal stopped_by
        async for signum in signals:
            stopped_by = signal.Signals(signum).name
            stopping.set()
            in_flight = started - sum(o is not None for o in outcomes)
            print(f"\n{stopped_by}: no new requests; {in_flight} in flight have {grace_s:g} s to finish "
                  "(a second signal cancels them now)", file=sys.stderr)
            with anyio.move_on_after(grace_s):
                async for _ in signals:
                    break
            workers.cancel()
            return

    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as outer:
            async with anyio.create_task_group() as workers:
                outer.start_soon(watch, signals, workers.cancel_scope)
                for _ in range(max(1, min(concurrency, len(requests)))):
                    workers.start_soon(worker)
            outer.cancel_scope.cancel()
    done = [o for o in outcomes if o is not None]
    if not stopped_by:
        return done, None
    return done, Interrupted(stopped_by, cancelled=started - len(done), not_started=len(requests) - started)
