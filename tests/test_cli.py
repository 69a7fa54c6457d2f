"""The console script as a user runs it: output, files and exit codes."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml

from orchestrator.cli.main import main

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "simulated.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_run_then_read_the_log_back_with_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    code, out = run(capsys, "run", "--config", CONFIG, "--state-dir", state, "--tasks", "12", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["succeeded"] == 12 and summary["cost_nd"] > 0
    assert summary["top_tier_cost_nd"] > summary["cost_nd"]

    code, out = run(capsys, "run", "--config", CONFIG, "--state-dir", state, "--tasks", "12")
    assert code == 0 and "12 hits" in out and "total cost            $0.000000" in out

    code, out = run(capsys, "budget", "--config", CONFIG, "--state-dir", state, "--json")
    assert code == 0 and json.loads(out)["settled_nd"] == summary["cost_nd"]

    code, out = run(capsys, "costs", "--config", CONFIG, "--state-dir", state, "--period", "all", "--by", "model",
                    "--csv", str(tmp_path / "costs.csv"))
    assert code == 0 and ("gemini-2.5-flash" in out or "qwen2.5-coder-32b-instruct" in out)
    assert (tmp_path / "costs.csv").read_text().startswith("period,model,requests")

    code, out = run(capsys, "replay", "--base-config", CONFIG, "--state-dir", state)
    assert code == 0 and "OK: every attempt's cost matches the ledger" in out

    code, out = run(capsys, "report", "--config", CONFIG, "--state-dir", state, "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert code == 0 and "<svg" in page and "Budget burn-down" in page and "<script" not in page

    code, out = run(capsys, "stats", "--config", CONFIG, "--state-dir", state)
    assert code == 0 and "success rate" in out


def test_a_jsonl_workload_runs_and_a_bad_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "w.jsonl"
    good.write_text(
        '{"prompt": "Fix the typo in README.md"}\n'
        "# comments and blank lines are skipped\n\n"
        '{"messages": [{"role": "user", "content": "Design a distributed cache"}], "max_tokens": 64, "tier": "tier_2"}\n'
        '{"task_id": "t", "train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [[[3, 4]]]}\n'
    )
    code, out = run(capsys, "run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(good), "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": 5}\n')
    assert main(["run", "--config", CONFIG, "--state-dir", str(tmp_path / "s"), "--requests", str(bad)]) == 2
    assert "bad.jsonl:2: prompt must be a string" in capsys.readouterr().err


def test_a_broken_config_exits_2_with_the_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(CONFIG).read_text().replace("parallel_requests: 16", "parallel_requests: many"))
    (tmp_path / "llm_routing.yaml").write_text((Path(CONFIG).parent / "llm_routing.yaml").read_text())
    assert main(["run", "--config", str(broken), "--state-dir", str(tmp_path / "s")]) == 2
    assert 'optimization.parallel_requests: must be an integer between 1 and 4096, got "many"' in capsys.readouterr().err


def test_an_exhausted_budget_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(
        f"extends: {CONFIG}\nllm_routing:\n  optimization:\n    budget_limit: 0.000000001\n"
        "  routing:\n    downgrade_on_budget: false\n"
    )
    assert main(["run", "--config", str(tiny), "--state-dir", str(tmp_path / "s"), "--tasks", "3"]) == 3
    assert "BUDGET_EXCEEDED 3" in capsys.readouterr().out


def test_a_run_whose_calls_end_unknown_says_what_it_holds_and_the_budget_agrees(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every answer malformed: the calls were sent and may be billed, so each attempt's money is held; a total cost of
    $0 alone would tell the user the run cost nothing."""
    broken = tmp_path / "malformed.yaml"
    broken.write_text(f"extends: {CONFIG}\nllm_routing:\n  simulator:\n    faults:\n      - kind: malformed\n        rate: 1.0\n")
    state = str(tmp_path / "s")
    code, out = run(capsys, "run", "--config", str(broken), "--state-dir", state, "--tasks", "2", "--json")
    summary = json.loads(out)
    assert code == 1 and summary["succeeded"] == 0 and summary["cost_nd"] == 0
    assert summary["held_nd"] > 0 and summary["outstanding"] >= 2
    code, out = run(capsys, "budget", "--config", str(broken), "--state-dir", state, "--json")
    assert json.loads(out)["unreconciled_nd"] == summary["held_nd"]
    code, out = run(capsys, "run", "--config", str(broken), "--state-dir", state, "--tasks", "1")
    assert f"held                  ${summary['held_nd'] / 1e9:.6f}" not in out, "the second run holds more"
    assert "held                  $" in out and "orchestrator budget reconcile" in out
    code, out = run(capsys, "run", "--config", CONFIG, "--state-dir", str(tmp_path / "clean"), "--tasks", "2")
    assert code == 0 and "held   " not in out
    held = json.loads(run(capsys, "budget", "--config", str(broken), "--state-dir", state, "--json")[1])["unreconciled_nd"]
    code, out = run(capsys, "budget", "reconcile", "--config", str(broken), "--state-dir", state, "--release")
    assert code == 0 and out.startswith("reconciled ") and f"held reservations: ${held / 1e9:.6f} released" in out
    after = json.loads(run(capsys, "budget", "--config", str(broken), "--state-dir", state, "--json")[1])
    assert (after["unreconciled_nd"], after["reserved_nd"], after["settled_nd"]) == (0, 0, 0), "released: nothing spent"


def test_budget_says_when_a_running_orchestrator_holds_the_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its open reservations are then mostly calls in flight, not held ones."""
    from actors.ledger.journal import FileStorage

    state = tmp_path / "s"
    code, out = run(capsys, "budget", "--config", CONFIG, "--state-dir", str(state), "--json")
    assert code == 0 and json.loads(out)["running_pid"] is None
    holder = FileStorage(state / "ledger" / "journal", state)
    try:
        code, out = run(capsys, "budget", "--config", CONFIG, "--state-dir", str(state), "--json")
        assert code == 0 and json.loads(out)["running_pid"] == os.getpid()
        code, out = run(capsys, "budget", "--config", CONFIG, "--state-dir", str(state))
        assert f"a running orchestrator (pid {os.getpid()}) holds this ledger" in out
    finally:
        holder.close()


def test_calibrate_prints_thresholds_and_the_achieved_mix(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["calibrate", "--config", CONFIG, "--tasks", "200", "--mix", "50,30,15,5"])
    captured = capsys.readouterr()
    assert code == 0 and "achieved" in captured.err and "50.0%" in captured.err
    assert "thresholds:" in captured.out and "achieved" not in captured.out, "stdout is the YAML alone"
    assert yaml.safe_load(captured.out)["llm_routing"]["complexity_detection"]["thresholds"]


def test_budget_reset_needs_confirmation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["budget", "reset", "--config", CONFIG, "--state-dir", str(tmp_path)]) == 2
    code, out = run(capsys, "budget", "reset", "--confirm", "--config", CONFIG, "--state-dir", str(tmp_path))
    assert code == 0 and "journaled operations" in out


def test_cache_verify_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    main(["run", "--config", CONFIG, "--state-dir", state, "--tasks", "2", "--json"])
    capsys.readouterr()
    code, out = run(capsys, "cache", "verify", "--config", CONFIG, "--state-dir", state)
    assert code == 0 and "OK" in out
    cache_file = Path(state) / "cache" / "responses.sqlite3"
    cache_file.write_bytes(b"garbage" * 1000)
    code, out = run(capsys, "cache", "verify", "--config", CONFIG, "--state-dir", state)
    assert code == 1 and "DAMAGED" in out
    code, out = run(capsys, "cache", "clear", "--config", CONFIG, "--state-dir", state)
    assert code == 0 and not cache_file.exists()


def test_a_costs_csv_shows_a_caller_named_formula_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A task kind is the caller's to name (any HTTP client's `x_orchestrator.task_kind`): written as it came, a
    spreadsheet opening the CSV would run it."""
    workload = tmp_path / "w.jsonl"
    workload.write_text(json.dumps({"prompt": "fix the typo", "task_kind": '=HYPERLINK("http://x.invalid","y")'}) + "\n")
    state = str(tmp_path / "state")
    assert main(["run", "--config", CONFIG, "--state-dir", state, "--requests", str(workload), "--json"]) == 0
    out = tmp_path / "costs.csv"
    assert main(["costs", "--config", CONFIG, "--state-dir", state, "--period", "all", "--by", "task_type",
                 "--csv", str(out)]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["task_type"] for r in rows] == ['\'=HYPERLINK("http://x.invalid","y")']
    assert int(rows[0]["requests"]) == 1


def test_answers_replayed_from_tiers_this_config_lacks_still_count_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying the demo's log under the many-model config: 4 of 5 answered, and every tier row said 0."""
    recorded = str(tmp_path / "recorded")
    assert main(["run", "--config", CONFIG, "--state-dir", recorded, "--tasks", "5", "--json"]) == 0
    capsys.readouterr()
    many = str(Path(CONFIG).parent / "many_models.yaml")
    main(["run", "--config", many, "--state-dir", str(tmp_path / "again"), "--tasks", "5", "--json",
          "--replay", str(Path(recorded) / "telemetry")])
    summary = json.loads(capsys.readouterr().out)
    assert summary["replayed"] == summary["succeeded"] > 0
    assert sum(row.get("requests", 0) for row in summary["tiers"].values()) == summary["succeeded"]
    assert any(row["label"] == "(replayed: not in this config)" for row in summary["tiers"].values())
