"""Features of an ARC task, each in [0, 1], and the checks that reject malformed tasks.

All grids of the task count: every train input and output and every test input.

- grid_size_score: the largest grid's cell count / 900 (a 30x30 grid is 1.0). Larger
  grids never lower it.
- color_diversity: the number of distinct colours used anywhere (0 included) / 10.
  More colours never lower it.
- pattern_complexity: the mean of three parts: the colour entropy of the inputs
  (bits / log2(10)); the mean number of objects (4-connected groups of one non-zero
  colour) per input, / 30, capped at 1; and the share of cells that change between
  input and output (pairs whose shapes differ count 1.0).
- transformation_hints: how far the transformation is from an easy family, the
  worst over the train pairs: a rigid motion of the whole grid (identity, flips,
  rotations, transpose) 0.0; a consistent colour mapping 0.1; a tiling or integer
  upscaling of the input 0.25; same shape otherwise 0.4 + 0.4 x the share of cells
  changed; output size constant across pairs but unlike the input 0.7; anything else
  0.9.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from itertools import chain, groupby
from operator import ne

from actors.errors import InvalidRequest
from actors.messages import ArcTask, Grid

MAX_SIDE = 30
MAX_TRAIN_PAIRS = 100
MAX_TEST_INPUTS = 20
"""ARC's own tasks have at most 10 train pairs and 4 test inputs; these leave room for augmented ones (a task's
pairs in all eight rotations and flips are 80)."""
FEATURES = ("grid_size_score", "pattern_complexity", "color_diversity", "transformation_hints")


def validate(task: ArcTask) -> None:
    """Raise InvalidRequest naming the task, the grid and what is wrong with it.

    The counts first: a task of thousands of pairs would otherwise hold the event loop for
    seconds (its cells checked, then its features) before its prompt is found too long.
    """
    if not task.train:
        raise InvalidRequest(f"ARC task {task.task_id}: has no train pairs")
    if len(task.train) > MAX_TRAIN_PAIRS or len(task.test) > MAX_TEST_INPUTS:
        raise InvalidRequest(
            f"ARC task {task.task_id}: {len(task.train)} train pairs and {len(task.test)} test inputs, above the "
            f"{MAX_TRAIN_PAIRS} and {MAX_TEST_INPUTS} maximum (ARC's own tasks have at most 10 and 4)"
        )
    grids = [(f"train[{i}].{side}", grid) for i, pair in enumerate(task.train) for side, grid in (("input", pair.input), ("output", pair.output))]
    grids += [(f"test[{i}].input", grid) for i, grid in enumerate(task.test)]
    for where, grid in grids:
        if not grid or not grid[0]:
            raise InvalidRequest(f"ARC task {task.task_id}: {where} is empty")
        if len(grid) > MAX_SIDE or len(grid[0]) > MAX_SIDE:
            raise InvalidRequest(
                f"ARC task {task.task_id}: {where} is {len(grid)}x{len(grid[0])}, above the {MAX_SIDE}x{MAX_SIDE} maximum"
            )
        width = len(grid[0])
        for r, row in enumerate(grid):
            if len(row) != width:
                raise InvalidRequest(f"ARC task {task.task_id}: {where} is ragged: row {r} has {len(row)} cells, row 0 has {width}")
            for c, value in enumerate(row):
                if type(value) is not int or not 0 <= value <= 9:
                    raise InvalidRequest(f"ARC task {task.task_id}: {where}[{r}][{c}] is {value!r}, colours are integers 0-9")


def _all_grids(task: ArcTask) -> list[Grid]:
    return [g for pair in task.train for g in (pair.input, pair.output)] + list(task.test)


def grid_size_score(task: ArcTask) -> float:
    return min(1.0, max(len(g) * len(g[0]) for g in _all_grids(task)) / (MAX_SIDE * MAX_SIDE))


def color_diversity(task: ArcTask) -> float:
    return len(set(_cells(_all_grids(task)))) / 10


def _cells(grids: list[Grid]) -> Iterator[int]:
    """Every cell of the grids, row by row, as one iterator: counted and collected in C, not row by row."""
    return chain.from_iterable(chain.from_iterable(grids))


def _entropy(grids: list[Grid]) -> float:
    counts = Counter(_cells(grids))
    total = sum(counts.values())
    bits = -sum(n / total * math.log2(n / total) for n in counts.values())
    return min(1.0, bits / math.log2(10))


def count_objects(grid: Grid) -> int:
    """4-connected groups of one non-zero colour.

    Counted over runs, not cells: each row splits into runs of one colour
    (`itertools.groupby`, in C), a run joins the runs of its colour it touches in the
    row above (a union-find over runs), and every join merges two groups into one.
    A first sight of a task paid about 150 µs for a cell-by-cell flood fill
    (docs/BENCHMARKS.md).
    """
    parent: list[int] = []

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    groups = 0
    above: list[tuple[int, int, int, int]] = []
    for row in grid:
        here: list[tuple[int, int, int, int]] = []
        start = 0
        first_above = 0
        for colour, cells in groupby(row):
            end = start + len(list(cells))
            if colour:
                run = len(parent)
                parent.append(run)
                groups += 1
                while first_above < len(above) and above[first_above][1] <= start:
                    first_above += 1
                index = first_above
                while index < len(above) and above[index][0] < end:
                    if above[index][2] == colour:
                        one, other = root(above[index][3]), root(run)
                        if one != other:
                            parent[one] = other
                            groups -= 1
                    index += 1
                here.append((start, end, colour, run))
            start = end
        above = here
    return groups


def _changed_share(inp: Grid, out: Grid) -> float:
    if len(inp) != len(out) or len(inp[0]) != len(out[0]):
        return 1.0
    cells = len(inp) * len(inp[0])
    return sum(sum(map(ne, row_in, row_out)) for row_in, row_out in zip(inp, out)) / cells


def pattern_complexity(task: ArcTask) -> float:
    inputs = [pair.input for pair in task.train] + list(task.test)
    entropy = _entropy(inputs)
    objects = min(1.0, sum(count_objects(g) for g in inputs) / len(inputs) / 30)
    change = sum(_changed_share(p.input, p.output) for p in task.train) / len(task.train)
    return (entropy + objects + change) / 3


def _rigid_motions(grid: Grid) -> list[Grid]:
    rows = [list(r) for r in grid]
    transposed = [tuple(col) for col in zip(*rows)]
    return [
        grid,
        tuple(tuple(r[::-1]) for r in grid),
        tuple(grid[::-1]),
        tuple(tuple(r[::-1]) for r in grid[::-1]),
        tuple(transposed),
        tuple(tuple(r[::-1]) for r in transposed),
        tuple(transposed[::-1]),
        tuple(tuple(r[::-1]) for r in transposed[::-1]),
    ]


def _is_colour_map(inp: Grid, out: Grid) -> bool:
    if len(inp) != len(out) or len(inp[0]) != len(out[0]):
        return False
    mapping: dict[int, int] = {}
    for row_in, row_out in zip(inp, out):
        for a, b in zip(row_in, row_out):
            if mapping.setdefault(a, b) != b:
                return False
    return True


def _is_tiling_or_upscale(inp: Grid, out: Grid) -> bool:
    h, w, H, W = len(inp), len(inp[0]), len(out), len(out[0])
    if H % h or W % w or (H == h and W == w):
        return False
    fy, fx = H // h, W // w
    tiled = all(out[r][c] == inp[r % h][c % w] for r in range(H) for c in range(W))
    scaled = all(out[r][c] == inp[r // fy][c // fx] for r in range(H) for c in range(W))
    return tiled or scaled


def _pair_hint(inp: Grid, out: Grid, constant_output: bool) -> float:
    if out in _rigid_motions(inp):
        return 0.0
    if _is_colour_map(inp, out):
        return 0.1
    if _is_tiling_or_upscale(inp, out):
        return 0.25
    if len(inp) == len(out) and len(inp[0]) == len(out[0]):
        return 0.4 + 0.4 * _changed_share(inp, out)
    return 0.7 if constant_output else 0.9


def transformation_hints(task: ArcTask) -> float:
    shapes = {(len(p.output), len(p.output[0])) for p in task.train}
    constant = len(shapes) == 1
    return max(_pair_hint(p.input, p.output, constant) for p in task.train)


_COMPUTE = {
    "grid_size_score": grid_size_score,
    "pattern_complexity": pattern_complexity,
    "color_diversity": color_diversity,
    "transformation_hints": transformation_hints,
}


def arc_features(task: ArcTask, names: tuple[str, ...] = FEATURES) -> dict[str, float]:
    """The named features (all by default) of a task `validate` has passed: an estimator skips those it gives no
    weight. The router checks each task once, where its requests enter (pinned ones too), before estimating."""
    return {name: _COMPUTE[name](task) for name in names}
