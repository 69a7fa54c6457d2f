"""`orchestrator doctor`: what is missing and how to fix it, never a key's value, and nothing written."""

from __future__ import annotations

import socket
from pathlib import Path

import attrs
import numpy as np
import orjson
import pytest

from actors.policy import learned
from orchestrator.cli.main import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SECRET = "sk-doctor-test-0123456789abcdef"


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["doctor", "--json", *args])
    return code, orjson.loads(capsys.readouterr().out)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_simulated_setup_is_ready_and_the_check_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    code, report = _doctor(capsys, "--config", str(CONFIGS / "simulated.yaml"), "--state-dir", str(state))
    assert code == 0 and report["ready"] is True
    checks = report["checks"]
    assert isinstance(checks, list) and all(c["status"] == "ok" for c in checks)
    assert checks[0]["detail"].endswith("simulated.yaml <- " + str(CONFIGS / "llm_routing.yaml"))
    assert not state.exists(), "a read-only command creates nothing"


def test_the_routing_models_are_loaded_and_a_missing_one_fails_with_its_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _doctor(capsys, "--config", str(CONFIGS / "simulated.yaml"), "--state-dir", str(tmp_path / "s"))
    routing = {c["subject"]: c for c in report["checks"] if c["area"] == "routing"}
    assert routing["estimator"]["detail"] == "auto"
    assert routing["text model"]["status"] == "ok" and "15334 training rows" in routing["text model"]["detail"]
    assert routing["text model"]["detail"].endswith("scores plain text")  # its features are held: nothing to add
    shipped = learned.load(CONFIGS / "models" / "gsm8k_learned.npz")
    learned.save(attrs.evolve(shipped, dense_low=np.zeros(0), dense_high=np.zeros(0)), tmp_path / "older.npz")
    (tmp_path / "older.yaml").write_text(f"extends: {CONFIGS / 'gsm8k_recorded.yaml'}\nllm_routing:\n"
                                         f"  complexity_detection:\n    model_path: {tmp_path / 'older.npz'}\n")
    for config_path, unbounded in ((CONFIGS / "gsm8k_recorded.yaml", False), (tmp_path / "older.yaml", True)):
        code, report = _doctor(capsys, "--config", str(config_path), "--state-dir", str(tmp_path / "g"))
        model = next(c for c in report["checks"] if c["subject"] == "model")
        assert model["status"] == "ok" and ("unbounded" in model["detail"]) is unbounded
        assert ("fit it again" in model["detail"]) is unbounded
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n  complexity_detection:\n"
                      "    text_model: nowhere.npz\n")
    code, report = _doctor(capsys, "--config", str(config), "--state-dir", str(tmp_path / "s"))
    text_model = next(c for c in report["checks"] if c["subject"] == "text model")
    assert code == 2 and text_model["status"] == "FAIL" and "nowhere.npz: no such file" in text_model["detail"]
    assert "routing fit" in text_model["fix"]


def test_missing_keys_are_named_with_the_fix_and_a_present_key_is_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("QWEN_API_KEY", "GEMINI_API_KEY", "GLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET + "\r")
    config = tmp_path / "c.yaml"
    config.write_text(f"extends: {CONFIGS / 'llm_routing.yaml'}\nllm_routing:\n  model_tiers:\n"
                      f"    tier_4:\n      api_endpoint: http://127.0.0.1:{_closed_port()}/v1\n")
    code, report = _doctor(capsys, "--config", str(config), "--state-dir", str(tmp_path / "state"))
    assert code == 2 and report["ready"] is False
    by_provider = {c["subject"].split(" / ")[1].split(" (")[0]: c for c in report["checks"] if c["area"] == "provider"}
    qwen, gpt = by_provider["Qwen2.5-Coder"], by_provider["GPT-5"]
    assert qwen["status"] == "FAIL" and "QWEN_API_KEY is not set" in qwen["detail"] and "export QWEN_API_KEY" in qwen["fix"]
    assert gpt["status"] == "FAIL" and "key in OPENAI_API_KEY" in gpt["detail"] and "unreachable" in gpt["detail"]
    gemini = by_provider["Gemini 2.5 Flash"]
    assert gemini["status"] == "FAIL" and "GEMINI_API_KEY holds a control character (U+000D)" in gemini["detail"]
    assert SECRET not in orjson.dumps(report).decode()
    assert by_provider["Falcon Mamba 7B"]["status"] == "warn", "the optional local tier does not fail the check"


def test_a_budget_too_small_for_any_paid_answer_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the free local tier a run still goes (a warning); without one it cannot (a failure)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(f"extends: {CONFIGS / 'simulated.yaml'}\nllm_routing:\n  optimization:\n    budget_limit: 0.000002\n")
    code, report = _doctor(capsys, "--config", str(config), "--state-dir", str(tmp_path / "state"))
    ledger = next(c for c in report["checks"] if c["area"] == "ledger")
    assert (code, ledger["status"]) == (0, "warn") and "cannot pay one answer of the cheapest paid tier" in ledger["fix"]


def test_on_kaggle_it_reports_the_profile_and_its_state_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.delenv("ORCHESTRATOR_STATE_DIR", raising=False)
    _, report = _doctor(capsys, "--config", str(CONFIGS / "simulated.yaml"))
    platform = next(c for c in report["checks"] if c["subject"] == "platform")
    assert platform["detail"].startswith("kaggle (KAGGLE_KERNEL_RUN_TYPE is set)")
    assert "state directory /kaggle/working/llm-orchestrator" in platform["detail"]
    state = next(c for c in report["checks"] if c["subject"] == "directory")
    assert state["detail"].startswith("/kaggle/working/llm-orchestrator")


def test_a_probe_sends_each_provider_one_priced_call_through_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    code, report = _doctor(capsys, "--config", str(CONFIGS / "simulated.yaml"), "--state-dir", str(state), "--probe")
    probes = [c for c in report["checks"] if c["area"] == "probe"]
    assert code == 0 and len(probes) == 5 and all(p["status"] == "ok" for p in probes)
    assert all("answered in" in p["detail"] for p in probes)
    assert main(["budget", "--state-dir", str(state), "--json"]) == 0
    ledger = orjson.loads(capsys.readouterr().out)
    assert ledger["settled_nd"] > 0 and ledger["outstanding"] == 0, "the probes were priced and journaled"
