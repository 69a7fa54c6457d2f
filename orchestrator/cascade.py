"""A verifier cascade: try the cheapest adequate tier, check the answer, pay more only on rejection.

    verified = await orch.generate_verified(request, verifier, max_depth=3)

The first stage goes where routing would send the request (or, with
`start_at_cheapest`, to the cheapest paid tier: with a good verifier that is the
cheapest policy of all); each rejected answer
escalates to the next paid tier up, until a verdict reaches `accept`, the depth is
spent, the next stage would pass `budget_nd`, or (with `min_success` and a learned
estimator) the next tier is predicted to fail too, so paying for it is unlikely to help. Every stage is an ordinary request
(priced by the ledger, cached, in telemetry) pinned to its tier, and every verdict
is fed back, so the online learner learns which tier a kind of request needs.

A verifier takes the Result and returns a bool or a score in [0, 1], synchronously
or as a coroutine; a synchronous one runs in a worker thread (it may run a sandboxed
program), and one that raises, or returns anything but a real number (numpy's
included), counts as a rejection naming it. Options that would change what is paid
for (a depth below 1, `accept` or `min_success` outside [0, 1], a negative budget) are
refused with InvalidRequest before any stage is bought.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import attrs

from actors.errors import BudgetExceeded, InvalidRequest, OrchestratorError
from actors.messages import Request, Result
from actors.settings import EngineSettings
from actors.validation import whole_number


class Generates(Protocol):
    """What a cascade asks of the orchestrator (a protocol, so that the two modules need not import each other)."""

    engine: EngineSettings

    def decide(self, request: Request) -> Any: ...

    async def generate(self, request: Request) -> Result: ...

    def feedback(self, request_id: str, score: float) -> None: ...

Verdict = bool | float
Verifier = Callable[[Result], Verdict | Awaitable[Verdict]]


@attrs.frozen
class Stage:
    tier: str
    request_id: str
    cost_nd: int
    verdict: float
    detail: str = ""


@attrs.frozen
class Verified:
    """The accepted result (or the last one tried), and every stage with its price and verdict."""

    result: Result | None
    accepted: bool
    stages: tuple[Stage, ...]

    @property
    def cost_nd(self) -> int:
        return sum(stage.cost_nd for stage in self.stages)


async def verify(verifier: Verifier, result: Result) -> tuple[float, str]:
    try:
        if inspect.iscoroutinefunction(verifier):
            verdict = await verifier(result)  # type: ignore[misc]
        else:
            verdict = await anyio.to_thread.run_sync(verifier, result)
            if inspect.isawaitable(verdict):
                verdict = await verdict
    except Exception as exc:  # noqa: BLE001 - a broken verifier rejects, it does not crash the cascade
        return 0.0, f"verifier failed: {type(exc).__name__}: {exc}"
    if not isinstance(verdict, numbers.Real) or not math.isfinite(verdict):
        return 0.0, f"verifier returned {verdict!r:.40}, not a bool or a number in [0, 1]"
    return min(1.0, max(0.0, float(verdict))), ""


def _check_options(max_depth: int, budget_nd: int | None, accept: float, min_success: float | None) -> None:
    """Options that would quietly change what is paid for (a negative depth slices the ladder from its end; a NaN
    `accept` is never reached, so every stage would be bought) are refused before any stage is."""
    whole_number("max_depth", max_depth, 1)
    if budget_nd is not None and (isinstance(budget_nd, bool) or not isinstance(budget_nd, int) or budget_nd < 0):
        raise InvalidRequest(f"budget_nd must be whole nanodollars from 0 (or None), got {budget_nd!r}")
    for name, value in (("accept", accept), ("min_success", min_success)):
        if value is None and name == "min_success":
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise InvalidRequest(f"{name} must be a number from 0 to 1, got {value!r}")


async def generate_verified(
    orch: Generates,
    request: Request,
    verifier: Verifier,
    *,
    max_depth: int = 3,
    budget_nd: int | None = None,
    accept: float = 0.5,
    start_at_cheapest: bool = False,
    min_success: float | None = None,
) -> Verified:
    _check_options(max_depth, budget_nd, accept, min_success)
    paid = [t.name for t in orch.engine.router.tiers if not t.local]
    if request.tier in paid:
        start = request.tier
    elif start_at_cheapest:
        start = paid[0]
    else:
        start = orch.decide(request).tier
    ladder = paid[paid.index(start):] if start in paid else [start]
    stages: list[Stage] = []
    last: Result | None = None
    for depth, tier in enumerate(ladder[:max_depth]):
        spent = sum(s.cost_nd for s in stages)
        staged = attrs.evolve(request, request_id=f"{request.request_id}/stage{depth}", tier=tier, substitute=False)
        decision = orch.decide(staged)
        if budget_nd is not None and spent + decision.estimated_cost_nd > budget_nd:
            break
        predicted = decision.features.get(f"p_success:{decision.model}")
        if depth and min_success is not None and predicted is not None and predicted < min_success:
            stages.append(Stage(tier, staged.request_id, 0, 0.0, f"skipped: predicted success {predicted:.2f}"))
            break
        try:
            result = await orch.generate(staged)
        except BudgetExceeded:
            break
        except OrchestratorError as exc:
            stages.append(Stage(tier, staged.request_id, 0, 0.0, f"{exc.code}: {exc}"))
            continue
        verdict, detail = await verify(verifier, result)
        orch.feedback(staged.request_id, verdict)
        stages.append(Stage(result.tier, staged.request_id, result.cost_nd, verdict, detail))
        last = result
        if verdict >= accept:
            return Verified(result, True, tuple(stages))
    return Verified(last, False, tuple(stages))
