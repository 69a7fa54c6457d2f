"""The typed errors a caller can see, each with a stable code and HTTP status.

Codes follow the source documents: BUDGET_EXCEEDED (402), RATE_LIMIT_EXCEEDED (429),
STRATEGY_UNAVAILABLE (503). The server and the CLI map these to responses and exit
codes, so the code and status live on the class rather than at each raise site.
Like attrs' exceptions, each also subclasses the nearest builtin (`InvalidRequest`
and `ConfigError` are `ValueError`s, `AskTimeout` a `TimeoutError`), so callers can
catch them with what they already know.
"""

from __future__ import annotations


class DeliberateCrash(Exception):
    """An actor crashing on purpose for its supervisor to act on (a provider's circuit breaking after consecutive
    failures): an expected event whose cause is the whole story, so its supervisor logs it in one line, without a
    stack that would only show the actor's own loop."""


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    code: str = "INTERNAL_ERROR"
    status: int = 500


class CodecError(OrchestratorError, ValueError):
    """Bytes that are not a valid encoded message: unknown tag, truncated, wrong type."""

    code = "CODEC_ERROR"
    status = 400


class AskTimeout(OrchestratorError, TimeoutError):
    """An `ask` got no reply within its deadline."""

    code = "ASK_TIMEOUT"
    status = 504


class ActorStopped(OrchestratorError):
    """The actor asked has crashed or stopped before it replied."""

    code = "ACTOR_STOPPED"
    status = 503


class HandlerFailed(OrchestratorError):
    """An actor could not handle one message (a bug or an unexpected input); it goes on serving."""

    code = "HANDLER_FAILED"
    status = 500


class ConfigError(OrchestratorError, ValueError):
    """A configuration that cannot be used; the message names the file and key path."""

    code = "CONFIG_ERROR"
    status = 400


class InvalidRequest(OrchestratorError, ValueError):
    """A request that can never succeed as given (malformed task, oversized prompt...)."""

    code = "INVALID_REQUEST"
    status = 400


class UnknownModel(InvalidRequest):
    """A pinned tier or model that the configuration does not have."""

    code = "MODEL_NOT_FOUND"
    status = 404


class DuplicateRequest(InvalidRequest):
    """A request id that is already in flight with a different request; refused for this caller alone."""

    code = "DUPLICATE_REQUEST"
    status = 409


class NotRecorded(OrchestratorError):
    """A deterministic re-run met a request the recorded log does not hold."""

    code = "NOT_RECORDED"
    status = 404


class BudgetExceeded(OrchestratorError):
    """The ledger refused to reserve the worst-case cost; no provider was called."""

    code = "BUDGET_EXCEEDED"
    status = 402

    def __init__(self, message: str, *, remaining_nd: int = 0, needed_nd: int = 0) -> None:
        super().__init__(message)
        self.remaining_nd = remaining_nd
        self.needed_nd = needed_nd


class RateLimitExceeded(OrchestratorError):
    """Every candidate provider is rate-limited and the request may not wait longer."""

    code = "RATE_LIMIT_EXCEEDED"
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StrategyUnavailable(OrchestratorError):
    """No provider in the request's fallback chain can serve it now.

    `retry_after`: seconds until the first of its providers may take work again (a
    circuit's cooldown ends, a restart is due), when every one is out.
    """

    code = "STRATEGY_UNAVAILABLE"
    status = 503

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LedgerError(OrchestratorError):
    """A ledger operation that is not allowed (negative amount, unknown id, settle after release)."""

    code = "LEDGER_ERROR"
    status = 409


class LedgerUnavailable(OrchestratorError):
    """The ledger cannot decide now (restarting, or its store unreachable); nothing was reserved."""

    code = "LEDGER_UNAVAILABLE"
    status = 503


class JournalError(OrchestratorError):
    """A journal or lock file that cannot be used; names the file and what is wrong."""

    code = "JOURNAL_ERROR"
    status = 500
