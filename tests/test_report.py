"""The HTML report: axes, labels, a zoomed burn-down when spend is small, and the numbers under each plot."""

from __future__ import annotations

import re
from pathlib import Path

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
