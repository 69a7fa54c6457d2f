"""The `orchestrator` console script: one subcommand per module of this package.

Each command module exposes `add_parser(subparsers)`, which registers its
subcommand and sets `func`, a callable taking the parsed arguments and returning
the exit code. Exit codes: 0 success, 1 a request or check failed, 2 bad usage or
configuration, 3 budget exhausted, 130 interrupted (Ctrl-C or SIGTERM: both drain the
same way, settling or releasing every reservation in flight).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence

from actors.errors import BudgetExceeded, ConfigError, InvalidRequest, JournalError, OrchestratorError

COMMAND_MODULES = (
    "orchestrator.cli.run",
    "orchestrator.cli.simulator",
    "orchestrator.cli.serve",
    "orchestrator.cli.budget",
    "orchestrator.cli.cache",
    "orchestrator.cli.calibrate",
    "orchestrator.cli.telemetry",
    "orchestrator.cli.routing",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Route LLM generation requests by complexity, within a hard budget.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an expected failure too")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every expected failure is one line on stderr and its exit code.

    Bugs keep their traceback; `--debug` shows the traceback of expected failures too.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, JournalError, InvalidRequest, OSError, BudgetExceeded, OrchestratorError) as exc:
        if args.debug:
            traceback.print_exc()
        line, code = _explain(exc)
        print(f"orchestrator: {line}", file=sys.stderr)
        return code


def _explain(exc: BaseException) -> tuple[str, int]:
    """The one line a user reads for an expected failure, and the documented exit code."""
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}", EXIT_USAGE
    if isinstance(exc, (JournalError, InvalidRequest)):
        return f"{exc.code}: {exc}", EXIT_USAGE
    if isinstance(exc, BudgetExceeded):
        return f"{exc.code}: {exc}", EXIT_BUDGET
    if isinstance(exc, OrchestratorError):
        return f"{exc.code}: {exc}", EXIT_FAILED
    assert isinstance(exc, OSError)
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.EADDRINUSE:
        return f"{where}address already in use ({exc.strerror}); choose another --port", EXIT_USAGE
    return f"{where}{exc.strerror or exc}", EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
