"""Every expected failure of the CLI is one line on stderr and the documented exit code.

Table-driven over the bad inputs a new user tries (issue 11); each row names the
exit status and the words the user must read.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from orchestrator.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "simulated.yaml")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("run", "--tasks", "-5"), "-5 is out of range: from 1 to 1000"),
        (("run", "--tasks", "100000"), "100000 is out of range: from 1 to 1000"),
        (("run", "--concurrency", "-1"), "-1 is out of range"),
        (("run", "--passthrough"), "--passthrough only applies with --replay"),
        (("serve", "--port", "99999"), "99999 is out of range: from 0 to 65535"),
        (("calibrate", "--config", CONFIG, "--mix", "60,25,10,50"), "sums to 145"),
        (("calibrate", "--config", CONFIG, "--mix", "60,40"), "has 2 shares but the config has 4 levels"),
    ],
)
def test_bad_usage_is_refused_before_any_work(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str) -> None:
    code, err = cli(capsys, *argv)
    assert code == 2 and says in err
    assert "Traceback" not in err


def test_bad_files_and_paths_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    shapeless = tmp_path / "shapeless.jsonl"
    shapeless.write_text('{"messages": 5}\n')
    empty_log = tmp_path / "log"
    empty_log.mkdir()
    cases = [
        (("run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(latin)),
         "latin.jsonl:2: not UTF-8"),
        (("run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(shapeless)),
         "shapeless.jsonl:1: messages must be a list"),
        (("run", "--config", CONFIG, "--state-dir", "/proc/orchestrator-cannot-live-here", "--tasks", "1"),
         "/proc/orchestrator-cannot-live-here"),
        (("run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--replay", "/nonexistent"),
         "/nonexistent: no telemetry log there"),
        (("stats", "--config", CONFIG, "--telemetry", "/nonexistent"), "/nonexistent: no telemetry log there"),
        (("replay", "/nonexistent", "--config", CONFIG, "--state-dir", str(tmp_path / "s")),
         "/nonexistent: no telemetry log there"),
        (("report", "--config", CONFIG, "--telemetry", str(empty_log), "--out", "/nonexistent/dir/r.html"),
         "/nonexistent/dir/r.html"),
        (("serve", "--config", CONFIG, "--host", "0.0.0.0"), "without a bearer token"),
    ]
    for argv, says in cases:
        code, err = cli(capsys, *argv)
        assert (code, says in err, "Traceback" in err) == (2, True, False), (argv, err)
        assert len(err.strip().splitlines()) <= 2, err


def test_debug_shows_the_traceback_of_an_expected_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "--debug", "stats", "--config", CONFIG, "--telemetry", "/nonexistent")
    assert code == 2 and "Traceback" in err and "no telemetry log there" in err


def test_a_port_in_use_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORCHESTRATOR_SERVER_TOKEN", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = cli(capsys, "serve", "--config", CONFIG, "--state-dir", str(tmp_path), "--port", str(port))
    assert code == 2 and "address already in use" in err and "choose another --port" in err


@pytest.mark.parametrize("damage", ["missing", "emptied", "truncated"])
def test_the_audit_fails_when_the_log_does_not_account_for_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    state = tmp_path / "state"
    assert main(["run", "--config", CONFIG, "--tasks", "8", "--state-dir", str(state), "--json"]) == 0
    capsys.readouterr()
    log = state / "telemetry"
    segments = sorted(log.glob("segment-*"))
    if damage == "missing":
        for segment in segments:
            segment.unlink()
        log.rmdir()
    elif damage == "emptied":
        for segment in segments:
            segment.unlink()
    else:
        segments[-1].write_bytes(segments[-1].read_bytes()[: len(segments[-1].read_bytes()) // 3])
    code, err = cli(capsys, "replay", str(log), "--config", CONFIG, "--state-dir", str(state))
    assert code in (1, 2) and code == (2 if damage == "missing" else 1)
    out = capsys.readouterr().out
    assert "OK: every attempt" not in out


def test_a_whole_log_audits_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", "--config", CONFIG, "--tasks", "8", "--state-dir", str(state), "--json"]) == 0
    capsys.readouterr()
    assert main(["replay", str(state / "telemetry"), "--config", CONFIG, "--state-dir", str(state)]) == 0
    assert "OK: every attempt's cost matches the ledger" in capsys.readouterr().out


def test_run_summary_names_the_cause_of_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workload = tmp_path / "w.jsonl"
    workload.write_text('{"prompt": "hello", "model": "no-such-model"}\n{"prompt": "hello again"}\n')
    argv = ["run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(workload)]
    assert main(argv) == 1
    table = capsys.readouterr().out
    assert main([*argv, "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["errors"] == {"MODEL_NOT_FOUND": 1}
    assert "no provider serves model 'no-such-model'" in summary["error_causes"]["MODEL_NOT_FOUND"]
    assert "last MODEL_NOT_FOUND: " in table and "no-such-model" in table
    assert summary["state_dir"] == str((tmp_path / "s").resolve())


def test_a_jsonl_reusing_request_ids_runs_and_reruns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workload = tmp_path / "dup.jsonl"
    workload.write_text(
        '{"request_id": "same", "prompt": "write hello world"}\n'
        '{"request_id": "same", "prompt": "write hello world"}\n'
        '{"request_id": "same", "prompt": "something else"}\n'
    )
    argv = ["run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(workload), "--json"]
    for _ in range(2):
        assert main(argv) == 1
        summary = json.loads(capsys.readouterr().out)
        assert summary["succeeded"] == 2, "the identical pair is served (joined), the ledger never falls over"
        assert summary["errors"] == {"DUPLICATE_REQUEST": 1}, "a different request under an id in flight fails alone"
