"""OpenAI's chat-completions wire format, both ways, with no I/O.

`requests_from_body` turns a request body into the engine's Requests (one per `n`
sample); `completion` and `stream_chunks` turn Results into a response body or the
server-sent events of a stream; `error_body` is OpenAI's error object. Everything the
format offers that the orchestrator cannot honour is refused with a 400 naming the
parameter, never silently dropped.

Semantics worth knowing:

- `model`: "auto" routes by complexity; a tier name ("tier_2") or a model name pins
  it. A pinned model is never replaced by another unless the request allows it
  (`x_orchestrator.substitute: true` or the `x-orchestrator-allow-substitute: true`
  header); an unknown name is a 404 `model_not_found`.
- `n`: that many independent samples (distinct sample numbers), served concurrently.
- `seed`: chooses the sample: the same seed and body give the same (cached) answer.
- `temperature` 0, or an explicit `x_orchestrator.sample_index`, asks for a fixed
  sample; otherwise identical bodies in one run are fresh samples (docs/CACHE.md).
- content may be a string, a list of text parts, or null (an assistant turn).
- a request every candidate rate-limits is answered 429 with Retry-After at once:
  HTTP clients retry 429 themselves, so the server does not wait and retry as well.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Set
from typing import Any

import attrs

from actors.errors import InvalidRequest
from actors.messages import Request, Result
from actors.money import NANODOLLARS_PER_DOLLAR
from orchestrator.workload import request_from_dict

MAX_N = 16
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "logprobs", "top_logprobs", "audio", "modalities")
"""Parameters the orchestrator cannot honour through every provider; asking for them is a 400."""
PASSED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "n",
                    "stream", "stream_options", "seed", "response_format", "user", "x_orchestrator",
                    "presence_penalty", "frequency_penalty"} | set(UNSUPPORTED))
FINISH_REASONS = {"max_tokens": "length", "MAX_TOKENS": "length", "end_turn": "stop", "STOP": "stop",
                  "stop_sequence": "stop", "SAFETY": "content_filter"}


class UnsupportedParameter(InvalidRequest):
    code = "UNSUPPORTED_PARAMETER"


def requests_from_body(
    body: Any, tiers: Set[str], allow_substitute: bool, stream_first_token_s: float | None = None
) -> tuple[list[Request], bool]:
    """The Requests a body asks for (one per sample) and whether it wants a stream.

    A stream gets `stream_first_token_s` as its attempt timeout (unless the body's
    `x_orchestrator.attempt_timeout_s` says otherwise): a provider slower than that to
    answer is left for the next candidate.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(body) - PASSED)
    if unknown:
        raise InvalidRequest(f"unknown parameter(s): {', '.join(unknown)}")
    for name in UNSUPPORTED:
        if body.get(name) not in (None, False, [], {}):
            raise UnsupportedParameter(f"{name} is not supported by this orchestrator; remove it from the request")
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise UnsupportedParameter("response_format other than {\"type\": \"text\"} is not supported")
    spec = dict(_given(body, "x_orchestrator", dict, {}, "an object"))
    spec["substitute"] = _given(spec, "substitute", bool, allow_substitute, "true or false", "x_orchestrator.")
    spec["messages"] = _messages(body.get("messages"))
    for field in ("max_tokens", "temperature", "top_p"):
        if body.get(field) is not None:
            spec[field] = body[field]
    if body.get("max_completion_tokens") is not None:
        spec["max_tokens"] = body["max_completion_tokens"]
    stop = body.get("stop")
    if stop is not None:
        spec["stop"] = [stop] if isinstance(stop, str) else stop
    seed = body.get("seed")
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise InvalidRequest(f"seed must be a non-negative integer, got {seed!r}")
        spec["sample_index"] = seed % 2**31
    model = _given(body, "model", str, "auto", "a string") or "auto"
    if model != "auto":
        spec["tier" if model in tiers else "model"] = model
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise InvalidRequest(f"n must be an integer from 1 to {MAX_N}, got {n!r:.40}")
    stream = _given(body, "stream", bool, False, "true or false")
    request = request_from_dict(spec, "request", wait_rate_limits=False)
    if stream and request.attempt_timeout_s is None and stream_first_token_s is not None:
        request = attrs.evolve(request, attempt_timeout_s=stream_first_token_s)
    if n == 1:
        return [request], stream
    samples = []
    for index in range(n):
        sample = None if request.sample_index is None else request.sample_index + index
        samples.append(attrs.evolve(request, request_id=f"{request.request_id}-{index}", sample_index=sample))
    return samples, stream


def include_usage(body: dict[str, Any]) -> bool:
    """`stream_options.include_usage`, which must be true or false when given (a string read as truthy would
    answer the opposite of "false")."""
    options = _given(body, "stream_options", dict, {}, "an object")
    return bool(_given(options, "include_usage", bool, False, "true or false", "stream_options."))


def _given(mapping: dict[str, Any], name: str, kind: type, default: Any, what: str, where: str = "") -> Any:
    """`mapping[name]`, or `default` when it is absent or null; any other JSON type is refused naming it. A
    truthiness test here passed 0 and [] as their defaults and read "no" as true."""
    value = mapping.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise InvalidRequest(f"{where}{name} must be {what}, got {value!r:.40}")
    return value


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(f"messages must be a non-empty list, got {raw!r:.40}")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            raise InvalidRequest(f"messages[{index}] must be an object with a string role")
        out.append({"role": item["role"], "content": _content(item.get("content"), index)})
    return out


def _content(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise UnsupportedParameter(f"messages[{index}]: content part of type {kind!r} is not supported (text only)")
            texts.append(part["text"])
        return "".join(texts)
    raise InvalidRequest(f"messages[{index}].content must be a string, a list of text parts, or null")


def finish_reason(result: Result) -> str:
    reason = result.finish_reason
    return FINISH_REASONS.get(reason, reason) or "stop"


def completion(results: list[Result], request_id: str) -> dict[str, Any]:
    first = results[0]
    prompt = max(r.input_tokens for r in results)
    completion_tokens = sum(r.output_tokens for r in results)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": first.model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": r.text}, "finish_reason": finish_reason(r),
             "logprobs": None}
            for i, r in enumerate(results)
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                  "total_tokens": prompt + completion_tokens},
        "x_orchestrator": _extension(results),
    }


def _extension(results: list[Result]) -> dict[str, Any]:
    first = results[0]
    cost = sum(r.cost_nd for r in results)
    return {
        "tier": first.tier,
        "provider": first.provider,
        "cost_usd": cost / NANODOLLARS_PER_DOLLAR,
        "cost_nd": cost,
        "cached": all(r.cached for r in results),
        "similarity": first.similarity,
        "score": first.score,
        "level": first.level,
        "confidence": first.confidence,
        "reasons": list(first.reasons),
        "attempts": sum(len(r.attempts) for r in results),
        "samples": [r.sample_index for r in results],
    }


def stream_chunks(results: list[Result], request_id: str, include_usage: bool, piece: int = 64) -> Iterator[dict[str, Any]]:
    """The chunks of a stream: the role, the text in pieces, the finish reason, then usage if asked."""
    created = int(time.time())
    model = results[0].model

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": choices, **extra}

    for index, result in enumerate(results):
        yield chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for start in range(0, len(result.text), piece):
            yield chunk([{"index": index, "delta": {"content": result.text[start : start + piece]}, "finish_reason": None}])
        yield chunk([{"index": index, "delta": {}, "finish_reason": finish_reason(result)}])
    if include_usage:
        body = completion(results, request_id)
        yield chunk([], usage=body["usage"], x_orchestrator=body["x_orchestrator"])


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
            404: "invalid_request_error", 429: "rate_limit_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
