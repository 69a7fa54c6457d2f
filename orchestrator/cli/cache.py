"""`orchestrator cache`: inspect, check or rebuild the persistent response cache.

A corrupt or unreadable cache never fails a request (it degrades to misses with one
warning); `verify` says what is wrong and `clear` deletes the files so the next run
starts a fresh cache. `stats` and `verify` only read: they create, checkpoint or
delete nothing in the state directory (`actors.cache.store.read_only`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from actors.cache.store import clear, read_stats, verify
from orchestrator.config import default_config_path, load_config
from orchestrator.tables import render_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("cache", help="stats, verify or clear the response cache", description=__doc__)
    parser.add_argument("action", choices=("stats", "verify", "clear"))
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: configs/simulated.yaml)")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the cache lives (default: the config's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config or default_config_path(), state_dir=args.state_dir)
    settings = config.engine.cache
    if settings.path is None:
        print("this configuration keeps no persistent cache")
        return 0
    if args.action == "verify":
        healthy, detail, damaged = verify(settings.path)
        state = "OK" if healthy else "DAMAGED" if damaged else "UNREADABLE"
        if args.json:
            print(orjson.dumps({"path": settings.path, "state": state, "detail": detail}).decode())
            return 0 if healthy else 1
        print(f"{settings.path}: {state}: {detail}")
        if damaged:
            print("run `orchestrator cache clear` to start a fresh cache")
        elif not healthy:
            print("fix the permissions of the state directory; the cache itself may be fine")
        return 0 if healthy else 1
    if args.action == "clear":
        removed = clear(settings.path)
        print(orjson.dumps({"removed": removed, "path": settings.path}).decode() if args.json
              else f"removed {removed} cache file(s) at {settings.path}")
        return 0
    entries, size, degraded = read_stats(settings.path)
    if args.json:
        print(orjson.dumps({"entries": entries, "bytes": size, "degraded": degraded, "path": settings.path}).decode())
    else:
        print(render_table(
            ("", "value"),
            [("entries", entries), ("bytes", size), ("degraded", degraded), ("path", settings.path)],
        ))
    return 1 if degraded else 0
