"""What the router and a provider actor say to each other."""

from __future__ import annotations

from actors.codec import message
from actors.messages import ChatMessage


@message(150)
class ProviderCall:
    request_id: str
    attempt_no: int
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    budget_tokens: int


@message(151)
class ProviderReply:
    """A completion (failure == "") or a classified failure, with timing."""

    failure: str
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    detail: str = ""
    http_status: int = 0
    retry_after_s: float | None = None
    latency_s: float = 0.0
    queue_s: float = 0.0
    sent: bool = True
    """False when the request certainly never reached the provider (so it cannot have been billed)."""

    @property
    def ok(self) -> bool:
        return not self.failure


MESSAGES: tuple[type, ...] = (ProviderCall, ProviderReply)
