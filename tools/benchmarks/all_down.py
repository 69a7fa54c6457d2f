"""An all-down world: every provider refusing connections, how fast requests fail.

    python tools/bench.py all-down

The shipped simulated configuration with every provider's endpoint at a closed port on
127.0.0.1. First a wave of 300 concurrent requests (each should end within the retry
budget, 1 + 2 + 4 s of backoff, never a multiple of it); then waves of 100 until every
circuit is open, and three requests timed against that (they should fail at once, with
`retry_after` saying when the first circuit's cooldown ends).
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

import anyio
import attrs

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from actors.errors import OrchestratorError, StrategyUnavailable  # noqa: E402
from actors.messages import Request  # noqa: E402
from orchestrator import Orchestrator  # noqa: E402
from orchestrator.config import load_config  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wave(orch: Orchestrator, count: int, label: str) -> list[float]:
    ended: list[float] = []
    start = time.monotonic()

    async def one(number: int) -> None:
        try:
            await orch.generate(Request.prompt(f"{label}: fix bug {number}"))
        except OrchestratorError:
            ended.append(time.monotonic() - start)

    async with anyio.create_task_group() as tg:
        for number in range(count):
            tg.start_soon(one, number)
    return ended


async def measure() -> None:
    with tempfile.TemporaryDirectory() as state:
        config = load_config(ROOT / "configs" / "simulated.yaml", environ={}, state_dir=state)
        url = f"http://127.0.0.1:{_closed_port()}/v1"
        providers = tuple(attrs.evolve(p, base_url=url) for p in config.engine.providers)
        config = attrs.evolve(config, engine=attrs.evolve(config.engine, providers=providers))
        names = [p.name for p in providers]
        async with Orchestrator.start(config) as orch:
            cpu = time.process_time()
            ended = await _wave(orch, 300, "wave")
            print(f"wave of 300: all failed: {len(ended) == 300}; the last ended after {max(ended):.2f} s "
                  f"(retry budget 7 s); {time.process_time() - cpu:.2f} s of CPU")
            for number in range(20):
                if all(orch.health()[name]["state"] == "open" for name in names):
                    break
                await _wave(orch, 100, f"until open {number}")
                await anyio.sleep(0.5)
            states = {name: orch.health()[name]["state"] for name in names}
            print(f"circuits: {states}")
            for number in range(3):
                start = time.monotonic()
                try:
                    await orch.generate(Request.prompt(f"while open {number}"))
                except StrategyUnavailable as exc:
                    print(f"a request with every circuit open failed after {(time.monotonic() - start) * 1000:.2f} ms, "
                          f"retry_after {exc.retry_after}")


def main() -> None:
    anyio.run(measure)


if __name__ == "__main__":
    main()
