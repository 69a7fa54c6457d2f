"""The three wire protocols, sans I/O: requests they build, answers and errors they parse."""

from __future__ import annotations

import email.utils
import re

import orjson
import pytest

from actors.errors import ConfigError
from actors.messages import ChatMessage, FailureKind
from actors.providers.failures import parse_retry_after
from actors.providers.protocols import PROTOCOLS, get_protocol
from actors.providers.wire import Completion, Failure

MESSAGES = (ChatMessage("system", "be brief"), ChatMessage("user", "hello"))
NOW = 1_790_000_000.0


def build(name: str, key: str | None = "sk-secret-key"):  # type: ignore[no-untyped-def]
    return PROTOCOLS[name].build_request(
        base_url="https://api.example/v1", model="m-1", api_key=key, messages=MESSAGES,
        max_tokens=64, temperature=0.5, top_p=None, stop=("END",), extra_headers={"X-Trace": "1"},
    )


def parse(name: str, status: int, body: object, headers: dict[str, str] | None = None) -> Completion | Failure:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return PROTOCOLS[name].parse_response(status, headers or {}, raw, NOW)


def test_openai_request_shape_and_the_key_stays_out_of_repr() -> None:
    call = build("openai")
    body = orjson.loads(call.body)
    assert call.url == "https://api.example/v1/chat/completions"
    assert call.headers["Authorization"] == "Bearer sk-secret-key"
    assert body["messages"][0] == {"role": "system", "content": "be brief"} and body["stop"] == ["END"]
    assert "sk-secret-key" not in repr(call)
    assert "Authorization" not in build("openai", key=None).headers


def test_anthropic_request_puts_system_on_top_and_uses_its_headers() -> None:
    call = build("anthropic")
    body = orjson.loads(call.body)
    assert call.url.endswith("/messages") and call.headers["x-api-key"] == "sk-secret-key"
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert body["system"] == "be brief" and body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["stop_sequences"] == ["END"]


def test_a_streamed_request_asks_for_usage_and_a_stream_cut_short_is_malformed() -> None:
    body = orjson.loads(build("openai-stream").body)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    cut = SUCCESS["openai-stream"].split(b"data: [DONE]")[0]  # type: ignore[union-attr]
    outcome = parse("openai-stream", 200, cut)
    assert isinstance(outcome, Failure) and outcome.kind is FailureKind.MALFORMED_RESPONSE
    assert "stopped mid-answer" in outcome.detail


def test_gemini_request_uses_contents_and_generation_config() -> None:
    call = build("gemini")
    body = orjson.loads(call.body)
    assert call.url == "https://api.example/v1/models/m-1:generateContent"
    assert call.headers["x-goog-api-key"] == "sk-secret-key"
    assert body["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert body["generationConfig"]["maxOutputTokens"] == 64


SUCCESS = {
    "openai": {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}},
    "anthropic": {"content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 7, "output_tokens": 2}, "stop_reason": "end_turn"},
    "gemini": {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2}},
    "openai-stream": (
        b'data: {"choices": [{"delta": {"role": "assistant", "content": "h"}}]}\n\n'
        b'data: {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}]}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}\n\ndata: [DONE]\n\n'
    ),
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_success_parses_text_and_usage(name: str) -> None:
    outcome = parse(name, 200, SUCCESS[name])
    assert isinstance(outcome, Completion)
    assert (outcome.text, outcome.input_tokens, outcome.output_tokens) == ("hi", 7, 2)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"choices": []}'])
def test_malformed_success_bodies(name: str, body: bytes) -> None:
    outcome = parse(name, 200, body)
    assert isinstance(outcome, Failure) and outcome.kind is FailureKind.MALFORMED_RESPONSE


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_missing_usage_is_malformed(name: str) -> None:
    success = SUCCESS[name]
    body = (success.replace(b', "usage": {"prompt_tokens": 7, "completion_tokens": 2}', b"")  # type: ignore[union-attr]
            if isinstance(success, bytes) else {k: v for k, v in success.items() if k not in ("usage", "usageMetadata")})
    outcome = parse(name, 200, body)
    assert isinstance(outcome, Failure) and outcome.kind is FailureKind.MALFORMED_RESPONSE
    assert "usage" in outcome.detail.lower()


OUTPUT_COUNT = re.compile(rb'("(?:completion_tokens|output_tokens|candidatesTokenCount)":\s*)2')


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize(("count", "charged"), [(100_000_000, True), (100_000_001, False), (10**15, False), (-1, False),
                                               (2.0, False), (True, False)])
def test_a_usage_count_no_model_could_reach_is_malformed_not_charged(name: str, count: object, charged: bool) -> None:
    """A broken usage report (a quadrillion tokens, a negative or fractional count) charged in full would spend a
    whole budget at once; as a malformed answer its reservation is held instead, for `budget reconcile`."""
    success = SUCCESS[name]
    text = success if isinstance(success, bytes) else orjson.dumps(success)
    body = OUTPUT_COUNT.sub(rb"\g<1>" + orjson.dumps(count), text, count=1)
    assert body != text
    outcome = parse(name, 200, body)
    if charged:
        assert isinstance(outcome, Completion) and outcome.output_tokens == count
    else:
        assert isinstance(outcome, Failure) and outcome.kind is FailureKind.MALFORMED_RESPONSE


ERRORS = [
    ("openai", 429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, FailureKind.RATE_LIMIT),
    ("openai", 400, {"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}, FailureKind.CONTEXT_LENGTH),
    ("openai", 401, {"error": {"message": "bad key"}}, FailureKind.AUTH),
    ("openai", 403, {"error": {"message": "forbidden"}}, FailureKind.AUTH),
    ("openai", 422, {"error": {"message": "bad param"}}, FailureKind.INVALID_REQUEST),
    ("openai", 500, {"error": {"message": "oops"}}, FailureKind.SERVER_ERROR),
    ("openai", 503, b"<html>down</html>", FailureKind.SERVER_ERROR),
    ("anthropic", 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "x"}}, FailureKind.RATE_LIMIT),
    ("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, FailureKind.SERVER_ERROR),
    ("anthropic", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}, FailureKind.CONTEXT_LENGTH),
    ("anthropic", 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: required"}}, FailureKind.INVALID_REQUEST),
    ("anthropic", 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, FailureKind.AUTH),
    ("anthropic", 500, {"type": "error", "error": {"type": "api_error", "message": "x"}}, FailureKind.SERVER_ERROR),
    ("gemini", 429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}, FailureKind.RATE_LIMIT),
    ("gemini", 400, {"error": {"code": 400, "message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}, FailureKind.CONTEXT_LENGTH),
    ("gemini", 400, {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}, FailureKind.INVALID_REQUEST),
    ("gemini", 403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}, FailureKind.AUTH),
    ("gemini", 503, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}, FailureKind.SERVER_ERROR),
]


@pytest.mark.parametrize(("name", "status", "body", "kind"), ERRORS, ids=[f"{e[0]}-{e[1]}-{e[3].value}" for e in ERRORS])
def test_each_provider_error_is_classified(name: str, status: int, body: object, kind: FailureKind) -> None:
    outcome = parse(name, status, body)
    assert isinstance(outcome, Failure)
    assert outcome.kind is kind and outcome.http_status == status


def test_retry_after_in_seconds_http_date_and_provider_headers() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(email.utils.formatdate(NOW + 30, usegmt=True), NOW) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon", NOW) is None
    outcome = parse("openai", 429, {"error": {"message": "x"}}, {"retry-after": "12"})
    assert isinstance(outcome, Failure) and outcome.retry_after_s == 12.0
    outcome = parse("openai", 429, {"error": {"message": "x"}},
                    {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"})
    assert isinstance(outcome, Failure) and outcome.retry_after_s == 360.0
    outcome = parse("openai", 429, {"error": {"message": "x"}}, {"retry-after-ms": "250"})
    assert isinstance(outcome, Failure) and outcome.retry_after_s == 0.25


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"retry-after": "inf"}, None), ({"retry-after": "1e12"}, 86_400.0), ({"retry-after-ms": "-5000"}, 0.0),
     ({"retry-after-ms": "nan"}, None), ({"retry-after-ms": "nan", "retry-after": "3"}, 3.0)],
)
def test_a_wait_no_provider_means_is_bounded_or_ignored(name: str, headers: dict[str, str], wait: float | None) -> None:
    """"inf" or a wait of centuries would pause the provider for good and reach clients as their Retry-After."""
    body = {"error": {"message": "x", "code": "rate_limit_exceeded", "type": "rate_limit_error", "status": "RESOURCE_EXHAUSTED"}}
    outcome = parse(name, 429, body, headers)
    assert isinstance(outcome, Failure) and outcome.kind is FailureKind.RATE_LIMIT
    assert outcome.retry_after_s == wait


def test_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown provider protocol 'grpc' .known: anthropic, gemini, openai"):
        get_protocol("grpc")
