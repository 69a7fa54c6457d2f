"""Thousands of requests over real loopback HTTP while providers fail and one goes down."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from actors.errors import BudgetExceeded, OrchestratorError
from actors.messages import Request, Result
from orchestrator import Orchestrator, load_config
from orchestrator.config import Config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def chaos_config(tmp_path: Path, faults: list[dict[str, object]], **ledger: object) -> Config:
    """Providers failing fast and often, recovering fast.

    The last candidate is retried four times: with three tries, about 40 requests a
    run reach the last provider and each fails every try with probability 0.07³, so
    about one run in eighty failed a request by plain chance (measured: 2 in 80).
    """
    config = load_config(CONFIGS / "simulated.yaml", state_dir=tmp_path, environ={})
    engine = attrs.evolve(
        config.engine,
        retry=attrs.evolve(config.engine.retry, initial_s=0.005, cap_s=0.05, max_retries=4),
        breaker=attrs.evolve(config.engine.breaker, backoff_initial_s=0.01, backoff_cap_s=0.1, cooldown_s=0.3,
                             window_s=5.0, probe_timeout_s=2.0),
        providers=tuple(attrs.evolve(p, max_concurrency=64, timeout_s=2.0) for p in config.engine.providers),
        cache=attrs.evolve(config.engine.cache, enabled=False),
        ledger=attrs.evolve(config.engine.ledger, **ledger),
    )
    return attrs.evolve(config, engine=engine, simulator={"seed": 11, "faults": faults})


def workload(count: int) -> list[Request]:
    return [Request.prompt(f"Write a function number {i} that parses the input", max_tokens=200) for i in range(count)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_every_request_is_answered_through_failures_and_an_outage(tmp_path: Path) -> None:
    faults = [
        {"kind": "server_error", "rate": 0.18, "model": m} for m in ("qwen2.5-coder-32b-instruct", "gemini-2.5-flash", "glm-4.5", "gpt-5")
    ] + [
        {"kind": "rate_limit", "rate": 0.07, "retry_after": 0.01},
        {"kind": "drop", "rate": 0.05, "model": "gemini-2.5-flash"},
        {"kind": "server_error", "model": "qwen2.5-coder-32b-instruct", "schedule": [[0.2, 2.0]]},
    ]
    async with Orchestrator.start(chaos_config(tmp_path, faults)) as orch:
        outcomes = await orch.generate_batch(workload(2000), concurrency=200)
        budget = await orch.budget()
        stats = await _stats(orch.simulator_url)
    results = [o for o in outcomes if isinstance(o, Result)]
    assert len(results) == 2000, {type(o).__name__ for o in outcomes if not isinstance(o, Result)}
    failed_calls = sum(v for k, v in stats.items() if k.endswith((":server_error", ":rate_limit", ":drop")))
    calls = sum(v for k, v in stats.items() if k.endswith(":requests"))
    assert failed_calls / calls > 0.2, "the chaos really happened"
    assert any(len(r.attempts) > 1 for r in results)
    held = [a for r in results for a in r.attempts if a.held_nd]
    assert held, "dropped connections leave outcomes unknown"
    assert budget.outstanding == len(held), "every reservation is closed except those held as unknown"
    assert budget.reserved_nd == budget.unreconciled_nd, "what stays reserved is held, counted as spent"
    assert budget.settled_nd == sum(r.cost_nd for r in results)


@pytest.mark.anyio
async def test_five_thousand_concurrent_requests_never_pass_the_budget(tmp_path: Path) -> None:
    limit = 40_000_000
    faults = [{"kind": "server_error", "rate": 0.1}, {"kind": "drop", "rate": 0.03}]
    config = chaos_config(tmp_path, faults, limit_nd=limit)
    config = attrs.evolve(config, engine=attrs.evolve(
        config.engine,
        router=attrs.evolve(config.engine.router, selection=attrs.evolve(config.engine.router.selection, downgrade_on_budget=False)),
    ))
    async with Orchestrator.start(config) as orch:
        outcomes = await orch.generate_batch(workload(5000), concurrency=5000)
        budget = await orch.budget()
    results = [o for o in outcomes if isinstance(o, Result)]
    denied = [o for o in outcomes if isinstance(o, BudgetExceeded)]
    others = [o for o in outcomes if isinstance(o, OrchestratorError) and not isinstance(o, BudgetExceeded)]
    assert denied
    assert budget.settled_nd + budget.unreconciled_nd >= limit * 98 // 100, (
        "requests wait for reserved money to settle instead of being refused, so the budget is spent"
    )
    assert all("waited" not in str(o) for o in denied), "refused only when the money is truly gone"
    assert not others
    assert budget.settled_nd <= limit
    assert budget.settled_nd == sum(r.cost_nd for r in results)
    assert budget.settled_nd + budget.reserved_nd <= limit
    assert budget.reserved_nd == budget.unreconciled_nd, "what stays reserved is held, counted as spent"


async def _stats(url: str | None) -> dict[str, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/stats") as response:
        return await response.json()  # type: ignore[no-any-return]
