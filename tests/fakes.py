"""In-memory stand-ins for the I/O edges, for tests that run on a mock clock.

A mock clock with autojump jumps whenever every task waits, including while a real
socket waits for loopback data, so the timing logic (retries, backoff, circuits,
rate limits) is tested through `ScriptedTransport`, which answers from a script
with no socket at all and can sleep in virtual time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import anyio
import attrs
import orjson

from actors.providers.transport import RawResponse
from actors.providers.wire import HttpCall


def openai_ok(text: str = "def transform(grid):\n    return grid", prompt: int = 10, completion: int = 5) -> RawResponse:
    body = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return RawResponse(200, {"content-type": "application/json"}, orjson.dumps(body))


def openai_error(status: int, code: str = "", message: str = "error", retry_after: str | None = None) -> RawResponse:
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    body = {"error": {"message": message, "type": "error", "code": code or None}}
    return RawResponse(status, headers, orjson.dumps(body))


Step = RawResponse | BaseException | Callable[[HttpCall], RawResponse]


@attrs.define
class ScriptedTransport:
    """Answers calls from a script (then from `default`), after `delay` seconds of (virtual) time."""

    script: deque[Step] = attrs.field(factory=deque, converter=deque)
    default: Step | None = None
    delay: float = 0.0
    calls: list[HttpCall] = attrs.field(factory=list)
    opened: int = 0
    closed: int = 0

    async def open(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1

    def push(self, steps: Iterable[Step]) -> None:
        self.script.extend(steps)

    async def send(self, call: HttpCall) -> RawResponse:
        self.calls.append(call)
        step = self.script.popleft() if self.script else self.default
        if self.delay:
            await anyio.sleep(self.delay)
        if step is None:
            raise AssertionError("transport script exhausted")
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(call)
        return step
