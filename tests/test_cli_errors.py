"""Every expected failure of the CLI is one line on stderr and the documented exit code.

Table-driven over the bad inputs a new user tries (issues 11 and 25); each row names the
exit status and the words the user must read.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from actors.errors import ConfigError
from orchestrator.cli.main import main
from orchestrator.cli.preflight import preflight
from orchestrator.config import load_config

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
    no_model = tmp_path / "no_model.yaml"
    no_model.write_text(f"extends: {CONFIG}\nllm_routing:\n  complexity_detection:\n    text_model: nowhere.npz\n")
    cases = [
        (("run", "--config", str(no_model), "--state-dir", str(tmp_path / "s"), "--tasks", "1"),
         "nowhere.npz: no such file"),
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
        (("run", "--config", CONFIG, "--state-dir", str(latin), "--tasks", "1"),
         f"state directory {latin} is a file, not a directory"),
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


# -- issue 25: no traceback, a documented exit code and the name of what is wrong -----------------------

KEY_VARIABLES = ("QWEN_API_KEY", "GEMINI_API_KEY", "GLM_API_KEY", "OPENAI_API_KEY")
SIMULATOR_URL = "ORCHESTRATOR_SIMULATOR_URL"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key variables, a private state directory, broken configs in tmp_path, and nothing may start.

    A command that should have refused its input but went on to serve or to route reaches a
    stub that fails the case, instead of serving forever.
    """
    for name in (*KEY_VARIABLES, SIMULATOR_URL, "ORCHESTRATOR_SERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))

    def started(*_: object, **__: object) -> None:
        raise AssertionError("started: the bad input was not refused")

    async def served(*_: object, **__: object) -> None:
        started()

    monkeypatch.setattr("orchestrator.cli.simulator.run_forever", started)
    monkeypatch.setattr("orchestrator.cli.serve._serve", served)
    monkeypatch.setattr("orchestrator.cli.run._run", served)
    over = f"extends: {CONFIG}\nllm_routing:\n"
    configs = {
        "budget_1e30": over + "  optimization:\n    budget_limit: 1e30\n",
        "daily_1e30": over + "  budget:\n    daily_limit: 1e30\n",
        "tier_cap_1e30": over + "  budget:\n    tier_caps: {tier_1: 1e30}\n",
        "price_1e30": over + "  model_tiers:\n    tier_1:\n      cost_per_million_tokens: 1e30\n",
        "cooldown_1e30": over + "  circuit:\n    cooldown_s: 1e30\n",
        "endpoint_port": over + "  model_tiers:\n    tier_1:\n      api_endpoint: http://127.0.0.1:99999/v1\n",
        "unreachable": over + f"  model_tiers:\n    tier_1:\n      api_endpoint: http://127.0.0.1:{closed_port()}/v1\n",
    }
    for name, text in configs.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    (tmp_path / "empty.jsonl").write_text("")
    return tmp_path


REFUSED = [
    # (argv, environment, words the one line must hold); {tmp} is the fixture's directory
    (("simulator", "--port", "99999"), {}, ("--port", "99999 is out of range: from 0 to 65535")),
    (("simulator", "--port", "-1"), {}, ("--port", "-1 is out of range")),
    (("simulator", "--port", "0", "--latency", "-1"), {}, ("--latency", "-1 is out of range")),
    (("simulator", "--port", "0", "--latency", "nan"), {}, ("--latency", "nan is out of range")),
    (("simulator", "--port", "0", "--latency", "1e30"), {}, ("--latency", "1e30 is out of range")),
    (("serve", "--port", "0", "--first-token", "nan"), {}, ("--first-token", "nan is out of range")),
    (("serve", "--port", "0", "--first-token", "inf"), {}, ("--first-token", "inf is out of range")),
    (("calibrate", "--config", CONFIG, "--tasks", "0"), {}, ("--tasks", "0 is out of range")),
    (("calibrate", "--config", CONFIG, "--mix", "nan,50,25,25"), {}, ("--mix",)),
    (("calibrate", "--config", CONFIG, "--workload", "{tmp}/empty.jsonl"), {}, ("empty.jsonl: no requests",)),
    (("routing", "eval", "--data", "{tmp}/none.csv", "--folds", "0"), {}, ("--folds", "0 is out of range")),
    (("routing", "eval", "--data", "{tmp}/none.csv", "--repeats", "0"), {}, ("--repeats", "0 is out of range")),
    (("routing", "history", "--telemetry", "{tmp}", "--out", "{tmp}/h.jsonl", "--success-at", "nan"), {},
     ("--success-at",)),
    (("run", "--config", CONFIG, "--requests", "{tmp}/empty.jsonl"), {}, ("empty.jsonl: no requests",)),
    (("budget", "reconcile", "--config", CONFIG, "--state-dir", "/proc/orchestrator-no-state"), {},
     ("/proc/orchestrator-no-state",)),
    (("run", "--config", "{tmp}/budget_1e30.yaml"), {},
     ("budget_1e30.yaml:4", "optimization.budget_limit", "between 0 and 1000000000")),
    (("serve", "--config", "{tmp}/budget_1e30.yaml", "--port", "0"), {}, ("optimization.budget_limit",)),
    (("budget", "--config", "{tmp}/daily_1e30.yaml"), {}, ("budget.daily_limit",)),
    (("budget", "--config", "{tmp}/tier_cap_1e30.yaml"), {}, ("budget.tier_caps.tier_1",)),
    (("run", "--config", "{tmp}/price_1e30.yaml"), {}, ("tier_1.cost_per_million_tokens",)),
    (("run", "--config", "{tmp}/cooldown_1e30.yaml"), {}, ("circuit.cooldown_s",)),
    (("replay", "{tmp}", "--config", CONFIG, "--what-if", "{tmp}/budget_1e30.yaml"), {}, ("budget_limit",)),
    (("run", "--config", "{tmp}/endpoint_port.yaml"), {}, ("tier_1.api_endpoint", "out of range")),
    (("run", "--config", "llm_routing"), {}, ("llm_routing.yaml", *KEY_VARIABLES)),
    (("serve", "--config", "llm_routing", "--port", "0"), {}, ("llm_routing.yaml", *KEY_VARIABLES)),
    (("run", "--config", "llm_routing"), {"QWEN_API_KEY": "sk-never-print-me"},
     ("tier_2 (Gemini 2.5 Flash) needs GEMINI_API_KEY", "GLM_API_KEY", "OPENAI_API_KEY")),
    (("run", "--config", CONFIG), {SIMULATOR_URL: "http://127.0.0.1:{closed}"},
     (SIMULATOR_URL, "http://127.0.0.1:{closed}", "unreachable")),
    (("serve", "--config", CONFIG, "--port", "0"), {SIMULATOR_URL: "http://127.0.0.1:{closed}"},
     (SIMULATOR_URL, "unreachable")),
    (("run", "--config", CONFIG), {SIMULATOR_URL: "127.0.0.1:8765"}, (SIMULATOR_URL, "127.0.0.1:8765")),
    (("run", "--config", "{tmp}/unreachable.yaml"), {}, ("tier_1 (Qwen2.5-Coder)", "http://127.0.0.1:", "unreachable")),
    (("serve", "--config", "{tmp}/unreachable.yaml", "--port", "0"), {}, ("tier_1 (Qwen2.5-Coder)", "unreachable")),
]


@pytest.mark.parametrize(("argv", "env", "says"), REFUSED, ids=[" ".join(row[0])[:60] for row in REFUSED])
def test_hostile_input_is_refused_in_one_line_naming_it(
    hostile: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    env: dict[str, str],
    says: tuple[str, ...],
) -> None:
    closed = str(closed_port())

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(hostile)).replace("{closed}", closed)

    for name, value in env.items():
        monkeypatch.setenv(name, fill(value))
    code, err = cli(capsys, *(fill(a) for a in argv))
    assert "Traceback" not in err and "started: the bad input was not refused" not in err, err
    assert code == 2, err
    for words in says:
        assert fill(words) in err, (words, err)
    lines = [line for line in err.splitlines() if line.startswith("orchestrator")]
    assert len(lines) == 1, err
    assert "sk-never-print-me" not in err


def test_an_unexpected_error_is_one_line_exit_1_and_debug_keeps_its_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: object) -> int:
        raise ExceptionGroup("a task group", [RuntimeError("a bug somewhere")])

    monkeypatch.setattr("orchestrator.cli.budget.run", broken)
    code, err = cli(capsys, "budget", "--config", CONFIG)
    assert (code, "Traceback" in err) == (1, False), err
    assert "unexpected error: RuntimeError: a bug somewhere (rerun with --debug" in err
    code, err = cli(capsys, "--debug", "budget", "--config", CONFIG)
    assert code == 1 and "Traceback" in err and "a bug somewhere" in err


def test_the_exit_codes_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert exit_.value.code == 0
    for words in ("0 success", "1 a request, check or the run itself failed", "2 bad usage or configuration",
                  "3 budget exhausted", "130 interrupted", "--debug"):
        assert words in out, words


def _tier_1_real(tmp_path: Path, endpoint: str, *, optional: bool, name: str = "real.yaml") -> Path:
    """The simulated config with tier_1 pointed at a real endpoint that needs $ACME_KEY."""
    path = tmp_path / name
    path.write_text(
        f"extends: {CONFIG}\nllm_routing:\n  model_tiers:\n    tier_1:\n      api_endpoint: {endpoint}\n"
        f"      api_key_env: ACME_KEY\n      optional: {'true' if optional else 'false'}\n"
    )
    return path


def test_an_optional_tier_without_its_key_or_server_is_left_out_with_a_warning(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        listening = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        config = load_config(_tier_1_real(tmp_path, listening, optional=True), environ={})
        warnings: list[str] = []
        kept = preflight(config, {"ACME_KEY": "sk-secret"}, warn=warnings.append)
        assert (kept, warnings) == (config, [])
        left = preflight(config, {}, warn=warnings.append)
        assert warnings == ["tier_1 (Qwen2.5-Coder) left out (optional): ACME_KEY is not set"]
    assert [t.name for t in left.engine.router.tiers] == ["tier_2", "tier_3", "tier_4", "fallback"]
    assert "Qwen2.5-Coder" not in {p.name for p in left.engine.providers}
    warnings.clear()
    closed = load_config(_tier_1_real(tmp_path, f"http://127.0.0.1:{closed_port()}/v1", optional=True), environ={})
    preflight(closed, {"ACME_KEY": "sk-secret"}, warn=warnings.append)
    assert len(warnings) == 1 and "unreachable (connection refused)" in warnings[0] and "sk-secret" not in warnings[0]


def test_a_required_tier_without_its_key_is_refused_before_any_probe(tmp_path: Path) -> None:
    config = load_config(_tier_1_real(tmp_path, "https://api.example.invalid/v1", optional=False), environ={})
    with pytest.raises(ConfigError, match=r"real\.yaml: API keys missing .*tier_1 \(Qwen2\.5-Coder\) needs ACME_KEY"):
        preflight(config, {}, timeout_s=0.001)
    with pytest.raises(ConfigError, match=r"needs ACME_KEY \(ACME_KEY holds a control character \(U\+000A\) at character 9"):
        preflight(config, {"ACME_KEY": "sk-secret\n"}, timeout_s=0.001)  # set, but no header can carry it


def test_no_paid_tier_left_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "all_optional.yaml"
    tiers = "".join(
        f"    {name}:\n      api_endpoint: http://127.0.0.1:{closed_port()}/v1\n      optional: true\n"
        for name in ("tier_1", "tier_2", "tier_3", "tier_4")
    )
    path.write_text(f"extends: {CONFIG}\nllm_routing:\n  model_tiers:\n{tiers}")
    with pytest.raises(ConfigError, match="no paid tier is left"):
        preflight(load_config(path, environ={}), {}, warn=lambda _: None)


def test_run_goes_on_without_an_optional_tier_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    config = _tier_1_real(tmp_path, "https://api.example.invalid/v1", optional=True)
    code, err = cli(capsys, "run", "--config", str(config), "--state-dir", str(tmp_path / "s"), "--tasks", "3", "--json")
    assert code == 0, err
    assert "warning: tier_1 (Qwen2.5-Coder) left out (optional): ACME_KEY is not set" in err


def test_an_output_that_would_replace_its_own_input_is_refused_and_the_input_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`calibrate --config mine.yaml --out mine.yaml` left a config extending itself in place of the user's;
    `routing subset --data t.csv --out t.csv` left one fold of the table in its place."""
    base = tmp_path / "base.yaml"
    base.write_text(f"extends: {CONFIG}\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: base.yaml\n")
    table = tmp_path / "t.csv"
    table.write_text("prompt,a,b\n" + "".join(f"p{i},{i % 2},1\n" for i in range(12)))
    before = mine.read_bytes(), base.read_bytes(), table.read_bytes()
    cases = [
        (("calibrate", "--config", str(mine), "--tasks", "5", "--mix", "60,25,10,5", "--out", str(mine)),
         f"--out {mine} is {mine}, which the calibrated config would extend"),
        (("calibrate", "--config", str(mine), "--tasks", "5", "--mix", "60,25,10,5", "--out", str(base)),
         f"--out {base} is {base}, which the calibrated config would extend"),
        (("routing", "subset", "--data", str(table), "--fold", "0/2", "--out", str(tmp_path / "." / "t.csv")),
         "routing subset: --out"),
        (("routing", "requests", "--data", str(table), "--out", str(table)), "is the table --data reads"),
        (("routing", "fit", "--data", str(table), "--out", str(table)), "routing fit: --out"),
        (("routing", "eval", "--data", str(table), "--folds", "2", "--plot", str(table)), "routing eval: --plot"),
    ]
    for argv, says in cases:
        code, err = cli(capsys, *argv)
        assert code == 2 and says in err, (argv, err)
    assert (mine.read_bytes(), base.read_bytes(), table.read_bytes()) == before
