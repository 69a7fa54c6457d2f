"""A normal (non-editable) install works from any directory: configs ship as package data.

`pip install --target` installs the project the way `pip install .` does (a wheel,
nothing pointing back at the checkout); the demo then runs from a directory outside
the checkout, with the dependencies this test environment already has.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_non_editable_install_runs_the_demo_from_elsewhere(tmp_path: Path) -> None:
    target = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert (target / "orchestrator" / "configs" / "simulated.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state")}
    where = subprocess.run(
        [sys.executable, "-c", "import orchestrator; print(orchestrator.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )
    assert where.stdout.strip().startswith(str(target)), "the installed copy, not the checkout"
    demo = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "run", "--tasks", "3"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=False, timeout=120,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "3 of 3 requests answered" in demo.stdout
    assert f"state                 {tmp_path / 'state'}" in demo.stdout
    named = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", "budget", "--config", "llm_routing", "--json"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=False, timeout=60,
    )
    assert named.returncode == 0, named.stderr[-2000:]
