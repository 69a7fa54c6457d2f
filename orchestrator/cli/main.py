"""The `orchestrator` console script: one subcommand per module of this package.

Each command module exposes `add_parser(subparsers)`, which registers its
subcommand and sets `func`, a callable taking the parsed arguments and returning
the exit code. Every failure is one line on stderr (`--debug` adds the traceback)
and one of the exit codes in `EXIT_CODES`.
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
from orchestrator.cli.options import EXIT_INTERRUPTED

COMMAND_MODULES = (
    "orchestrator.cli.run",
    "orchestrator.cli.simulator",
    "orchestrator.cli.serve",
    "orchestrator.cli.budget",
    "orchestrator.cli.forecast",
    "orchestrator.cli.doctor",
    "orchestrator.cli.cache",
    "orchestrator.cli.calibrate",
    "orchestrator.cli.telemetry",
    "orchestrator.cli.routing",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3

EXIT_CODES = (
    "exit codes: 0 success; 1 a request, check or the run itself failed (an unexpected error too: "
    "rerun with --debug for its traceback); 2 bad usage or configuration (an option, file, key "
    "variable, port or endpoint, named in the message), refused before any work; 3 budget exhausted; "
    "130 interrupted (Ctrl-C or SIGTERM: both drain the same way, settling or releasing every "
    "reservation in flight; `serve` stops cleanly and exits 0)"
)
EXPECTED = (ConfigError, JournalError, InvalidRequest, OSError, BudgetExceeded, OrchestratorError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Route LLM generation requests by complexity, within a hard budget.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure too")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and its exit code (`EXIT_CODES`).

    An expected failure (a bad file, option, key, port or endpoint; a journal or a
    budget error) names what is at fault; anything else is reported as an unexpected
    error, exit 1. `--debug` prints the traceback of either before the line.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 - the boundary: every error becomes one line and an exit code
        if isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        if args.debug:
            traceback.print_exc()
        cause = _sole(exc)
        if isinstance(cause, KeyboardInterrupt):
            print("orchestrator: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(cause, EXPECTED):
            line, code = _explain(cause)
        else:
            line, code = f"unexpected error: {type(cause).__name__}: {cause} (rerun with --debug for the traceback)", EXIT_FAILED
        print(f"orchestrator: {' '.join(line.split())}", file=sys.stderr)
        return code


def _sole(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, or `exc` itself when there are several or none."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in exc.exceptions if not isinstance(e, BaseExceptionGroup)]
        expected = [e for e in leaves if isinstance(e, EXPECTED)]
        if expected:
            return expected[0]
    return exc


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
