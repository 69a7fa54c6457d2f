"""`orchestrator simulator`: the simulated providers as a server of their own."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import attrs

from orchestrator.cli.options import PORT, SECONDS, bind_error
from orchestrator.config import load_config
from orchestrator.simulator import SimulatorSettings, run_forever, simulator_settings_from_dict


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulator",
        help="serve the simulated providers (OpenAI, Anthropic and Gemini wire formats)",
        description=__doc__,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=PORT, default=8765, help="TCP port, 0 to 65535 (default 8765)")
    parser.add_argument("--config", type=Path, default=None, help="take the simulator: section of this config")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--latency", type=SECONDS, default=None, help="seconds added to every answer, 0 to 86400")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = SimulatorSettings()
    if args.config is not None:
        settings = simulator_settings_from_dict(load_config(args.config).simulator or {}, f"{args.config}: simulator")
    if args.seed is not None:
        settings = attrs.evolve(settings, seed=args.seed)
    if args.latency is not None:
        settings = attrs.evolve(settings, latency_s=args.latency)
    print(f"simulator: http://{args.host}:{args.port} (OpenAI /v1, Anthropic /v1/messages, Gemini /v1beta)", file=sys.stderr)
    try:
        run_forever(settings, args.host, args.port)
    except OSError as exc:
        raise bind_error(exc, args.host, args.port) from exc
    return 0
