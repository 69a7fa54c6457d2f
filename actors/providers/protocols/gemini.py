"""Gemini generateContent: x-goog-api-key, contents/parts, usageMetadata, google.rpc errors."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from actors.messages import ChatMessage, FailureKind
from actors.providers.failures import classify_status, retry_after_from_headers
from actors.providers.protocols._common import error_text, load_json, malformed, nonneg_int
from actors.providers.wire import Completion, Failure, HttpCall

_BY_STATUS = {
    "RESOURCE_EXHAUSTED": FailureKind.RATE_LIMIT,
    "UNAVAILABLE": FailureKind.SERVER_ERROR,
    "INTERNAL": FailureKind.SERVER_ERROR,
    "DEADLINE_EXCEEDED": FailureKind.TIMEOUT,
    "PERMISSION_DENIED": FailureKind.AUTH,
    "UNAUTHENTICATED": FailureKind.AUTH,
    "INVALID_ARGUMENT": FailureKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": FailureKind.INVALID_REQUEST,
    "NOT_FOUND": FailureKind.INVALID_REQUEST,
}
_CONTEXT_PHRASES = ("exceeds the maximum number of tokens", "input token count", "too long")


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
    config: dict[str, object] = {"maxOutputTokens": max_tokens}
    if temperature is not None:
        config["temperature"] = temperature
    if top_p is not None:
        config["topP"] = top_p
    if stop:
        config["stopSequences"] = list(stop)
    body: dict[str, object] = {
        "contents": [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in messages
            if m.role != "system"
        ],
        "generationConfig": config,
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    headers = {"Content-Type": "application/json", **extra_headers}
    if api_key:
        headers["x-goog-api-key"] = api_key
    return HttpCall("POST", f"{base_url}/models/{model}:generateContent", headers, orjson.dumps(body))


def parse_response(status: int, headers: Mapping[str, str], body: bytes, now: float) -> Completion | Failure:
    parsed = load_json(body)
    if 200 <= status < 300:
        return _completion(parsed, status)
    detail = error_text(body, parsed)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    kind = _BY_STATUS.get(error.get("status")) if isinstance(error, dict) else None
    if kind is FailureKind.INVALID_REQUEST and any(p in detail.lower() for p in _CONTEXT_PHRASES):
        kind = FailureKind.CONTEXT_LENGTH
    if kind is None:
        return classify_status(status, detail, headers, now)
    retry = retry_after_from_headers(headers, now) if kind is FailureKind.RATE_LIMIT else None
    return Failure(kind, detail, status, retry)


def _completion(parsed: object, status: int) -> Completion | Failure:
    if not isinstance(parsed, dict):
        return malformed("response body is not a JSON object", status)
    candidates = parsed.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        return malformed("response has no candidates", status)
    content = candidates[0].get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return malformed("candidates[0].content.parts is missing", status)
    text = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    usage = parsed.get("usageMetadata")
    if not isinstance(usage, dict):
        return malformed("response has no usageMetadata", status)
    inp = nonneg_int(usage.get("promptTokenCount"))
    out = nonneg_int(usage.get("candidatesTokenCount", 0))
    if inp is None or out is None:
        return malformed("usageMetadata token counts missing or invalid", status)
    return Completion(text, inp, out, str(candidates[0].get("finishReason") or ""))
