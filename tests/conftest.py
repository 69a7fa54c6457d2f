"""Shared fixtures.

Core tests that must hold on both anyio backends take the `anyio_backend` fixture
(parametrised below); virtual-time tests use pytest-trio's `autojump_clock` with
`@pytest.mark.trio`. pytest-trio's trio_mode stays off, so the asyncio leg really
runs on asyncio. Hypothesis draws the same examples on every run (`derandomize`): a
red run on CI is a red run on every machine.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True)
settings.load_profile("deterministic")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever writes the user's own state directory (the default when no --state-dir is given)."""
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path_factory.mktemp("default-state")))
