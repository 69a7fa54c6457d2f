"""OpenAI-compatible chat completions: OpenAI, OpenRouter, Qwen and GLM endpoints, vLLM,
llama.cpp's server, Ollama."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from actors.messages import ChatMessage, FailureKind
from actors.providers.failures import classify_status
from actors.providers.protocols._common import error_text, load_json, malformed, nonneg_int
from actors.providers.wire import Completion, Failure, HttpCall

_CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
_CONTEXT_PHRASES = ("maximum context length", "context length", "context window", "too many tokens")


def build_request(
    *,
    base_url: str,
    model: str,
    api_key: str | None,
    messages: tuple[ChatMessage, ...],
    max_tokens: int,
    temperature: float | None,
    top_p: float | None,
    stop: tuple[str, ...],
    extra_headers: Mapping[str, str],
    stream: bool = False,
) -> HttpCall:
    """With `stream`, the answer comes as server-sent events with usage in the last one (`openai_stream.py`)."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "max_tokens": max_tokens,
    }
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p
    if stop:
        body["stop"] = list(stop)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"Content-Type": "application/json", **extra_headers}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return HttpCall("POST", f"{base_url}/chat/completions", headers, orjson.dumps(body))


def parse_response(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Completion | Failure:
    parsed = load_json(body)
    if 200 <= status < 300:
        return _completion(parsed, status)
    detail = error_text(body, parsed)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if status in (400, 413) and (code in _CONTEXT_CODES or any(p in detail.lower() for p in _CONTEXT_PHRASES)):
        return Failure(FailureKind.CONTEXT_LENGTH, detail, status)
    return classify_status(status, detail, headers, now)


def _completion(parsed: object, status: int) -> Completion | Failure:
    if not isinstance(parsed, dict):
        return malformed("response body is not a JSON object", status)
    choices = parsed.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return malformed("response has no choices", status)
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        return malformed("choices[0].message.content is missing", status)
    usage = parsed.get("usage")
    if not isinstance(usage, dict):
        return malformed("response has no usage block", status)
    prompt = nonneg_int(usage.get("prompt_tokens"))
    completion = nonneg_int(usage.get("completion_tokens"))
    if prompt is None or completion is None:
        return malformed("usage.prompt_tokens/completion_tokens missing or invalid", status)
    return Completion(content, prompt, completion, str(choices[0].get("finish_reason") or ""))
