"""`orchestrator doctor --probe`: one real call per provider, through the whole engine.

Each provider gets a one-token request pinned to it (no substitute, no cache), so the
call is reserved, priced, settled and logged like any other: what it cost shows in
`orchestrator budget`. It answers the questions a TCP probe cannot: is the key
accepted, is the model name right, does the provider answer in time.
"""

from __future__ import annotations

import os

import attrs

from actors.errors import OrchestratorError
from actors.messages import CachePolicy, Request
from actors.money import format_usd
from orchestrator.api import Orchestrator
from orchestrator.config import Config

PROBE_PROMPT = "Reply with the word: ok"


@attrs.frozen
class Probed:
    provider: str
    ok: bool
    detail: str
    cost_nd: int = 0


async def probe_providers(config: Config, providers: list[str]) -> list[Probed]:
    found = []
    async with Orchestrator.start(config) as orch:
        for name in providers:
            request = Request.prompt(PROBE_PROMPT, model=name, max_tokens=1, cache=CachePolicy.OFF,
                                     request_id=f"doctor-probe-{name}-{os.urandom(4).hex()}")
            try:
                result = await orch.generate(request)
            except OrchestratorError as exc:
                found.append(Probed(name, False, f"{exc.code}: {exc}"))
                continue
            found.append(Probed(name, True, f"answered in {result.latency_s * 1000:.0f} ms for "
                                            f"{format_usd(result.cost_nd, 9)} ({result.model})", result.cost_nd))
    return found
