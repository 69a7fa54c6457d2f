"""OpenAI-compatible chat completions, streamed: for local servers (vLLM, llama.cpp's server, Ollama).

The same request with `"stream": true` (and usage in the last chunk), so the provider's
`first_token_timeout` can give up on a server that has not begun to answer, while a
slow one that is answering gets the tier's longer `timeout`. The body is the server's
server-sent events, read whole and folded back into one completion; an error status
is answered as JSON, as the non-streamed protocol reads it. A stream that stops before
its `[DONE]` (the server died mid-answer), or whose chunks never give the usage (so the
answer cannot be priced), is a malformed response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from actors.providers.protocols import openai
from actors.providers.protocols._common import malformed, nonneg_int
from actors.providers.wire import Completion, Failure, HttpCall


def build_request(**fields: Any) -> HttpCall:
    """The OpenAI request with `"stream": true` and usage asked for in the last chunk."""
    return openai.build_request(**fields, stream=True)


def parse_response(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Completion | Failure:
    if not 200 <= status < 300:
        return openai.parse_response(status, headers, body, now)
    text: list[str] = []
    finish = ""
    prompt = completion = None
    done = False
    for line in body.splitlines():
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return malformed(f"a stream chunk is not JSON: {data[:80]!r}", status)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(piece, str):
                text.append(piece)
            finish = str(choices[0].get("finish_reason") or finish)
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if isinstance(usage, dict):
            prompt, completion = nonneg_int(usage.get("prompt_tokens")), nonneg_int(usage.get("completion_tokens"))
    if not done:
        return malformed("the stream ended before [DONE] (the server stopped mid-answer)", status)
    if prompt is None or completion is None:
        return malformed("the stream's last chunk has no usage (prompt_tokens/completion_tokens): the answer "
                         "could not be priced; the server must honour stream_options.include_usage", status)
    return Completion("".join(text), prompt, completion, finish)
