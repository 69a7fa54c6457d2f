"""The three wire formats the simulator speaks: parse a request, render answers and errors."""

from __future__ import annotations

import time
from typing import Any

import attrs


@attrs.frozen
class Ask:
    """A request, whatever format it came in."""

    route: str
    model: str
    messages: list[tuple[str, str]]
    max_tokens: int
    params: str
    api_key: str | None = attrs.field(repr=False)


class BadRequest(Exception):
    pass


def _messages(items: Any, role_key: str, text_of: Any) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        raise BadRequest("messages must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("each message must be an object")
        out.append((str(item.get(role_key, "user")), text_of(item)))
    return out


def parse_openai(body: dict[str, Any], headers: Any) -> Ask:
    auth = headers.get("Authorization", "")
    messages = _messages(body.get("messages"), "role", lambda m: str(m.get("content", "")))
    return Ask(
        "openai",
        str(body.get("model", "")),
        messages,
        int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
        f"{body.get('temperature')}|{body.get('top_p')}|{body.get('stop')}|{body.get('max_tokens')}",
        auth[7:] if auth.startswith("Bearer ") else None,
    )


def parse_anthropic(body: dict[str, Any], headers: Any) -> Ask:
    messages = _messages(body.get("messages"), "role", _anthropic_text)
    if body.get("system"):
        messages.insert(0, ("system", str(body["system"])))
    if "max_tokens" not in body:
        raise BadRequest("max_tokens: Field required")
    return Ask(
        "anthropic",
        str(body.get("model", "")),
        messages,
        int(body["max_tokens"]),
        f"{body.get('temperature')}|{body.get('top_p')}|{body.get('stop_sequences')}|{body['max_tokens']}",
        headers.get("x-api-key"),
    )


def _anthropic_text(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


def parse_gemini(model: str, body: dict[str, Any], headers: Any) -> Ask:
    messages = _messages(
        body.get("contents"),
        "role",
        lambda m: "".join(str(p.get("text", "")) for p in m.get("parts", []) if isinstance(p, dict)),
    )
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        text = "".join(str(p.get("text", "")) for p in system.get("parts", []) if isinstance(p, dict))
        messages.insert(0, ("system", text))
    config = body.get("generationConfig") or {}
    return Ask(
        "gemini",
        model,
        messages,
        int(config.get("maxOutputTokens") or 256),
        f"{config.get('temperature')}|{config.get('topP')}|{config.get('stopSequences')}|{config.get('maxOutputTokens')}",
        headers.get("x-goog-api-key"),
    )


def success(ask: Ask, text: str, prompt: int, completion: int, truncated: bool, usage: bool = True) -> dict[str, Any]:
    if ask.route == "anthropic":
        body: dict[str, Any] = {
            "id": "msg_sim",
            "type": "message",
            "role": "assistant",
            "model": ask.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens" if truncated else "end_turn",
        }
        if usage:
            body["usage"] = {"input_tokens": prompt, "output_tokens": completion}
        return body
    if ask.route == "gemini":
        body = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "MAX_TOKENS" if truncated else "STOP",
                }
            ],
            "modelVersion": ask.model,
        }
        if usage:
            body["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion,
                "totalTokenCount": prompt + completion,
            }
        return body
    body = {
        "id": "chatcmpl-sim",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ask.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length" if truncated else "stop"}
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return body


_OPENAI = {
    "rate_limit": ("rate_limit_exceeded", "requests", "Rate limit reached for requests"),
    "server_error": ("server_error", "server_error", "The server had an error while processing your request."),
    "auth": ("invalid_api_key", "invalid_request_error", "Incorrect API key provided."),
    "invalid": ("invalid_request", "invalid_request_error", "Invalid request."),
}
_ANTHROPIC = {
    "rate_limit": ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    "server_error": ("api_error", "Internal server error."),
    "overloaded": ("overloaded_error", "Overloaded"),
    "auth": ("authentication_error", "invalid x-api-key"),
    "invalid": ("invalid_request_error", "Invalid request."),
}
_GEMINI = {
    "rate_limit": ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "server_error": ("INTERNAL", "An internal error has occurred."),
    "unavailable": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    "auth": ("UNAUTHENTICATED", "API key not valid. Please pass a valid API key."),
    "invalid": ("INVALID_ARGUMENT", "Request contains an invalid argument."),
}


def error(route: str, kind: str, status: int) -> dict[str, Any]:
    """An error body in the route's own format."""
    if route == "anthropic":
        key = "overloaded" if status == 529 else kind
        err_type, message = _ANTHROPIC[key]
        return {"type": "error", "error": {"type": err_type, "message": message}}
    if route == "gemini":
        key = "unavailable" if status == 503 else kind
        rpc_status, message = _GEMINI[key]
        return {"error": {"code": status, "message": message, "status": rpc_status}}
    code, err_type, message = _OPENAI[kind]
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def context_error(ask: Ask, prompt: int, window: int) -> dict[str, Any]:
    total = prompt + ask.max_tokens
    if ask.route == "anthropic":
        return {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": f"prompt is too long: {total} tokens > {window} maximum"},
        }
    if ask.route == "gemini":
        return {
            "error": {
                "code": 400,
                "message": f"The input token count ({total}) exceeds the maximum number of tokens allowed ({window}).",
                "status": "INVALID_ARGUMENT",
            }
        }
    return {
        "error": {
            "message": f"This model's maximum context length is {window} tokens. However, you requested {total} tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
