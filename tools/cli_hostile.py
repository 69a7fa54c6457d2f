"""Hostile inputs for the `orchestrator` CLI: count tracebacks, hangs, wrong exit codes, nameless messages.

    python tools/cli_hostile.py [--jobs 8] [--verbose] [--root CHECKOUT]

Each case runs `python -m orchestrator.cli.main ARGS` in a subprocess with no API key
variables in its environment, a private state directory and a 30-second limit, and
expects: no "Traceback" on stderr, the documented exit code (2 for bad usage or
configuration) and the words that name the field, file or port at fault. Prints every
case that misses and the totals. tests/test_cli_errors.py holds the same kinds of case
in-process, as the regression test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 30.0
KEY_VARIABLES = ("QWEN_API_KEY", "GEMINI_API_KEY", "GLM_API_KEY", "OPENAI_API_KEY")


@attrs.frozen
class Case:
    argv: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Outcome:
    case: Case
    code: int | None
    err: str

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.err

    @property
    def hung(self) -> bool:
        return self.code is None

    @property
    def wrong_code(self) -> bool:
        return self.code is not None and self.code != self.case.code

    @property
    def nameless(self) -> bool:
        return not all(word in self.err for word in self.case.says)


def _configs(simulated: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Broken configurations: name -> (YAML text, words the message must hold)."""
    base = f"extends: {simulated}\nllm_routing:\n"
    return {
        "budget_1e30": (base + "  optimization:\n    budget_limit: 1e30\n", ("budget_limit",)),
        "budget_negative": (base + "  optimization:\n    budget_limit: -1\n", ("budget_limit",)),
        "budget_word": (base + "  optimization:\n    budget_limit: lots\n", ("budget_limit",)),
        "budget_inf": (base + "  optimization:\n    budget_limit: .inf\n", ("budget_limit",)),
        "daily_1e30": (base + "  budget:\n    daily_limit: 1e30\n", ("daily_limit",)),
        "tier_cap_1e30": (base + "  budget:\n    tier_caps: {tier_1: 1e30}\n", ("tier_caps.tier_1",)),
        "price_1e30": (base + "  model_tiers:\n    tier_1:\n      cost_per_million_tokens: 1e30\n",
                       ("cost_per_million_tokens",)),
        "timeout_negative": (base + "  model_tiers:\n    tier_1:\n      timeout: -5\n", ("tier_1.timeout",)),
        "retry_cap_negative": (base + "  retry:\n    cap_s: -1\n", ("retry.cap_s",)),
        "deadline_zero": (base + "  retry:\n    request_deadline_s: 0\n", ("request_deadline_s",)),
        "backoff_negative": (base + "  circuit:\n    backoff_initial_s: -1\n", ("backoff_initial_s",)),
        "cooldown_huge": (base + "  circuit:\n    cooldown_s: 1e30\n", ("cooldown_s",)),
        "lease_negative": (base + "  budget:\n    lease_s: -1\n", ("lease_s",)),
        "ttl_negative": (base + "  cache:\n    ttl_s: -1\n", ("ttl_s",)),
        "journal_inline_negative": (base + "  budget:\n    journal_inline_ms: -1\n", ("journal_inline_ms",)),
        "text_model_scope_unknown": (base + "  complexity_detection:\n    text_model_scope: code\n",
                                     ("text_model_scope",)),
        "unknown_key": (base + "  optimisation:\n    budget_limit: 5\n", ("optimisation",)),
        "bad_yaml": ("llm_routing: [unclosed\n", ("bad_yaml.yaml",)),
        "empty": ("", ("empty.yaml",)),
        "binary": ("\x00\x01\x02", ("binary.yaml",)),
        "list_top": ("- a\n- b\n", ("list_top.yaml",)),
        "extends_missing": ("extends: nowhere.yaml\nllm_routing: {}\n", ("nowhere.yaml",)),
        "endpoint_ftp": (base + "  model_tiers:\n    tier_1:\n      api_endpoint: ftp://x\n", ("api_endpoint",)),
        "endpoint_port": (base + "  model_tiers:\n    tier_1:\n      api_endpoint: http://127.0.0.1:99999/v1\n",
                          ("api_endpoint", "99999")),
    }


def cases(tmp: Path, root: Path = ROOT) -> list[Case]:
    simulated = root / "configs" / "simulated.yaml"
    out: list[Case] = []
    log = tmp / "log"
    log.mkdir()
    broken = _configs(simulated)
    for name, (text, _) in broken.items():
        (tmp / f"{name}.yaml").write_bytes(text.encode("latin-1") if name == "binary" else text.encode())
    (tmp / "a_directory.yaml").mkdir()
    broken["missing_file"] = ("", ("missing_file.yaml",))
    broken["a_directory"] = ("", ("a_directory.yaml",))
    commands = [
        ("run", "--config", "{cfg}", "--tasks", "1"),
        ("serve", "--config", "{cfg}", "--port", "0"),
        ("budget", "--config", "{cfg}"),
        ("budget", "reconcile", "--config", "{cfg}"),
        ("cache", "stats", "--config", "{cfg}"),
        ("calibrate", "--config", "{cfg}", "--tasks", "5"),
        ("stats", "--config", "{cfg}", "--telemetry", str(log)),
        ("costs", "--config", "{cfg}", "--telemetry", str(log)),
        ("replay", str(log), "--config", "{cfg}"),
        ("report", "--config", "{cfg}", "--telemetry", str(log), "--out", str(tmp / "r.html")),
        ("telemetry", "prune", "--config", "{cfg}", "--telemetry", str(log), "--older-than", "1d"),
    ]
    for name, (_, says) in broken.items():
        cfg = str(tmp / f"{name}.yaml")
        for command in commands:
            out.append(Case(tuple(a.replace("{cfg}", cfg) for a in command), 2, says))

    simulator_latency = tmp / "sim_latency.yaml"
    simulator_latency.write_text(f"extends: {simulated}\nllm_routing:\n  simulator:\n    latency_s: -1\n")
    for command in (("run", "--tasks", "1"), ("serve", "--port", "0"), ("simulator", "--port", "0")):
        out.append(Case((*command, "--config", str(simulator_latency)), 2, ("latency_s",)))

    nowhere = "http://127.0.0.1:9"
    unreachable = tmp / "unreachable.yaml"
    unreachable.write_text(
        f"extends: {simulated}\nllm_routing:\n  model_tiers:\n    tier_1:\n      api_endpoint: {nowhere}/v1\n"
    )
    out += [
        Case(("run", "--config", "llm_routing", "--tasks", "1"), 2, KEY_VARIABLES),
        Case(("serve", "--config", "llm_routing", "--port", "0"), 2, KEY_VARIABLES),
        Case(("run", "--config", str(root / "configs" / "llm_routing.yaml"), "--tasks", "1"), 2, KEY_VARIABLES),
        Case(("run", "--tasks", "1"), 2, ("ORCHESTRATOR_SIMULATOR_URL", nowhere),
             (("ORCHESTRATOR_SIMULATOR_URL", nowhere),)),
        Case(("serve", "--port", "0"), 2, ("ORCHESTRATOR_SIMULATOR_URL", nowhere),
             (("ORCHESTRATOR_SIMULATOR_URL", nowhere),)),
        Case(("run", "--tasks", "1"), 2, ("ORCHESTRATOR_SIMULATOR_URL",),
             (("ORCHESTRATOR_SIMULATOR_URL", "not a url"),)),
        Case(("run", "--config", str(unreachable), "--tasks", "1"), 2, ("tier_1", nowhere)),
        Case(("serve", "--config", str(unreachable), "--port", "0"), 2, ("tier_1", nowhere)),
    ]

    empty = tmp / "empty.jsonl"
    empty.write_text("")
    binary = tmp / "binary.jsonl"
    binary.write_bytes(b"\x00\xff\xfe")
    garbage = tmp / "garbage.csv"
    garbage.write_text("this,is\nnot,a table\n")
    a_file = tmp / "a_file"
    a_file.write_text("x")
    usage = [
        (("simulator", "--port", "99999"), ("--port", "99999")),
        (("simulator", "--port", "-1"), ("--port", "-1")),
        (("simulator", "--port", "65536"), ("--port", "65536")),
        (("simulator", "--port", "http"), ("--port",)),
        (("simulator", "--latency", "-1", "--port", "0"), ("--latency", "-1")),
        (("simulator", "--latency", "nan", "--port", "0"), ("--latency", "nan")),
        (("simulator", "--latency", "inf", "--port", "0"), ("--latency", "inf")),
        (("simulator", "--latency", "1e30", "--port", "0"), ("--latency",)),
        (("simulator", "--latency", "soon", "--port", "0"), ("--latency",)),
        (("simulator", "--seed", "x"), ("--seed",)),
        (("simulator", "--host", "no-such-host.invalid", "--port", "0"), ("no-such-host.invalid",)),
        (("simulator", "--host", "0.0.0.0", "--port", "0", "--config", str(tmp / "missing_file.yaml")),
         ("missing_file.yaml",)),
        (("serve", "--port", "-1"), ("--port", "-1")),
        (("serve", "--port", "99999"), ("--port", "99999")),
        (("serve", "--port", "eighty"), ("--port",)),
        (("serve", "--first-token", "-1", "--port", "0"), ("--first-token",)),
        (("serve", "--first-token", "0", "--port", "0"), ("--first-token",)),
        (("serve", "--first-token", "nan", "--port", "0"), ("--first-token",)),
        (("serve", "--first-token", "inf", "--port", "0"), ("--first-token",)),
        (("serve", "--first-token", "soon", "--port", "0"), ("--first-token",)),
        (("serve", "--host", "0.0.0.0", "--port", "0"), ("ORCHESTRATOR_SERVER_TOKEN",)),
        (("serve", "--host", "no-such-host.invalid", "--port", "0"), ("no-such-host.invalid",)),
        (("run", "--tasks", "0"), ("--tasks",)),
        (("run", "--tasks", "many"), ("--tasks",)),
        (("run", "--concurrency", "0"), ("--concurrency",)),
        (("run", "--requests", str(tmp / "nope.jsonl")), ("nope.jsonl",)),
        (("run", "--requests", str(log)), (str(log),)),
        (("run", "--requests", str(empty)), ("empty.jsonl",)),
        (("run", "--requests", str(binary)), ("binary.jsonl",)),
        (("run", "--replay", str(tmp / "nolog")), ("nolog",)),
        (("run", "--replay", str(a_file)), ("a_file",)),
        (("run", "--state-dir", "/proc/no-state-here", "--tasks", "1"), ("/proc/no-state-here",)),
        (("run", "--state-dir", str(a_file), "--tasks", "1"), ("a_file",)),
        (("run", "--telemetry", "/proc/no-log-here", "--tasks", "1"), ("/proc/no-log-here",)),
        (("budget", "reconcile", "--state-dir", "/proc/no-state-here"), ("/proc/no-state-here",)),
        (("budget", "--state-dir", str(a_file)), ("a_file",)),
        (("calibrate", "--tasks", "-1"), ("--tasks",)),
        (("calibrate", "--tasks", "0"), ("--tasks",)),
        (("calibrate", "--mix", "a,b,c,d"), ("--mix",)),
        (("calibrate", "--mix", ""), ("--mix",)),
        (("calibrate", "--mix", "nan,50,25,25"), ("--mix",)),
        (("calibrate", "--mix", "inf,-inf,50,50"), ("--mix",)),
        (("calibrate", "--workload", str(tmp / "nope.jsonl")), ("nope.jsonl",)),
        (("calibrate", "--workload", str(empty)), ("empty.jsonl",)),
        (("calibrate", "--tasks", "5", "--out", "/nonexistent/dir/c.yaml"), ("/nonexistent/dir/c.yaml",)),
        (("routing", "eval", "--data", str(tmp / "nope.csv")), ("nope.csv",)),
        (("routing", "eval", "--data", str(log)), (str(log),)),
        (("routing", "eval", "--data", str(garbage)), ("garbage.csv",)),
        (("routing", "eval", "--data", str(empty)), ("empty.jsonl",)),
        (("routing", "eval", "--data", str(garbage), "--folds", "0"), ("--folds",)),
        (("routing", "eval", "--data", str(garbage), "--folds", "-3"), ("--folds",)),
        (("routing", "fit", "--data", str(tmp / "nope.csv"), "--out", str(tmp / "m.npz")), ("nope.csv",)),
        (("routing", "subset", "--data", str(garbage), "--fold", "3/2", "--out", str(tmp / "s.jsonl")), ("--fold",)),
        (("routing", "history", "--telemetry", str(tmp / "nolog"), "--out", str(tmp / "h.jsonl")), ("nolog",)),
        (("routing", "history", "--telemetry", str(log), "--out", str(tmp / "h.jsonl"), "--success-at", "nan"),
         ("--success-at",)),
        (("routing", "requests", "--data", str(tmp / "nope.csv"), "--out", str(tmp / "q.jsonl")), ("nope.csv",)),
        (("telemetry", "prune", "--telemetry", str(log), "--older-than", "-5d"), ("--older-than",)),
        (("telemetry", "prune", "--telemetry", str(log), "--older-than", "soon"), ("--older-than",)),
        (("stats", "--telemetry", str(a_file)), ("a_file",)),
        (("costs", "--telemetry", str(log), "--csv", "/nonexistent/dir/c.csv"), ("/nonexistent/dir/c.csv",)),
        (("report", "--telemetry", str(log), "--out", "/nonexistent/dir/r.html"), ("/nonexistent/dir/r.html",)),
        (("replay", str(log), "--what-if", str(tmp / "nope.yaml")), ("nope.yaml",)),
        (("replay", str(log), "--what-if", str(tmp / "budget_1e30.yaml")), ("budget_limit",)),
    ]
    out += [Case(argv, 2, says) for argv, says in usage]
    return out


def run_case(case: Case, state: Path, root: Path = ROOT) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES and not k.startswith("ORCHESTRATOR_")}
    env.update({"ORCHESTRATOR_STATE_DIR": str(state), "PYTHONPATH": str(root), **dict(case.env)})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.main", *case.argv],
            env=env, cwd=root, capture_output=True, text=True, timeout=LIMIT_S, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Outcome(case, None, err)
    return Outcome(case, done.returncode, done.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="print stderr of every case that misses")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout to measure (default this one; e.g. an unpacked `git archive main`)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-hostile-") as name:
        tmp = Path(name)
        root = args.root.resolve()
        all_cases = cases(tmp, root)
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = list(pool.map(lambda ic: run_case(ic[1], tmp / f"state-{ic[0]}", root), enumerate(all_cases)))
    misses = [o for o in outcomes if o.traceback or o.hung or o.wrong_code or o.nameless]
    for o in misses:
        flags = [f for f in ("traceback", "hung", "wrong_code", "nameless") if getattr(o, f)]
        last = o.err.strip().splitlines()[-1:] or [""]
        print(f"{' '.join(flags):<28} exit {o.code} want {o.case.code}  {' '.join(o.case.argv)}")
        print(f"    {o.err if args.verbose else last[0]}"[:400])
    print(
        f"\n{len(outcomes)} cases: {sum(o.traceback for o in outcomes)} tracebacks, {sum(o.hung for o in outcomes)} hangs, "
        f"{sum(o.wrong_code for o in outcomes)} unexpected exit codes, "
        f"{sum(o.nameless for o in outcomes)} messages naming no field, file or port"
    )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
