"""`orchestrator serve` under load: the server's CPU per request against the embedded path's.

    python tools/bench.py serve --requests 2000 --concurrency 50 --rounds 3

The simulator and the load clients share core 0; the server runs pinned to core 1,
where the embedded client runs too, so the two figures are CPU spent on the same core
for the same work: distinct 760-character prompts pinned to tier_1, routed, reserved,
cached, logged and settled. The server's CPU is read from /proc around each measured
pass (after a warm-up of 300 requests); the load comes from a bounded aiohttp client
and from the official `openai` client (`AsyncOpenAI`), each at `--concurrency`. The
embedded figure is the e2e harness's `text-pinned` client; the bare aiohttp client
(straight to the simulator) is shown for scale.

    python tools/bench.py serve --litellm /path/to/venv/bin/litellm

adds LiteLLM's proxy (not a dependency of this project: install it in a venv of its
own, `pip install 'litellm[proxy]'`) as a third server on the same core, with its
defaults and no database, one model `tier_1` pointing at the simulator's OpenAI
endpoint, driven by the same aiohttp client. Its CPU is its whole process tree's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson

from orchestrator.tables import render_table
from orchestrator.workload import text_requests
from tools.benchmarks.e2e import ROOT, TICKS, Simulator, _pin, measure, pinning_note
from tools.benchmarks.e2e_client import _percentile

WARM_UP = 300


LITELLM_KEY = "sk-bench-" + "0123456789abcdef" * 2
"""The proxy refuses to start without a master key; this one guards a loopback port for one run."""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server under test in its own process pinned to core 1, against the simulator: `orchestrator serve` by
    default, or `litellm` (its proxy) when given that executable."""

    def __init__(self, simulator_url: str, state: str, litellm: str | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"content-type": "application/json"}
        if litellm is None:
            command = [sys.executable, "-m", "orchestrator.cli.main", "serve", "--port", str(self.port),
                       "--state-dir", state]
            env = {**os.environ, "ORCHESTRATOR_SIMULATOR_URL": simulator_url, "PYTHONPATH": str(ROOT)}
            self.health = f"{self.url}/health"
        else:
            config = Path(state) / "litellm.json"  # JSON is YAML: the proxy reads it as its config
            config.write_bytes(orjson.dumps({
                "model_list": [{"model_name": "tier_1", "litellm_params": {
                    "model": "openai/tier-1-model", "api_base": f"{simulator_url}/v1", "api_key": "unused"}}],
                "litellm_settings": {"telemetry": False},
            }))
            command = [litellm, "--config", str(config), "--port", str(self.port)]
            env = {**os.environ, "LITELLM_MASTER_KEY": LITELLM_KEY, "LITELLM_LOG": "ERROR"}
            self.headers["authorization"] = f"Bearer {LITELLM_KEY}"
            self.health = f"{self.url}/health/liveliness"
        self.proc = subprocess.Popen([*_pin(1), *command], cwd=state if litellm else ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(1200):
                try:
                    async with session.get(self.health, headers=self.headers) as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
                await anyio.sleep(0.05)
        raise RuntimeError("the server did not start within 60 s")

    def cpu_s(self) -> float:
        """The CPU of the server's process and every process under it (a proxy may run workers)."""
        return sum(_process_cpu_s(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc (a process that ends meanwhile is skipped)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(parents.get(pid, []))
    return found


def _bodies(count: int, seed: int) -> list[bytes]:
    return [orjson.dumps({"model": "tier_1", "messages": [{"role": "user", "content": r.messages[0].content}]})
            for r in text_requests(count, 760, seed=seed)]


async def _load(server: Server, bodies: list[bytes], concurrency: int, client: str) -> dict[str, float]:
    """Send `bodies` at `concurrency`; the server's CPU per request, req/s and the latency clients saw."""
    latencies: list[float] = []
    limiter = anyio.Semaphore(concurrency)
    if client == "openai":
        from openai import AsyncOpenAI

        api = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)

        async def send(body: bytes) -> None:
            data = orjson.loads(body)
            answer = await api.chat.completions.create(model=data["model"], messages=data["messages"])
            assert answer.choices[0].message.content
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

        async def send(body: bytes) -> None:
            async with session.post(f"{server.url}/v1/chat/completions", data=body,
                                    headers=server.headers) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()

    async def one(body: bytes) -> None:
        async with limiter:
            start = time.perf_counter()
            await send(body)
            latencies.append(time.perf_counter() - start)

    cpu = server.cpu_s()
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            for body in bodies:
                tg.start_soon(one, body)
    finally:
        if client == "openai":
            await api.close()
        else:
            await session.close()
    elapsed = time.perf_counter() - started
    return {"cpu_us": (server.cpu_s() - cpu) / len(bodies) * 1e6, "rps": len(bodies) / elapsed,
            "p50_ms": _percentile(latencies, 0.5) * 1e3, "p99_ms": _percentile(latencies, 0.99) * 1e3}


async def _through_server(sim_url: str, requests: int, concurrency: int, rounds: int,
                          litellm: str | None) -> dict[str, list[dict[str, float]]]:
    legs = [("serve, aiohttp client", None, "aiohttp", 200), ("serve, openai client", None, "openai", 300)]
    if litellm is not None:
        legs.append(("LiteLLM proxy, aiohttp client", litellm, "aiohttp", 400))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in legs}
    with tempfile.TemporaryDirectory() as ours, tempfile.TemporaryDirectory() as theirs:
        servers = {None: Server(sim_url, ours)}
        if litellm is not None:
            servers[litellm] = Server(sim_url, theirs, litellm)
        try:
            for server in servers.values():
                await server.ready()
                await _load(server, _bodies(WARM_UP, 100), concurrency, "aiohttp")
            for number in range(rounds):
                for name, which, client, seed in legs:
                    results[name].append(await _load(servers[which], _bodies(requests, seed + number), concurrency, client))
        finally:
            for server in servers.values():
                server.stop()
    return results


def run(requests: int, concurrency: int, rounds: int, litellm: str | None = None) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})  # the load clients stay off the server's core
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "embedded": []}
    with Simulator(0.0) as sim:
        measure(sim, "bare-text", 200, concurrency)
        for _ in range(rounds):
            results["bare"].append(measure(sim, "bare-text", requests, concurrency))
            results["embedded"].append(measure(sim, "text-pinned", requests, concurrency))
        results.update(anyio.run(_through_server, sim.url, requests, concurrency, rounds, litellm))
    embedded = statistics.median(r["cpu_us"] for r in results["embedded"])
    embedded_p50 = statistics.median(r["p50_ms"] for r in results["embedded"])
    rows = []
    for name, rs in results.items():
        cpu = statistics.median(r["cpu_us"] for r in rs)
        rows.append((name, f"{cpu:.0f} [{min(r['cpu_us'] for r in rs):.0f}-{max(r['cpu_us'] for r in rs):.0f}]",
                     "-" if name == "bare" else f"{cpu / embedded:.2f}",
                     f"{statistics.median(r['rps'] for r in rs):.0f}",
                     f"{statistics.median(r['p50_ms'] for r in rs):.1f}",
                     "-" if name in ("bare", "embedded") else
                     f"{statistics.median(r['p50_ms'] for r in rs) - embedded_p50:+.1f}"))
    bare = statistics.median(r["cpu_us"] for r in results["bare"])
    print(render_table(
        ("path", "CPU µs/request (server's for serve)", "against embedded", "req/s", "p50 ms", "p50 added by HTTP"),
        rows,
        title=f"serve: {requests} distinct 760-character prompts pinned to tier_1 at concurrency {concurrency}, "
              f"{rounds} rounds after {WARM_UP} warm-up; bare client {bare:.0f} µs/request; {pinning_note()}, "
              "load clients on core 0",
    ))
    print()
