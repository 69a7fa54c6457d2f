"""Model-written programs in the sandbox: loops, memory blow-ups, files, sockets, garbage.

Real subprocesses (no mock clock): limits are small so the file runs in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.messages import ArcTask
from orchestrator.sandbox import Limits, Outcome, run_program, score_many, score_program

TASK = ArcTask.from_lists(
    "flip", [{"input": [[1, 2], [3, 4]], "output": [[2, 1], [4, 3]]}, {"input": [[5, 6, 7]], "output": [[7, 6, 5]]}]
)
RIGHT = "def transform(grid):\n    return [list(reversed(row)) for row in grid]\n"
FAST = Limits(cpu_s=1, wall_s=3.0, memory_mb=256)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_right_program_scores_one_and_a_half_right_one_half(anyio_backend: str) -> None:
    assert (await score_program(RIGHT, TASK, FAST))[0] == 1.0
    half = "def transform(grid):\n    return [[2, 1], [4, 3]]\n"
    score, run = await score_program(half, TASK, FAST)
    assert score == 0.5 and run.outcome is Outcome.OK


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source", "outcome", "says"),
    [
        ("def transform(grid):\n    while True:\n        pass\n", (Outcome.KILLED, Outcome.TIMEOUT), ""),
        ("def transform(grid):\n    x = []\n    while True:\n        x.append(bytearray(10**7))\n",
         (Outcome.ERROR, Outcome.KILLED), ""),
        ("def transform(grid):\n    open('/tmp/escaped-by-a-candidate', 'w').write('x')\n    return grid\n",
         (Outcome.ERROR,), "outside the scratch directory"),
        ("import socket\ndef transform(grid):\n    socket.create_connection(('127.0.0.1', 9))\n    return grid\n",
         (Outcome.ERROR,), "not allowed"),
        ("import subprocess\ndef transform(grid):\n    subprocess.run(['true'])\n    return grid\n",
         (Outcome.ERROR,), "not allowed"),
        ("def transform(grid):\n    return [[1, 2], [3]]\n", (Outcome.MALFORMED,), "malformed grid"),
        ("def transform(grid):\n    return 'garbage'\n", (Outcome.MALFORMED,), "malformed grid"),
        ("def transform(:\n", (Outcome.ERROR,), "SyntaxError"),
        ("x = 1\n", (Outcome.ERROR,), "defines no transform"),
    ],
    ids=["loops", "allocates", "writes-outside", "opens-socket", "spawns", "ragged", "garbage", "syntax", "no-function"],
)
async def test_a_bad_program_scores_zero_and_harms_nothing(
    anyio_backend: str, source: str, outcome: tuple[Outcome, ...], says: str
) -> None:
    score, run = await score_program(source, TASK, FAST)
    assert score == 0.0 and run.outcome in outcome, run
    assert says in run.detail
    assert not Path("/tmp/escaped-by-a-candidate").exists()


@pytest.mark.anyio
async def test_writing_in_the_scratch_directory_is_allowed(anyio_backend: str) -> None:
    source = "def transform(grid):\n    open('note.txt', 'w').write('ok')\n    return [list(reversed(r)) for r in grid]\n"
    assert (await score_program(source, TASK, FAST))[0] == 1.0


@pytest.mark.anyio
async def test_the_environment_holds_no_keys(anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    source = "import os\ndef transform(grid):\n    return [[len(os.environ.get('OPENAI_API_KEY', ''))]]\n"
    run = await run_program(source, [((1,),)], FAST)
    assert run.outputs == (((0,),),)


@pytest.mark.anyio
async def test_many_programs_are_scored_in_order_through_a_bounded_pool(anyio_backend: str) -> None:
    sources = [RIGHT, "x = 1\n", RIGHT]
    assert [s for s, _ in await score_many(sources, TASK, FAST, concurrency=2)] == [1.0, 0.0, 1.0]


@pytest.mark.anyio
async def test_the_program_sees_no_network_interface_but_loopback(anyio_backend: str) -> None:
    if os.geteuid() != 0 and not Path("/proc/sys/kernel/unprivileged_userns_clone").exists():
        pytest.skip("no way to make a network namespace here: only the audit hook guards sockets")
    source = "def transform(grid):\n    return [[len(open('/proc/self/net/dev').read().splitlines())]]\n"
    run = await run_program(source, [((1,),)], FAST)
    assert run.outputs == (((3,),),), "two header lines and lo: a fresh network namespace"
