"""The HTML report: axes, labels, a zoomed burn-down when spend is small, and the numbers under each plot."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from orchestrator.cli.main import main

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "simulated.yaml")


def test_the_report_has_axes_tables_and_says_what_failures_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", "--config", CONFIG, "--tasks", "12", "--chaos", "--state-dir", str(state), "--json"]) in (0, 1)
    out = tmp_path / "r.html"
    assert main(["report", "--config", CONFIG, "--state-dir", str(state), "--out", str(out)]) == 0
    capsys.readouterr()
    page = out.read_text()
    plots = page.count("<svg")
    assert plots >= 6 and page.count("<table>") == plots, "every plot has the table of its numbers"
    assert "time since" in page and re.search(r"\+\d+(\.\d)? (ms|s)", page), "line plots have a time axis with ticks"
    assert "Budget burn-down, zoomed" in page, "a spend that is a sliver of the limit gets a zoomed view"
    assert re.search(r"limit \$100", page) and re.search(r"spent \$0\.\d{6}", page)
    assert "Every request succeeded; these are attempts that failed" in page or "requests failed in the end" in page
    assert out.stat().st_mode & 0o777 == 0o600


def test_the_report_shows_what_the_online_learner_believes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", "--config", CONFIG, "--tasks", "3", "--state-dir", str(state), "--json"]) == 0
    (state / "routing").mkdir()
    (state / "routing" / "online.json").write_text(
        '{"version": 1, "tiers": ["tier_1", "tier_2"], "bands": 5, "arms": [[0, "tier_1", 2.0, 8.0], [0, "tier_2", 9.0, 1.0]]}'
    )
    out = tmp_path / "r.html"
    assert main(["report", "--config", CONFIG, "--state-dir", str(state), "--out", str(out)]) == 0
    capsys.readouterr()
    page = out.read_text()
    assert "Online learner" in page and "<td>tier_2</td><td>0.900</td><td>8</td>" in page


def test_the_report_shows_forecast_against_actual_per_tier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    common = ["--config", CONFIG, "--state-dir", str(state)]
    assert main(["run", *common, "--tasks", "4", "--json"]) == 0  # a history of token use for the forecast
    capsys.readouterr()
    assert main(["forecast", *common, "--tasks", "12", "--json"]) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(capsys.readouterr().out)
    assert main(["run", *common, "--tasks", "12", "--json"]) == 0
    out = tmp_path / "r.html"
    assert main(["report", *common, "--out", str(out), "--forecast", str(plan)]) == 0
    capsys.readouterr()
    page = out.read_text()
    assert "Forecast against actual per tier" in page
    forecast = orjson.loads(plan.read_bytes())
    total = re.search(r"<tr><td>total</td><td>(\d+)</td><td>\$([\d.]+)</td><td>\$([\d.]+)</td><td>(\d+)</td>"
                      r"<td>\$([\d.]+)</td><td>([\d.]+)</td></tr>", page)
    assert total is not None
    assert int(total.group(1)) == 12 and float(total.group(2)) == pytest.approx(forecast["expected_nd"] / 1e9, abs=1e-6)
    assert int(total.group(4)) == 12, "the answers logged after the forecast, not the history it learned from"
    assert float(total.group(5)) > 0 and 0.5 < float(total.group(6)) < 1.5


def test_a_file_that_is_no_forecast_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    assert main(["run", "--config", CONFIG, "--state-dir", str(state), "--tasks", "2", "--json"]) == 0
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"tiers": [{"tier": "tier_1"}]}')
    capsys.readouterr()
    code = main(["report", "--config", CONFIG, "--state-dir", str(state), "--out", str(tmp_path / "r.html"),
                 "--forecast", str(bogus)])
    err = capsys.readouterr().err
    assert code == 2 and "bogus.json: not a forecast written by `orchestrator forecast --json`" in err
    assert not (tmp_path / "r.html").exists()
