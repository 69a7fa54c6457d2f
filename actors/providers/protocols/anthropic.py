"""Anthropic Messages: x-api-key, anthropic-version, top-level system, typed error bodies."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from actors.messages import ChatMessage, FailureKind
from actors.providers.failures import classify_status, retry_after_from_headers
from actors.providers.protocols._common import error_text, load_json, malformed, nonneg_int
from actors.providers.wire import Completion, Failure, HttpCall

API_VERSION = "2023-06-01"
_BY_TYPE = {
    "rate_limit_error": FailureKind.RATE_LIMIT,
    "overloaded_error": FailureKind.SERVER_ERROR,
    "api_error": FailureKind.SERVER_ERROR,
    "authentication_error": FailureKind.AUTH,
    "permission_error": FailureKind.AUTH,
    "invalid_request_error": FailureKind.INVALID_REQUEST,
    "not_found_error": FailureKind.INVALID_REQUEST,
    "request_too_large": FailureKind.CONTEXT_LENGTH,
}


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
) -> HttpCall:
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    body: dict[str, object] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [
            {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
            for m in messages
            if m.role != "system"
        ],
    }
    if system:
        body["system"] = system
    if temperature is not None:
        body["temperature"] = min(temperature, 1.0)
    if top_p is not None:
        body["top_p"] = top_p
    if stop:
        body["stop_sequences"] = list(stop)
    headers = {"Content-Type": "application/json", "anthropic-version": API_VERSION, **extra_headers}
    if api_key:
        headers["x-api-key"] = api_key
    return HttpCall("POST", f"{base_url}/messages", headers, orjson.dumps(body))


def parse_response(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Completion | Failure:
    parsed = load_json(body)
    if 200 <= status < 300:
        return _completion(parsed, status)
    detail = error_text(body, parsed)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    kind = _BY_TYPE.get(error.get("type")) if isinstance(error, dict) else None
    if kind is FailureKind.INVALID_REQUEST and "prompt is too long" in detail.lower():
        kind = FailureKind.CONTEXT_LENGTH
    if status == 529:
        kind = FailureKind.SERVER_ERROR
    if kind is None:
        return classify_status(status, detail, headers, now)
    retry = retry_after_from_headers(headers, now) if kind in (FailureKind.RATE_LIMIT, FailureKind.SERVER_ERROR) else None
    return Failure(kind, detail, status, retry)


def _completion(parsed: object, status: int) -> Completion | Failure:
    if not isinstance(parsed, dict):
        return malformed("response body is not a JSON object", status)
    content = parsed.get("content")
    if not isinstance(content, list):
        return malformed("response has no content list", status)
    text = "".join(
        block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
    )
    usage = parsed.get("usage")
    if not isinstance(usage, dict):
        return malformed("response has no usage block", status)
    inp, out = nonneg_int(usage.get("input_tokens")), nonneg_int(usage.get("output_tokens"))
    if inp is None or out is None:
        return malformed("usage.input_tokens/output_tokens missing or invalid", status)
    return Completion(text, inp, out, str(parsed.get("stop_reason") or ""))
