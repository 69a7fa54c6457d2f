"""The child side of the sandbox: confine this process, then run one model-written program.

Run as `python -I sandbox_runner.py` with a JSON job on stdin:
{"source": ..., "inputs": [grid, ...], "cpu_s": ..., "memory_mb": ..., "scratch": ...}.
Prints one JSON line: {"outputs": [grid-or-null, ...], "errors": [text-or-null, ...]}.

What is enforced, in this order, before the program's code runs:
1. resource limits: CPU seconds (RLIMIT_CPU; past it the kernel kills the process),
   address space (RLIMIT_AS), file size (RLIMIT_FSIZE), open files (RLIMIT_NOFILE),
   no core dumps, no new processes (RLIMIT_NPROC where the user is not root);
2. a new network namespace when the kernel allows one (as root, or with unprivileged
   user namespaces): the program then has no network interface but a downed loopback;
3. an audit hook (PEP 578, cannot be removed from Python) that refuses sockets,
   subprocesses, exec, fork, ctypes/dlopen, and any file opened for writing outside
   the scratch directory, which is the working directory.
The parent adds the wall-clock limit and a clean environment (no keys). What is not
enforced: reading files the user can read, and code that escapes Python through a
native extension it already has; the audit hook is a guard against accidents and
model mistakes, not a boundary against a determined attacker.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_BLOCKED = (
    "socket.", "subprocess.", "os.exec", "os.fork", "os.posix_spawn", "os.spawn", "os.system", "os.kill",
    "ctypes.", "pty.", "shutil.rmtree", "os.chmod", "os.chown",
)


def _limit(cpu_s: int, memory_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
    if os.geteuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def _cut_network() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            return True
    return False


def _guard(scratch: str) -> None:
    root = os.path.realpath(scratch)

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event.startswith(_BLOCKED):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and len(args) >= 2:
            path, mode = args[0], args[1]
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(mode, int):
                writing = bool(mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
            if writing and isinstance(path, (str, bytes)):
                target = os.path.realpath(os.fsdecode(path))
                if not (target == root or target.startswith(root + os.sep)):
                    raise PermissionError(f"sandbox: writing {target} outside the scratch directory")
        if event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link") and args:
            target = os.path.realpath(os.fsdecode(args[0]))  # type: ignore[arg-type]
            if not (target == root or target.startswith(root + os.sep)):
                raise PermissionError(f"sandbox: {event} on {target} outside the scratch directory")

    sys.addaudithook(hook)


def _grid(value: object) -> list[list[int]] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    rows = []
    width = None
    for row in value:
        if not isinstance(row, (list, tuple)) or not row:
            return None
        cells = []
        for cell in row:
            if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell <= 9:
                return None
            cells.append(int(cell))
        if width is not None and len(cells) != width:
            return None
        width = len(cells)
        rows.append(cells)
    return rows


def main() -> None:
    job = json.loads(sys.stdin.read())
    os.chdir(job["scratch"])
    _cut_network()
    _limit(int(job["cpu_s"]), int(job["memory_mb"]))
    _guard(job["scratch"])
    outputs: list[object] = []
    errors: list[str | None] = []
    namespace: dict[str, object] = {"__name__": "candidate"}
    try:
        exec(compile(job["source"], "<candidate>", "exec"), namespace)  # noqa: S102 - confined above
        transform = namespace.get("transform")
        if not callable(transform):
            raise TypeError("the program defines no transform(grid) function")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised
        message = f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"outputs": [None] * len(job["inputs"]), "errors": [message] * len(job["inputs"])}))
        return
    for grid in job["inputs"]:
        try:
            result = _grid(transform([list(row) for row in grid]))
            outputs.append(result)
            errors.append(None if result is not None else "malformed grid (rows of equal length, cells 0-9)")
        except BaseException as exc:  # noqa: BLE001
            outputs.append(None)
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    print(json.dumps({"outputs": outputs, "errors": errors}))


if __name__ == "__main__":
    main()
