"""The messages every part of the engine speaks: requests, decisions, attempts, results.

All are frozen, slotted attrs classes with a stable wire tag (see `actors.codec`), so
the same bytes can cross an actor boundary, sit in the telemetry log and be replayed.
Tags 1-99 belong here; each actor package keeps its own messages in its own range
(ledger 100-149, providers 150-199, cache 200-249, telemetry 250-399).
"""

from __future__ import annotations

import enum
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from actors.codec import message
from actors.errors import InvalidRequest
from actors.money import format_usd
from actors.validation import validate_request

Grid = tuple[tuple[int, ...], ...]


class CachePolicy(str, enum.Enum):
    """How a request may use the response cache."""

    USE = "use"
    REFRESH = "refresh"
    OFF = "off"


class FailureKind(str, enum.Enum):
    """Why a provider call failed; each kind has its own retry and fallback action."""

    UNAVAILABLE = "unavailable"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    CONTEXT_LENGTH = "context_length"
    INVALID_REQUEST = "invalid_request"
    AUTH = "auth"
    SERVER_ERROR = "server_error"
    MALFORMED_RESPONSE = "malformed_response"
    UNKNOWN = "unknown"


def new_request_id() -> str:
    """128 random bits as hex: a uuid4's form at a fifth of its cost, paid by every request a server parses."""
    return os.urandom(16).hex()


@message(1)
class ChatMessage:
    role: str
    content: str


@message(2)
class ArcPair:
    input: Grid
    output: Grid


@message(3, cache_hash=True)
class ArcTask:
    """An ARC task: demonstration pairs and the test inputs a program must transform."""

    task_id: str
    train: tuple[ArcPair, ...]
    test: tuple[Grid, ...] = ()

    @classmethod
    def from_lists(cls, task_id: str, train: object, test: object = ()) -> ArcTask:
        """Build from the JSON shape ARC files use: [{"input": [[..]], "output": [[..]]}] (numpy rows and integer
        cells will do). A shape that is not that raises InvalidRequest naming the task and the place: a cell
        of 1.5 was cut to 1, one of "3" read as 3, a pair without its output a bare KeyError."""
        where = f"ARC task {task_id}"
        pairs = []
        for index, pair in enumerate(_items(train, f"{where}: train", "a list of {input, output} pairs")):
            if not isinstance(pair, Mapping) or "input" not in pair or "output" not in pair:
                raise InvalidRequest(f"{where}: train[{index}] must be an object with input and output grids")
            pairs.append(ArcPair(_grid(pair["input"], f"{where}: train[{index}].input"),
                                 _grid(pair["output"], f"{where}: train[{index}].output")))
        tests = []
        for index, item in enumerate(_items(test, f"{where}: test", "a list of test inputs")):
            if isinstance(item, Mapping):
                if "input" not in item:
                    raise InvalidRequest(f"{where}: test[{index}] must be an object with an input grid, or a grid")
                item = item["input"]
            tests.append(_grid(item, f"{where}: test[{index}]"))
        return cls(task_id, tuple(pairs), tuple(tests))


def _items(value: object, where: str, what: str) -> Iterable[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidRequest(f"{where} must be {what}, got {type(value).__name__}")
    return value


def _grid(rows: object, where: str) -> Grid:
    grid = []
    for r, row in enumerate(_items(rows, where, "a list of rows")):
        cells = tuple(_items(row, f"{where}[{r}]", "a list of cells"))
        if not all(type(cell) is int for cell in cells):
            cells = tuple(_cell(cell, f"{where}[{r}][{c}]") for c, cell in enumerate(cells))
        grid.append(cells)
    return tuple(grid)


def _cell(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(f"{where} must be a whole number, got {value!r:.20}")
    return int(value)


@message(4)
class Request:
    """One generation request, as a caller states it.

    Either `messages` (a chat prompt) or `task` (an ARC task, rendered into a
    program-synthesis prompt by the router) or both. Everything optional falls back
    to the routed tier's settings. Construction checks every field's type and range
    (`actors.validation`) and raises `InvalidRequest` naming the field.
    """

    messages: tuple[ChatMessage, ...] = ()
    task: ArcTask | None = None
    request_id: str = attrs.field(factory=new_request_id)
    task_kind: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    sample_index: int | None = None
    """Which sample of an identical request this is; None numbers them (see docs/CACHE.md, sampling)."""
    tier: str | None = None
    model: str | None = None
    score: float | None = None
    features: dict[str, float] | None = None
    stagnation: int = 0
    cache: CachePolicy = CachePolicy.USE
    cache_ttl_s: float | None = None
    allow_similar: bool = False
    metadata: dict[str, str] = attrs.field(factory=dict)
    deadline_s: float | None = None
    """Bound on the whole workflow (retries, fallbacks, Retry-After waits); the engine default if None."""
    substitute: bool = False
    """With `tier` or `model` pinned: whether another tier may answer when the pinned one cannot."""
    attempt_timeout_s: float | None = None
    """How long one provider may take before the next candidate is tried (a time-to-first-token bound)."""
    wait_rate_limits: bool = True
    """Whether the last candidate waits out a Retry-After; False hands the 429 to a caller that retries itself."""

    def __attrs_post_init__(self) -> None:
        validate_request(self)

    @property
    def kind(self) -> str:
        """The task kind used for estimation, similarity scoping and summaries."""
        if self.task_kind:
            return self.task_kind
        return "arc" if self.task is not None else "text"

    @classmethod
    def prompt(cls, text: str, **kwargs: object) -> Request:
        """A single-user-message request, the common case for coding agents."""
        return cls(messages=(ChatMessage("user", text),), **kwargs)  # type: ignore[arg-type]


@message(5)
class Estimate:
    """A complexity estimate: a score in [0, 1], its level, and why."""

    score: float
    level: str
    confidence: float
    reasons: tuple[str, ...] = ()
    features: dict[str, float] = attrs.field(factory=dict)
    ranking: tuple[str, ...] = ()
    """Levels best first, when the estimator ranks every tier (routing by value): the fallback chain's order."""


@message(6)
class Decision:
    """Where the router sends a request and why; part of every Result and of telemetry."""

    tier: str
    model: str
    provider: str
    alternatives: tuple[str, ...]
    score: float
    level: str
    confidence: float
    reasons: tuple[str, ...]
    features: dict[str, float]
    estimated_cost_nd: int
    arm: str = ""
    """The A/B arm whose routing decided it (`routing.experiments`); empty when there is no experiment."""


@message(7)
class Attempt:
    """One try at one provider: what happened, what it cost, how long it took."""

    provider: str
    model: str
    tier: str
    outcome: str
    detail: str = ""
    latency_s: float = 0.0
    queue_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nd: int = 0
    http_status: int = 0
    reservation_id: str = ""
    held_nd: int = 0
    """Reserved money kept counted as spent because the call's outcome is unknown (see docs/LEDGER.md)."""


@message(8)
class Result:
    """The answer to a Request: text, where it came from, what it cost, and the route."""

    request_id: str
    text: str
    tier: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_nd: int
    latency_s: float
    decision: Decision
    attempts: tuple[Attempt, ...] = ()
    queue_s: float = 0.0
    cached: bool = False
    similarity: float | None = None
    saved_nd: int = 0
    cache_key: str = ""
    replayed: bool = False
    finish_reason: str = ""
    """The provider's own reason ("stop", "length", ...), passed through."""
    sample_index: int = 0

    @property
    def score(self) -> float:
        return self.decision.score

    @property
    def level(self) -> str:
        return self.decision.level

    @property
    def confidence(self) -> float:
        return self.decision.confidence

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.decision.reasons

    @property
    def cost_usd(self) -> str:
        return format_usd(self.cost_nd, 6)

    @property
    def fallbacks(self) -> int:
        """How many providers after the first were tried."""
        return len({a.provider for a in self.attempts}) - 1 if self.attempts else 0


MESSAGES: tuple[type, ...] = (
    ChatMessage,
    ArcPair,
    ArcTask,
    Request,
    Estimate,
    Decision,
    Attempt,
    Result,
)
