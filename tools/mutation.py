"""Mutation testing of the money code: does the suite notice when a line of it is wrong?

Each mutant changes one operator or constant in one file (a comparison flipped or
made strict, `and` for `or`, a negation dropped, a boolean or small integer changed,
`+` for `-`) or removes one statement inside a function (an fsync, a release, a
raise, an assignment, a whole `if`: the changes a test that only runs code lets
through), in a private copy of the checkout, and runs the given tests there with
`-x` and a time limit. A mutant is killed when the tests fail, survives when they
pass; one that runs past the limit counts as killed by a hang, which is reported apart,
since a suite that hangs instead of failing is itself a defect.

    python tools/mutation.py actors/ledger/core.py actors/router/attempt.py \\
        --tests tests/test_ledger_core.py tests/test_attempt.py --jobs 2

Prints every survivor with its file, line and change, and the kill rate.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent

_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_BINARY_SWAPS: dict[type[ast.operator], type[ast.operator]] = {ast.Add: ast.Sub, ast.Sub: ast.Add}


@attrs.frozen
class Mutant:
    path: str
    line: int
    change: str
    source: str


@attrs.frozen
class Verdict:
    mutant: Mutant
    outcome: str
    """killed, survived, or hung (killed by the time limit)."""


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _changes(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every single change to `node` itself, as (description, replacement node)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                new = copy.deepcopy(node)
                new.ops[i] = swap()
                yield f"{type(op).__name__} -> {swap.__name__}", new
    elif isinstance(node, ast.BoolOp):
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{type(node.op).__name__} -> {type(new.op).__name__}", new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not x -> x", copy.deepcopy(node.operand)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY_SWAPS:
        new = copy.deepcopy(node)
        new.op = _BINARY_SWAPS[type(node.op)]()
        yield f"{type(node.op).__name__} -> {type(new.op).__name__}", new
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield f"{node.value} -> {not node.value}", ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and type(node.value) is int and node.value in (0, 1):
        yield f"{node.value} -> {1 - node.value}", ast.Constant(1 - node.value)


_REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise, ast.If, ast.For,
              ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)


def _removals(tree: ast.AST, path: Path) -> Iterator[Mutant]:
    """Each statement of a function's body (at any depth) replaced by `pass`; docstrings kept."""
    seen: set[int] = set()
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for parent in ast.walk(function):
            for field in ("body", "orelse", "finalbody"):
                body = getattr(parent, field, None)
                if not isinstance(body, list) or id(body) in seen:
                    continue
                seen.add(id(body))
                for index, statement in enumerate(body):
                    if not isinstance(statement, _REMOVABLE) or (
                            isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                        continue  # a docstring, of the function or of an attribute: removing it changes nothing
                    body[index] = ast.copy_location(ast.Pass(), statement)
                    source = ast.unparse(tree)
                    body[index] = statement
                    yield Mutant(str(path.relative_to(ROOT)), statement.lineno,
                                 f"{type(statement).__name__} removed", source)


def mutants_of(path: Path) -> Iterator[Mutant]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    skip = _docstring_nodes(tree)
    yield from _removals(tree, path)
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            children = value if isinstance(value, list) else [value]
            for index, child in enumerate(children):
                if not isinstance(child, ast.expr) or id(child) in skip:
                    continue
                if isinstance(parent, ast.Call) and field == "keywords":
                    continue
                for change, replacement in _changes(child):
                    ast.copy_location(replacement, child)
                    if isinstance(value, list):
                        value[index] = replacement
                    else:
                        setattr(parent, field, replacement)
                    source = ast.unparse(tree)
                    if isinstance(value, list):
                        value[index] = child
                    else:
                        setattr(parent, field, child)
                    yield Mutant(str(path.relative_to(ROOT)), child.lineno, change, source)


def _copy_of_checkout(into: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        source = ROOT / name
        if not name or not (source.is_symlink() or source.is_file()):
            continue
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def run_one(mutant: Mutant, tests: list[str], limit_s: float) -> Verdict:
    """One mutant's tests in a private copy, with a temp dir of their own (TMPDIR) that goes with the copy.

    A run past the limit is interrupted (pytest then tears its fixtures down, a test
    database cluster included) and killed only if that does not end it; a database
    server still running in its temp dir after that is killed too, so hung mutants do
    not pile up servers and their files until the disk is full."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as directory:
        checkout, scratch = Path(directory) / "checkout", Path(directory) / "tmp"
        _copy_of_checkout(checkout)
        (checkout / mutant.path).write_text(mutant.source, encoding="utf-8")
        scratch.mkdir()
        os.chmod(directory, 0o711)
        os.chmod(scratch, 0o1777)  # as /tmp is: a test cluster's server runs as the postgres user
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=checkout, env={**os.environ, "TMPDIR": str(scratch)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            code: int | None = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            code = None
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            _kill_servers_left_in(scratch)
    if code is None:
        return Verdict(mutant, "hung")
    return Verdict(mutant, "survived" if code == 0 else "killed")


def _kill_servers_left_in(scratch: Path) -> None:
    for pid_file in scratch.glob("*/data/postmaster.pid"):
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--tests", nargs="+", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit-s", type=float, default=120.0)
    args = parser.parse_args(argv)
    mutants = [m for path in args.files for m in mutants_of(path.resolve())]
    first = args.files[0].resolve()
    baseline = run_one(Mutant(str(first.relative_to(ROOT)), 0, "none", first.read_text(encoding="utf-8")),
                       args.tests, args.limit_s)
    if baseline.outcome != "survived":
        print(f"the tests do not pass on an unchanged copy of the checkout ({baseline.outcome}): nothing to measure")
        return 1
    print(f"{len(mutants)} mutants; the unchanged copy passes", flush=True)
    verdicts: list[Verdict] = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, m, args.tests, args.limit_s) for m in mutants]
        for future in concurrent.futures.as_completed(futures):
            verdict = future.result()
            verdicts.append(verdict)
            if verdict.outcome != "killed":
                m = verdict.mutant
                print(f"{verdict.outcome:8} {m.path}:{m.line} {m.change}", flush=True)
    killed = sum(v.outcome != "survived" for v in verdicts)
    hung = sum(v.outcome == "hung" for v in verdicts)
    print(f"killed {killed} of {len(verdicts)} ({100 * killed / max(1, len(verdicts)):.1f}%), {hung} by a hang")
    for path in sorted({v.mutant.path for v in verdicts}):
        mine = [v for v in verdicts if v.mutant.path == path]
        print(f"  {path}: {sum(v.outcome != 'survived' for v in mine)} of {len(mine)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
