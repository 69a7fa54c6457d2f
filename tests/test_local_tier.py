"""The local tier against a separate OpenAI-compatible server process (tests/local_model_server.py), not the simulator.

Slow inference within the tier's timeout is answered at no cost; past the timeout the
attempt fails with the money released (a free tier holds nothing); a server that dies
in the middle of an answer fails that request alone; a server absent at start leaves
the optional tier out with a warning instead of failing the run.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.errors import StrategyUnavailable
from actors.messages import Request
from orchestrator import Orchestrator
from orchestrator.cli.main import main
from orchestrator.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Write transform(grid) that returns the grid unchanged."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    """The port of a `tests/local_model_server.py` process started with the test's options (`indirect`)."""
    options: tuple[str, ...] = request.param
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "local_model_server.py"), str(port), *options],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize("server", [("--delay", "0.1", "--chunk-delay", "0.8")], indirect=True)
@pytest.mark.anyio
async def test_a_streamed_answer_slower_than_the_first_token_bound_in_total_is_still_answered(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 30.0, first_token_s=1.0),
                         state_dir=tmp_path / "state", environ={})
    async with Orchestrator.start(config) as orch:
        result = await orch.generate(_local(4))
    assert result.text == "def transform(grid):\n    return grid\n" and result.cost_nd == 0
    assert result.latency_s > 1.5, "1.7 s in all: the bound is on the first token, not on the whole answer"
    assert (result.input_tokens, result.output_tokens) == (40, 12)


@pytest.mark.parametrize("server", [("--delay", "5")], indirect=True)
@pytest.mark.anyio
async def test_a_server_that_does_not_begin_within_the_first_token_bound_fails_early(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 30.0, first_token_s=0.5),
                         state_dir=tmp_path / "state", environ={})
    async with Orchestrator.start(config) as orch:
        started = time.monotonic()
        with pytest.raises(StrategyUnavailable, match="no first token within 0.5 s"):
            await orch.generate(_local(5))
        elapsed = time.monotonic() - started
        budget = await orch.budget()
    assert elapsed < 2.0, "the 5 s silence was cut at the 0.5 s first-token bound, not at the 30 s timeout"
    assert budget.outstanding == 0 and budget.unreconciled_nd == 0


@pytest.mark.parametrize("server", [("--die-after", "1")], indirect=True)
@pytest.mark.anyio
async def test_a_stream_cut_short_when_the_server_dies_fails_that_request_alone(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 5.0, first_token_s=2.0), state_dir=tmp_path / "state",
                         environ={})
    async with Orchestrator.start(config) as orch:
        with pytest.raises(StrategyUnavailable, match="Falcon Mamba 7B"):
            await orch.generate(_local(6))
        other = await orch.generate(Request.prompt(f"{PROMPT} (paid)"))
        budget = await orch.budget()
    assert other.text and budget.outstanding == 0 and budget.unreconciled_nd == 0


def _config(tmp_path: Path, port: int, timeout_s: float, first_token_s: float | None = None) -> Path:
    """The simulated setup with its local tier at a real server process, and no retries (one attempt each).

    With `first_token_s` the tier streams (`protocol: openai-stream`) under that first-token bound.
    """
    config = tmp_path / "local.yaml"
    streamed = "" if first_token_s is None else (
        f"      protocol: openai-stream\n      first_token_timeout: {first_token_s}\n")
    config.write_text(
        f"extends: {ROOT / 'configs' / 'simulated.yaml'}\nllm_routing:\n  retry:\n    max_retries: 0\n"
        f"  model_tiers:\n    fallback:\n"
        f"      api_endpoint: http://127.0.0.1:{port}/v1\n      timeout: {timeout_s}\n      optional: true\n{streamed}"
    )
    return config


def _local(index: int) -> Request:
    return Request.prompt(f"{PROMPT} ({index})", tier="fallback")


@pytest.mark.parametrize("server", [("--delay", "0.5")], indirect=True)
@pytest.mark.anyio
async def test_slow_local_inference_within_the_timeout_is_answered_free(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 5.0), state_dir=tmp_path / "state", environ={})
    async with Orchestrator.start(config) as orch:
        result = await orch.generate(_local(1))
        budget = await orch.budget()
    assert result.tier == "fallback" and result.cost_nd == 0 and "def transform" in result.text
    assert result.latency_s >= 0.5
    assert budget.settled_nd == 0 and budget.outstanding == 0


@pytest.mark.parametrize("server", [("--delay", "3")], indirect=True)
@pytest.mark.anyio
async def test_past_the_timeout_the_attempt_fails_and_nothing_is_held(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 1.0), state_dir=tmp_path / "state", environ={})
    async with Orchestrator.start(config) as orch:
        started = time.monotonic()
        with pytest.raises(StrategyUnavailable, match="fallback|Falcon"):
            await orch.generate(_local(2))
        elapsed = time.monotonic() - started
        budget = await orch.budget()
    assert 1.0 <= elapsed < 2.5, "one attempt, ended by the tier's 1 s timeout, not by the server's 3 s"
    assert budget.outstanding == 0 and budget.unreconciled_nd == 0, "a free tier's unknown outcome holds nothing"


@pytest.mark.parametrize("server", [("--die-after", "1")], indirect=True)
@pytest.mark.anyio
async def test_a_server_that_dies_mid_answer_fails_that_request_alone(
    anyio_backend: str, tmp_path: Path, server: int
) -> None:
    config = load_config(_config(tmp_path, server, 5.0), state_dir=tmp_path / "state", environ={})
    async with Orchestrator.start(config) as orch:
        with pytest.raises(StrategyUnavailable) as died:
            await orch.generate(_local(3))
        paid = await orch.generate(Request.prompt(f"{PROMPT} (paid)"))
        budget = await orch.budget()
    assert "Falcon Mamba 7B" in str(died.value)
    assert paid.tier != "fallback" and paid.text, "other tiers still answer"
    assert budget.outstanding == 0 and budget.unreconciled_nd == 0


def test_a_local_server_absent_at_start_leaves_the_optional_tier_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--config", str(_config(tmp_path, _free_port(), 5.0)), "--state-dir", str(tmp_path / "state"),
                 "--tasks", "3", "--json"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "fallback (Falcon Mamba 7B) left out (optional)" in err and "unreachable" in err
