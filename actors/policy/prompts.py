"""The program-synthesis prompt for an ARC task, when a request brings a task but no messages.

Grids are written as rows of digits: compact (one token per cell for most tokenizers)
and unambiguous. The wording is stable on purpose: it is part of the cache key, so
changing it invalidates every cached program.
"""

from __future__ import annotations

from actors.messages import ArcTask, ChatMessage, Grid, Request

SYSTEM = (
    "You write Python programs that solve ARC grid puzzles. Answer with one function "
    "`def transform(grid: list[list[int]]) -> list[list[int]]` and nothing else."
)


_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")


def render_grid(grid: Grid) -> str:
    """Rows of digits, one line per row.

    Cells 0-9 go through `bytes.translate` (in C: a first sight of a task paid about
    85 µs rendering it digit by digit, docs/BENCHMARKS.md); a grid with any other
    value is written with `str`, as it always was, so that its text (and cache key)
    does not change.
    """
    try:
        rows = [bytes(row) for row in grid]
    except (TypeError, ValueError):
        return _render_any(grid)
    if any(row and max(row) > 9 for row in rows):
        return _render_any(grid)
    return b"\n".join(rows).translate(_DIGITS).decode("ascii")


def _render_any(grid: Grid) -> str:
    return "\n".join("".join(map(str, row)) for row in grid)


def render_arc_prompt(task: ArcTask) -> tuple[ChatMessage, ...]:
    parts = [f"Task {task.task_id}. Each example maps an input grid to an output grid."]
    for index, pair in enumerate(task.train, 1):
        parts.append(f"Example {index} input:\n{render_grid(pair.input)}")
        parts.append(f"Example {index} output:\n{render_grid(pair.output)}")
    for index, grid in enumerate(task.test, 1):
        parts.append(f"Test {index} input:\n{render_grid(grid)}")
    parts.append("Write transform(grid) so that it maps every example input to its output.")
    return (ChatMessage("system", SYSTEM), ChatMessage("user", "\n\n".join(parts)))


def request_messages(request: Request) -> tuple[ChatMessage, ...]:
    """What a request asks a model: its own messages, else its task's prompt, else nothing."""
    if request.messages:
        return request.messages
    return render_arc_prompt(request.task) if request.task is not None else ()
