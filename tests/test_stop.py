"""`orchestrator serve` stopped by SIGTERM or SIGINT: exit 0, no traceback, requests in flight finished or closed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, latency_s: float, grace_s: float) -> tuple[subprocess.Popen[str], str]:
    config = tmp_path / "slow.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'simulated.yaml'}\n"
        f"llm_routing:\n  simulator:\n    latency_s: {latency_s}\n"
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "serve", "--config", str(config), "--port", str(port),
         "--state-dir", str(tmp_path / "state"), "--grace", str(grace_s)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).close()
            return server, url
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise AssertionError(f"the server did not start: {server.communicate()[1][-2000:]}")


def _ask(url: str, index: int, outcomes: list[object]) -> None:
    body = json.dumps({"model": "tier_1", "max_tokens": 50,
                       "messages": [{"role": "user", "content": f"write function {index}"}]}).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", body, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            outcomes.append(answer.status)
    except urllib.error.HTTPError as exc:
        outcomes.append(exc.code)
    except OSError as exc:
        outcomes.append(type(exc).__name__)


def _stop(server: subprocess.Popen[str], how: signal.Signals) -> tuple[int, float, str]:
    started = time.perf_counter()
    server.send_signal(how)
    try:
        _, err = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        _, err = server.communicate()
    return server.returncode, time.perf_counter() - started, err


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_stops_at_once_with_status_0_and_no_traceback(tmp_path: Path, how: signal.Signals) -> None:
    server, _ = _start(tmp_path, latency_s=0.0, grace_s=10.0)
    status, took, err = _stop(server, how)
    assert status == 0, err[-2000:]
    assert took < 5.0, f"an idle server took {took:.1f} s to stop"
    assert "Traceback" not in err


def _stop_while_asking(
    tmp_path: Path, *, latency_s: float, grace_s: float, count: int, after_s: float
) -> tuple[int, float, str, list[object], dict[str, int]]:
    """Start the server, send `count` requests, SIGTERM it `after_s` later; then read the ledger it left."""
    server, url = _start(tmp_path, latency_s=latency_s, grace_s=grace_s)
    outcomes: list[object] = []
    askers = [threading.Thread(target=_ask, args=(url, i, outcomes)) for i in range(count)]
    for asker in askers:
        asker.start()
    time.sleep(after_s)
    status, took, err = _stop(server, signal.SIGTERM)
    for asker in askers:
        asker.join()
    budget = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "budget", "--state-dir", str(tmp_path / "state"), "--json"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return status, took, err, outcomes, json.loads(budget.stdout)


def test_requests_in_flight_finish_within_the_grace_and_the_books_close(tmp_path: Path) -> None:
    status, took, err, outcomes, ledger = _stop_while_asking(tmp_path, latency_s=1.0, grace_s=10.0, count=20,
                                                             after_s=0.5)
    assert status == 0 and "Traceback" not in err, err[-2000:]
    assert outcomes == [200] * 20, "every request in flight was answered before the stop"
    assert took < 10.0
    assert ledger["outstanding"] == 0, ledger


def test_past_the_grace_requests_are_cancelled_with_their_money_closed(tmp_path: Path) -> None:
    status, took, err, outcomes, ledger = _stop_while_asking(tmp_path, latency_s=20.0, grace_s=0.5, count=10,
                                                             after_s=1.0)
    assert status == 0 and "Traceback" not in err, err[-2000:]
    assert took < 8.0, f"took {took:.1f} s with a grace of 0.5 s"
    assert 200 not in outcomes and len(outcomes) == 10
    assert ledger["reserved_nd"] == ledger["unreconciled_nd"], "what stays reserved is held (sent, outcome unknown)"


def _run_then_stop(tmp_path: Path, *, latency_s: float, grace_s: float, after_s: float, second: bool = False
                   ) -> tuple[int, str, str, dict[str, int]]:
    """`orchestrator run` of 200 tasks on a slow simulator, stopped by SIGTERM `after_s` in (twice with `second`)."""
    config = tmp_path / "slow.yaml"
    config.write_text(f"extends: {ROOT / 'configs' / 'simulated.yaml'}\nllm_routing:\n  simulator:\n    latency_s: {latency_s}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "run", "--config", str(config), "--tasks", "200",
         "--concurrency", "8", "--state-dir", str(tmp_path / "state"), "--grace", str(grace_s), "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    time.sleep(after_s)
    run.send_signal(signal.SIGTERM)
    if second:
        time.sleep(0.5)
        run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    budget = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "budget", "--state-dir", str(tmp_path / "state"), "--json"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    return run.returncode, out, err, json.loads(budget.stdout)


def test_a_stopped_run_lets_requests_in_flight_finish_and_prints_its_partial_summary(tmp_path: Path) -> None:
    status, out, err, ledger = _run_then_stop(tmp_path, latency_s=0.5, grace_s=10.0, after_s=4.0)
    summary = json.loads(out)
    assert status == 130 and "Traceback" not in err and "may be lost" not in err, err[-2000:]
    stop = summary["interrupted"]
    assert stop["signal"] == "SIGTERM" and stop["cancelled"] == 0 and stop["not_started"] > 0
    assert summary["requests"] + stop["not_started"] == 200 and summary["failed"] == 0
    assert ledger["outstanding"] == 0 and ledger["settled_nd"] == summary["cost_nd"], "every answer settled, nothing open"


def test_a_second_signal_cancels_a_stopped_run_at_once_with_its_money_closed(tmp_path: Path) -> None:
    status, out, err, ledger = _run_then_stop(tmp_path, latency_s=30.0, grace_s=60.0, after_s=4.0, second=True)
    summary = json.loads(out)
    assert status == 130 and "Traceback" not in err, err[-2000:]
    assert summary["interrupted"]["cancelled"] == 8, "the eight in flight were cancelled, not waited for"
    assert ledger["reserved_nd"] == ledger["unreconciled_nd"], "what stays reserved is held (sent, outcome unknown)"
