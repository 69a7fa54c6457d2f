"""The `orchestrator` console script: one subcommand per module of this package.

Each command module exposes `add_parser(subparsers)`, which registers its
subcommand and sets `func`, a callable taking the parsed arguments and returning
the exit code. Exit codes: 0 success, 1 a request or check failed, 2 bad usage or
configuration, 3 budget exhausted, 130 interrupted (Ctrl-C or SIGTERM: both drain the
same way, settling or releasing every reservation in flight).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from actors.errors import ConfigError, JournalError, OrchestratorError

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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"orchestrator: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JournalError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OrchestratorError as exc:
        print(f"orchestrator: {exc.code}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
