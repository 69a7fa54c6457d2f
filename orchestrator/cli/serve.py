"""`orchestrator serve`: the OpenAI-compatible endpoint, for any OpenAI client or many GA workers.

SIGTERM or SIGINT stops it cleanly: the listening socket closes at once, requests in
flight have `--grace` seconds to finish, the rest are cancelled (their money closed
by the attempt's failure table: released if nothing was sent, held if it was), the
telemetry and the ledger are flushed as the orchestrator stops, and the exit status
is 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web

from actors.errors import ConfigError
from orchestrator.api import Orchestrator
from orchestrator.cli.options import PORT, POSITIVE_SECONDS, bind_error
from orchestrator.cli.preflight import preflight
from orchestrator.config import default_config_path, load_config
from orchestrator.platforms import PLATFORMS
from orchestrator.server import app_runner, build_app, check_binding

TOKEN_ENV = "ORCHESTRATOR_SERVER_TOKEN"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve an OpenAI-compatible /v1/chat/completions (plus /metrics and /health)",
        description=__doc__,
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; elsewhere needs $" + TOKEN_ENV)
    parser.add_argument("--port", type=PORT, default=8080, help="TCP port, 0 to 65535 (default 8080)")
    parser.add_argument("--state-dir", type=Path, default=None, help="ledger journal, cache and telemetry live here")
    parser.add_argument("--platform", choices=PLATFORMS, default=None,
                        help="use this platform's profile instead of the detected one (docs: orchestrator/platforms.py)")
    parser.add_argument("--first-token", type=POSITIVE_SECONDS, default=20.0,
                        help="seconds a streaming client waits for one provider before the next is tried (default 20)")
    parser.add_argument("--grace", type=POSITIVE_SECONDS, default=10.0,
                        help="on SIGTERM or SIGINT, seconds requests in flight have to finish (default 10)")
    parser.add_argument("--refit-every", type=POSITIVE_SECONDS, default=None, metavar="SECONDS",
                        help="refit the learned router (estimator: learned) on the telemetry's feedback this often, "
                             "and swap it in when it predicts held-out feedback no worse (orchestrator/refit.py)")
    parser.add_argument("--refit-min-rows", type=int, default=200, metavar="N",
                        help="scored prompts a refit needs (default 200)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV) or None
    check_binding(args.host, token)
    config = preflight(load_config(args.config or default_config_path(), state_dir=args.state_dir,
                                  platform=args.platform))
    refit = _refit_plan(args, config)
    anyio.run(_serve, config, args.host, args.port, token, args.first_token, args.grace, refit, backend="asyncio")
    return 0


def _refit_plan(args: argparse.Namespace, config: Any) -> tuple[float, Path, Path, int] | None:
    """(period, telemetry dir, model file, minimum rows) for `--refit-every`, or None; refused when nothing to refit."""
    if args.refit_every is None:
        return None
    estimator = config.engine.router.estimator
    if estimator.kind != "learned" or not estimator.model_path:
        raise ConfigError("serve --refit-every: the config routes with estimator "
                          f"{estimator.kind!r}; refitting needs estimator: learned with a model_path")
    if config.engine.telemetry.dir is None:
        raise ConfigError("serve --refit-every: telemetry is off in this config; the refit learns from its feedback")
    if args.refit_min_rows < 10:
        raise ConfigError(f"serve --refit-min-rows: at least 10, got {args.refit_min_rows}")
    return args.refit_every, Path(config.engine.telemetry.dir), Path(estimator.model_path), args.refit_min_rows


async def _serve(config: Any, host: str, port: int, token: str | None, first_token_s: float, grace_s: float,
                 refit: tuple[float, Path, Path, int] | None) -> None:
    async with Orchestrator.start(config, freeze_gc=True) as orch, anyio.create_task_group() as background:
        if refit is not None:
            from orchestrator.refit import refit_periodically

            background.start_soon(refit_periodically, orch, *refit,
                                  lambda line: print(f"orchestrator: {line}", file=sys.stderr, flush=True))
        runner = app_runner(build_app(orch, token, first_token_s), shutdown_timeout=grace_s)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise bind_error(exc, host, port) from exc
        print(f"orchestrator: serving http://{host}:{port}/v1 (Ctrl-C to stop)", file=sys.stderr)
        try:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    print(f"orchestrator: {signal.Signals(signum).name}: stopping; requests in flight have "
                          f"{grace_s:g} s", file=sys.stderr)
                    break
        finally:
            background.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
