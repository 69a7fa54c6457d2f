"""One validation layer: every entry point refuses the same bad input with the same typed error."""

from __future__ import annotations

import math
import re
import typing

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.catalog import CODEC
from actors.errors import InvalidRequest
from actors.messages import ArcPair, ArcTask, ChatMessage, Request
from actors.validation import MAX_FEATURES, MAX_METADATA_BYTES, MAX_PROMPT_BYTES, MAX_TOKENS, validate_feedback
from orchestrator.workload import request_from_dict
from tests.strategies import for_hint

PROMPT = (ChatMessage("user", "hi"),)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("max_tokens", -1_000_000_000, "max_tokens must be an integer from 1 to 1,000,000, got -1000000000"),
        ("max_tokens", -37, "got -37"),
        ("max_tokens", 0, "max_tokens must be an integer from 1"),
        ("max_tokens", 10_000_000, "got 10000000"),
        ("max_tokens", True, "got True"),
        ("max_tokens", "5", "got '5'"),
        ("temperature", 50.0, "temperature must be a number from 0 to 2, got 50.0"),
        ("temperature", -0.1, "temperature must be"),
        ("temperature", math.nan, "temperature must be"),
        ("top_p", 0.0, "top_p must be a number above 0 to 1"),
        ("top_p", 1.5, "top_p must be"),
        ("sample_index", -1, "sample_index must be an integer from 0"),
        ("stagnation", -2, "stagnation must be"),
        ("cache_ttl_s", 0.0, "cache_ttl_s must be a number above 0"),
        ("deadline_s", -5.0, "deadline_s must be a number above 0"),
        ("score", 7.0, "score must be a number from 0 to 1"),
        ("stop", ("",), "stop must be at most 16 non-empty strings"),
        ("stop", tuple("abcdefghijklmnopq"), "stop must be at most 16"),
        ("request_id", "", "request_id must be a string of 1 to 256"),
        ("metadata", {"k": 5}, "metadata must map strings to strings"),
        ("features", {"size": math.inf}, "features must map names to finite numbers"),
        ("messages", (ChatMessage("robot", "x"),), "messages[0].role must be one of"),
        ("messages", (ChatMessage("user", 5),), "messages[0].content must be a string"),  # type: ignore[arg-type]
    ],
)
def test_the_api_refuses_out_of_range_fields_naming_them(field: str, value: object, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Request(**{"messages": PROMPT, field: value})  # type: ignore[arg-type]
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError), "callers can catch it as the builtin they know"


def test_caller_features_are_bounded() -> None:
    assert len(Request.prompt("hi", features={f"f{i}": 0.5 for i in range(MAX_FEATURES)}).features or {}) == MAX_FEATURES
    with pytest.raises(InvalidRequest, match=f"257 features; at most {MAX_FEATURES}"):
        Request.prompt("hi", features={f"f{i}": 0.5 for i in range(MAX_FEATURES + 1)})


def test_metadata_is_bounded_as_labels_not_payload() -> None:
    """10,000 keys of 100 characters (1 MB) were accepted over HTTP and written with each of the request's records."""
    at_limit = {"k": "v" * (MAX_METADATA_BYTES - 1)}
    assert Request.prompt("hi", metadata=at_limit).metadata == at_limit
    with pytest.raises(InvalidRequest, match=f"metadata is 65,537 bytes of keys and values; at most {MAX_METADATA_BYTES:,}"):
        Request.prompt("hi", metadata={"k": "v" * MAX_METADATA_BYTES})


def test_an_oversized_prompt_is_refused_before_routing() -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PROMPT_BYTES:,} bytes"):
        Request.prompt("x" * (MAX_PROMPT_BYTES + 1))


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ({"prompt": "hi", "max_tokens": -37}, "workload.jsonl:3: request"),
        ({"prompt": "hi", "temperature": 50}, "temperature must be a number from 0 to 2"),
        ({"messages": 5}, "workload.jsonl:3: messages must be a list"),
        ({"prompt": "hi", "messages": ""}, "workload.jsonl:3: messages must be a list"),  # passed as none
        ({"prompt": "hi", "max_tokens": MAX_TOKENS + 1}, "max_tokens must be an integer"),
        ({"prompt": "hi", "temperature": "NaN"}, "temperature must be a number, got 'NaN'"),
        ({"prompt": "hi", "max_tokens": 1.5}, "max_tokens must be an integer, got 1.5"),
        ({"prompt": "hi", "tier": 3}, "tier must be a string, got 3"),
        ({"prompt": "hi", "substitute": "yes"}, "substitute must be true or false, got 'yes'"),
        ({"train": [{"input": [[1.5]], "output": [[1]]}]}, "workload.jsonl:3: ARC task task: train[0].input[0][0] must be a whole"),
    ],
)
def test_jsonl_lines_are_refused_with_file_and_line(line: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        request_from_dict(line, "workload.jsonl:3")
    assert says in str(caught.value)
    assert str(caught.value).startswith("workload.jsonl:3")


REQUEST_HINTS = typing.get_type_hints(Request)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_field_values_either_build_a_valid_request_or_raise_invalid_request(data: st.DataObject) -> None:
    names = data.draw(st.sets(st.sampled_from([f.name for f in attrs.fields(Request) if f.name not in ("task",)]), max_size=4))
    kwargs = {name: data.draw(for_hint(REQUEST_HINTS[name])) for name in names}
    kwargs.setdefault("messages", PROMPT)
    try:
        request = Request(**kwargs)
    except InvalidRequest:
        return
    assert request.max_tokens is None or 1 <= request.max_tokens <= MAX_TOKENS
    assert request.temperature is None or 0 <= request.temperature <= 2
    assert request.sample_index is None or request.sample_index >= 0


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
"""Text with lone surrogates too (half a UTF-16 pair: a Python string holds one, a JSON escape can spell one)."""
TEXT_FIELDS = {
    "content": lambda text: {"messages": (ChatMessage("user", text),)},
    "request_id": lambda text: {"request_id": text or "r"},
    "stop": lambda text: {"stop": (text or "s",)},
    "metadata key": lambda text: {"metadata": {text: "v"}},
    "metadata value": lambda text: {"metadata": {"k": text}},
    "features key": lambda text: {"features": {text: 1.0}},
    "tier": lambda text: {"tier": text},
    "model": lambda text: {"model": text},
    "task_kind": lambda text: {"task_kind": text},
    "task id": lambda text: {"task": ArcTask(text, (ArcPair(((1,),), ((2,),)),), (((1,),),))},
}


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted(TEXT_FIELDS)), text=ANY_TEXT)
def test_every_request_that_builds_can_be_sent_and_logged(field: str, text: str) -> None:
    """What the API accepts, the codec (actors' messages, the telemetry log) and JSON (providers) can carry:
    a lone surrogate is refused at construction, naming its field, instead of failing in an actor."""
    kwargs = {"messages": PROMPT, **TEXT_FIELDS[field](text)}
    try:
        request = Request(**kwargs)  # type: ignore[arg-type]
    except InvalidRequest as refused:
        assert "lone surrogate" in str(refused)
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    assert CODEC.decode(CODEC.encode(request)) == request
    text.encode("utf-8")


@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
def test_a_lone_surrogate_is_refused_naming_the_field_and_where(field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        Request(**{"messages": PROMPT, **TEXT_FIELDS[field]("ok \ud83d then")})  # type: ignore[arg-type]
    said = str(caught.value)
    assert "lone surrogate U+D83D at character 3" in said
    named = {"content": "messages[0].content", "stop": "stop[0]", "metadata value": "metadata['k']",
             "task id": "task.task_id"}.get(field, field)
    assert f"{named} is not valid Unicode text" in said


@pytest.mark.parametrize(
    ("request_id", "score", "says"),
    [("r1", math.nan, "score must be a finite number"), ("r1", math.inf, "got inf"), ("r1", "0.5", "got '0.5'"),
     ("r1", True, "got True"), ("", 0.5, "request_id must be a string of 1 to 256 characters"),
     ("r" * 257, 0.5, "request_id must be a string of 1 to 256 characters"),
     ("r\udc00", 0.5, "lone surrogate U+DC00")],
)
def test_feedback_that_cannot_be_recorded_is_refused(request_id: str, score: object, says: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(says)):
        validate_feedback(request_id, score)


def test_feedback_scores_pass_as_floats() -> None:
    assert validate_feedback("r1", 1) == 1.0 and type(validate_feedback("r1", 1)) is float
    for fitness in (np.float32(0.25), np.int64(0), np.float64(0.5)):  # what a GA's numpy fitness gives
        assert validate_feedback("r1", fitness) == float(fitness) and type(validate_feedback("r1", fitness)) is float
    with pytest.raises(InvalidRequest, match="got np.float32"):
        validate_feedback("r1", np.float32("nan"))
