"""Running model-written programs without letting them harm the engine.

Each program runs in its own short-lived Python process (`sandbox_runner.py`) with
CPU-time, memory, file-size and open-file limits, no network (a fresh network
namespace where the kernel allows it, and an audit hook refusing sockets), no
subprocesses, a scratch directory as the only writable place, and an environment
holding nothing but PATH (no keys). The parent adds a wall-clock limit and kills the
process past it. A hang, a crash, a memory blow-up or a malformed grid is a typed
outcome with score 0; nothing the program does reaches the event loop, which only
awaits the child. What is and is not enforced is listed in `sandbox_runner`.

    score = await score_program(source, task)          # fraction of train pairs right
    scores = await score_many(sources, task, limits)   # a bounded pool
"""

from __future__ import annotations

import enum
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs
import orjson

from actors.messages import ArcTask, Grid

RUNNER = Path(__file__).resolve().parent / "sandbox_runner.py"


class Outcome(str, enum.Enum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    KILLED = "killed"
    MALFORMED = "malformed"


@attrs.frozen
class Limits:
    cpu_s: int = 2
    wall_s: float = 5.0
    memory_mb: int = 512


@attrs.frozen
class Run:
    """What one program did on a list of input grids."""

    outcome: Outcome
    outputs: tuple[Grid | None, ...]
    detail: str = ""


async def run_program(source: str, inputs: Sequence[Grid], limits: Limits = Limits()) -> Run:
    """Run `transform(grid)` of `source` on every input in a confined child process."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-sandbox-") as scratch:
        job = orjson.dumps({
            "source": source, "inputs": [list(map(list, g)) for g in inputs], "cpu_s": limits.cpu_s,
            "memory_mb": limits.memory_mb, "scratch": scratch,
        })
        with anyio.move_on_after(limits.wall_s) as scope:
            done = await anyio.run_process(
                [sys.executable, "-I", "-B", str(RUNNER)], input=job, check=False,
                env={"PATH": "/usr/bin:/bin"}, cwd=scratch,
            )
        if scope.cancelled_caught:
            return Run(Outcome.TIMEOUT, (None,) * len(inputs), f"still running after {limits.wall_s:g} s of wall time")
    if done.returncode != 0:
        signal = -done.returncode if done.returncode < 0 else None
        why = f"killed by signal {signal}" if signal else f"exited with status {done.returncode}"
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if done.stderr else []
        return Run(Outcome.KILLED, (None,) * len(inputs), f"{why} (CPU or memory limit?) {' '.join(tail)}".strip())
    try:
        answer = orjson.loads(done.stdout.strip().splitlines()[-1])
        outputs = tuple(None if o is None else tuple(tuple(row) for row in o) for o in answer["outputs"])
        errors = [e for e in answer["errors"] if e]
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError) as exc:
        return Run(Outcome.MALFORMED, (None,) * len(inputs), f"unreadable answer from the sandbox: {exc}")
    if errors:
        kind = Outcome.MALFORMED if all("malformed grid" in e for e in errors) else Outcome.ERROR
        return Run(kind, outputs, errors[0])
    return Run(Outcome.OK, outputs)


async def score_program(source: str, task: ArcTask, limits: Limits = Limits()) -> tuple[float, Run]:
    """The fraction of the task's train pairs the program gets exactly right (0 on any failure)."""
    if not task.train:
        return 0.0, Run(Outcome.ERROR, (), "the task has no train pairs")
    run = await run_program(source, [pair.input for pair in task.train], limits)
    right = sum(out == pair.output for out, pair in zip(run.outputs, task.train))
    return right / len(task.train), run


async def score_many(
    sources: Sequence[str], task: ArcTask, limits: Limits = Limits(), concurrency: int = 2
) -> list[tuple[float, Run]]:
    """Score many programs with at most `concurrency` sandboxes at once, in input order."""
    results: list[tuple[float, Run] | None] = [None] * len(sources)
    limiter = anyio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limiter:
            results[index] = await score_program(sources[index], task, limits)

    async with anyio.create_task_group() as tg:
        for index in range(len(sources)):
            tg.start_soon(one, index)
    return [r for r in results if r is not None]
