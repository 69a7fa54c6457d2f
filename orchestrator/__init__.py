"""The face of the orchestrator: the API, configuration, CLI, server and simulator.

    from orchestrator import Orchestrator, Request

    async with Orchestrator.start() as orch:
        result = await orch.generate(Request.prompt("Fix the typo in README"))
"""

from actors.errors import (
    BudgetExceeded,
    ConfigError,
    InvalidRequest,
    OrchestratorError,
    RateLimitExceeded,
    StrategyUnavailable,
)
from actors.messages import ArcPair, ArcTask, Attempt, CachePolicy, ChatMessage, Decision, Request, Result
from orchestrator.api import BlockingOrchestrator, Orchestrator
from orchestrator.config import Config, load_config

__all__ = [
    "ArcPair",
    "ArcTask",
    "Attempt",
    "BlockingOrchestrator",
    "BudgetExceeded",
    "CachePolicy",
    "ChatMessage",
    "Config",
    "ConfigError",
    "Decision",
    "InvalidRequest",
    "Orchestrator",
    "OrchestratorError",
    "RateLimitExceeded",
    "Request",
    "Result",
    "StrategyUnavailable",
    "load_config",
]
