"""A long `serve` refits its learned router on its own feedback and swaps it in only when it predicts better."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import anyio
import pytest
from trio.testing import MockClock

from actors.errors import ConfigError
from actors.messages import Request
from actors.policy import learned
from orchestrator import Orchestrator
from orchestrator.config import load_config
from orchestrator.lab.outcomes import build_table
from orchestrator.refit import refit, refit_periodically

ROOT = Path(__file__).resolve().parent.parent
HARD, EASY = "prove the lock-free queue is linearizable", "fix the typo in README"
MODELS = ("claude-haiku", "claude-opus")


def _model(path: Path, haiku_fails: str, models: tuple[str, ...] = MODELS) -> None:
    """A model that believes the cheap tier fails the prompts containing `haiku_fails`."""
    records = [
        {"prompt": f"Task {i}: {text}", models[0]: float(haiku_fails not in text), models[1]: 1.0}
        for i in range(40) for text in (HARD, EASY)
    ]
    learned.save(learned.fit(build_table(records, "seed")), path)


def _scored_history(tmp_path: Path) -> Path:
    """Feedback from a run where, truly, the cheap tier fails the hard prompts."""
    config = load_config(ROOT / "configs" / "coding_tiers.yaml", state_dir=tmp_path / "state", environ={})

    async def scored_run() -> None:
        async with Orchestrator.start(config) as orch:
            for i in range(30):
                prompt = f"Task {i}: " + (HARD if i % 2 == 0 else EASY)
                for tier in ("haiku", "opus"):
                    result = await orch.generate(Request.prompt(prompt, tier=tier, request_id=f"{tier}-{i}"))
                    orch.feedback(result.request_id, 0.0 if HARD in prompt and tier == "haiku" else 1.0)

    anyio.run(scored_run)
    return tmp_path / "state" / "telemetry"


def test_a_refit_that_predicts_the_feedback_better_replaces_the_model(tmp_path: Path) -> None:
    telemetry, model_path = _scored_history(tmp_path), tmp_path / "router.npz"
    _model(model_path, haiku_fails=EASY)  # the model in use has it backwards
    wrong = learned.load(model_path)
    assert wrong.predict_text(HARD)[0] > wrong.predict_text(EASY)[0]

    report = refit(telemetry, model_path, min_rows=10)

    assert report.swapped and report.rows == 30, report.line()
    assert report.brier_candidate is not None and report.brier_in_use is not None
    assert report.brier_candidate < report.brier_in_use
    refitted = learned.load(model_path)
    assert refitted.models == MODELS and refitted.trained_rows == 30
    assert refitted.predict_text(HARD)[0] < refitted.predict_text(EASY)[0], "now it knows where the cheap tier fails"
    assert os.stat(model_path).st_mode & 0o777 == 0o600 and list(tmp_path.glob("*.partial")) == []


def test_a_refit_without_the_evidence_leaves_the_model_file_untouched(tmp_path: Path) -> None:
    telemetry, model_path = _scored_history(tmp_path), tmp_path / "router.npz"
    _model(model_path, haiku_fails=EASY)
    before = model_path.read_bytes()
    too_few = refit(telemetry, model_path, min_rows=31)
    assert not too_few.swapped and "fewer than 31 scored prompts" in too_few.why
    other = tmp_path / "other.npz"
    _model(other, haiku_fails=HARD, models=("claude-haiku", "claude-sonnet"))
    unseen = refit(telemetry, other, min_rows=10)
    assert not unseen.swapped and "no scored answer yet from claude-sonnet" in unseen.why
    nothing = refit(tmp_path / "no-telemetry", model_path, min_rows=10)
    assert not nothing.swapped and "no telemetry segments" in nothing.why
    right = tmp_path / "right.npz"
    _model(right, haiku_fails=HARD)
    kept = refit(telemetry, right, min_rows=10)
    assert model_path.read_bytes() == before
    assert kept.brier_in_use is not None and kept.brier_candidate is not None
    assert kept.swapped == (kept.brier_candidate <= kept.brier_in_use), "swapped exactly when no worse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _learned_config(tmp_path: Path, model_path: Path) -> Path:
    config = tmp_path / "learned.yaml"
    config.write_text(
        f"extends: {ROOT / 'configs' / 'coding_tiers.yaml'}\n"
        f"llm_routing:\n  complexity_detection:\n    estimator: learned\n    model_path: {model_path}\n"
    )
    return config


def test_an_orchestrator_routes_with_the_reloaded_model(tmp_path: Path) -> None:
    telemetry, model_path = _scored_history(tmp_path), tmp_path / "router.npz"
    _model(model_path, haiku_fails=EASY)
    config = load_config(_learned_config(tmp_path, model_path), state_dir=tmp_path / "serve", environ={})

    async def main() -> tuple[float, float]:
        async with Orchestrator.start(config) as orch:
            before = orch.decide(Request.prompt(HARD)).features["p_success:claude-haiku"]
            assert refit(telemetry, model_path, min_rows=10).swapped
            assert orch.decide(Request.prompt(HARD)).features["p_success:claude-haiku"] == before, "until reloaded"
            orch.reload_router_model()
            assert orch.routing_stats()["model_reloads"] == 1
            return before, orch.decide(Request.prompt(HARD)).features["p_success:claude-haiku"]

    before, after = anyio.run(main)
    assert after < 0.5 < before


def test_serve_refits_periodically_and_swaps_the_model_in(tmp_path: Path) -> None:
    telemetry, model_path = _scored_history(tmp_path), tmp_path / "router.npz"
    _model(model_path, haiku_fails=EASY)
    before = model_path.read_bytes()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli.main", "serve", "--config", str(_learned_config(tmp_path, model_path)),
         "--port", str(port), "--state-dir", str(telemetry.parent), "--refit-every", "0.2", "--refit-min-rows", "10"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert server.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = server.stderr.readline()
        lines.append(line)
        if "refit:" in line or not line:
            break
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        metrics = answer.read().decode()
    server.send_signal(signal.SIGTERM)
    _, rest = server.communicate(timeout=30)
    output = "".join(lines) + rest
    assert server.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert "refit: 30 scored prompts; held-out Brier" in output and "swapped in a model" in output, output[-3000:]
    assert "orchestrator_router_model_reloads_total 1" in metrics, "the router routes with the new model"
    assert model_path.read_bytes() != before
    assert learned.load(model_path).predict_text(HARD)[0] < 0.5


def test_serve_refuses_to_refit_a_router_that_is_not_learned(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "serve", "--config", str(ROOT / "configs" / "simulated.yaml"),
         "--state-dir", str(tmp_path), "--refit-every", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2 and "refitting needs estimator: learned" in done.stderr


class _RefusingReload:
    def __init__(self) -> None:
        self.reloads = 0

    def reload_router_model(self) -> None:
        self.reloads += 1
        raise ConfigError("router.npz: not a learned router")


async def _periods(orch: object, telemetry: Path, model_path: Path, periods: int) -> list[str]:
    lines: list[str] = []
    with anyio.CancelScope() as scope:
        def report(line: str) -> None:
            lines.append(line)
            if len(lines) == periods:
                scope.cancel()

        await refit_periodically(orch, 60.0, telemetry, model_path, 10, report)  # type: ignore[arg-type]
    return lines


def _in_virtual_time(orch: object, telemetry: Path, model_path: Path) -> list[str]:
    """Two minute-long periods in milliseconds (the fit itself runs on a real thread, which the clock waits for)."""
    return anyio.run(_periods, orch, telemetry, model_path, 2, backend="trio",
                     backend_options={"clock": MockClock(autojump_threshold=0)})


def test_a_refit_period_that_fails_is_reported_and_the_next_one_runs(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner beside `serve` never takes the server down: a reload refused, or a fit that raises."""
    telemetry, model_path = _scored_history(tmp_path), tmp_path / "router.npz"
    _model(model_path, haiku_fails=EASY)
    orch = _RefusingReload()
    lines = _in_virtual_time(orch, telemetry, model_path)
    assert orch.reloads == 1
    assert lines[0] == "refit failed, the model in use stays: router.npz: not a learned router"
    assert lines[1].startswith("refit: ") and "kept the model in use" in lines[1]

    def broken_fit(*args: object, **kwargs: object) -> learned.LearnedModel:
        raise FloatingPointError("overflow in exp")

    monkeypatch.setattr(learned, "fit", broken_fit)
    lines = _in_virtual_time(orch, telemetry, model_path)
    assert lines == ["refit failed, the model in use stays: FloatingPointError: overflow in exp"] * 2
