"""The worst case a reservation must cover, before any provider is called.

Input tokens are bounded by the UTF-8 byte count of every message plus 16 tokens of
framing per message and 16 per request. Byte-level BPE tokenizers (GPT, Qwen, GLM,
Llama, Claude, Gemini's SentencePiece with byte fallback) never produce more tokens
than bytes of text, so this never counts fewer tokens than a provider bills; the
framing allowance covers role markers and chat-template tokens. Output is bounded by
max_tokens. A safety margin (parts per million) is added on top for providers that
bill past max_tokens.
"""

from __future__ import annotations

from actors.messages import ChatMessage
from actors.money import token_cost_nd

FRAMING_PER_MESSAGE = 16
FRAMING_PER_REQUEST = 16


def prompt_token_upper_bound(messages: tuple[ChatMessage, ...]) -> int:
    """The input tokens a reservation covers (the module's docstring says why they bound the bill)."""
    return FRAMING_PER_REQUEST + sum(
        len(m.content.encode("utf-8")) + len(m.role) + FRAMING_PER_MESSAGE for m in messages
    )


def worst_case_nd(
    prompt_tokens: int, max_tokens: int, input_price: int, output_price: int, margin_ppm: int
) -> int:
    base = token_cost_nd(prompt_tokens, input_price) + token_cost_nd(max_tokens, output_price)
    return base + -(-base * margin_ppm // 1_000_000)


def prompt_token_estimate(messages: tuple[ChatMessage, ...]) -> int:
    """A likely token count (about 3 characters a token), for fitting context windows.

    Not a bound: money uses `prompt_token_upper_bound`; a provider that still finds
    the prompt too long answers CONTEXT_LENGTH and the router moves to a larger window.
    """
    return FRAMING_PER_REQUEST + sum(len(m.content) // 3 + 4 for m in messages)
