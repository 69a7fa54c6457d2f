"""The one codec: every registered message round-trips, and bad bytes fail with CodecError."""

from __future__ import annotations

import enum
import gc
import weakref

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.catalog import CODEC, engine_codec
from actors.codec import Codec, message
from actors.errors import CodecError
from actors.messages import ArcPair, ArcTask, ChatMessage, Request
from actors.telemetry.events import FlushTelemetry
from tests.strategies import for_message

ALL_MESSAGES = sorted(CODEC._tags, key=CODEC.tag_of)  # noqa: SLF001 - the registry is the subject


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(cls: type, data: st.DataObject) -> None:
    msg = data.draw(for_message(cls))
    assert CODEC.decode(CODEC.encode(msg)) == msg


def _reference_encoding(value: object) -> object:
    """The wire format as the module docstring states it, built the slow, obvious way."""
    if type(value) in CODEC._tags:  # noqa: SLF001 - the registry is the subject
        fields = [_reference_encoding(getattr(value, f.name)) for f in attrs.fields(type(value))]
        return msgpack.ExtType(1, msgpack.packb([CODEC.tag_of(type(value)), *fields]))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, (tuple, list)):
        return [_reference_encoding(v) for v in value]
    if isinstance(value, dict):
        return {k: _reference_encoding(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_bytes_are_the_documented_wire_format(cls: type, data: st.DataObject) -> None:
    """Journals and logs outlive the code that wrote them: the bytes must not drift."""
    msg = data.draw(for_message(cls))
    assert CODEC.encode(msg) == msgpack.packb(_reference_encoding(msg))


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=lambda c: c.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_an_engines_codec_writes_the_same_bytes_when_it_remembers(cls: type, data: st.DataObject) -> None:
    """An engine's codec remembers the encoding of ARC tasks and decisions by identity; the second encoding of a
    message (its task or decision remembered) must be the same bytes as the first, and as the documented format."""
    codec = engine_codec()
    msg = data.draw(for_message(cls))
    expected = msgpack.packb(_reference_encoding(msg))
    assert codec.encode(msg) == expected and codec.encode(msg) == expected


def test_what_an_engines_codec_remembers_goes_with_it() -> None:
    task = ArcTask("t", (ArcPair(((1, 2),), ((2, 1),)),), (((3,),),))
    alive = weakref.ref(task)
    codec = engine_codec()
    for one in (codec, CODEC):
        one.encode(Request(task=task, request_id="r"))
    del task
    gc.collect()
    assert alive() is not None, "the engine's codec remembers the task it sent"
    del codec
    gc.collect()
    assert alive() is None, "nothing else does: the module's codec remembers nothing"


def test_every_ext_length_form_is_the_standard_one() -> None:
    """msgpack's fixext forms for 1, 2, 4, 8 and 16 bytes, ext 8/16/32 for the rest."""
    messages = [ChatMessage("u", "x" * size) for size in (*range(20), 250, 251, 255, 256, 65530, 65535, 65536, 70000)]
    for msg in [FlushTelemetry(), *messages]:
        assert CODEC.encode(msg) == msgpack.packb(_reference_encoding(msg))


def test_decoded_grids_are_immutable_tuples() -> None:
    task = ArcTask.from_lists("t", [{"input": [[1, 2]], "output": [[3]]}], [[[0]]])
    decoded = CODEC.decode(CODEC.encode(Request(task=task)))
    assert decoded.task.train[0].input == ((1, 2),)
    assert isinstance(decoded.task.test[0], tuple)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes) -> None:
    try:
        CODEC.decode(data)
    except CodecError:
        pass


def test_truncated_message_names_the_problem() -> None:
    data = CODEC.encode(ChatMessage("user", "hello"))
    with pytest.raises(CodecError):
        CODEC.decode(data[:-3])


def test_unknown_tag_is_rejected() -> None:
    body = msgpack.packb([9999, "x"])
    with pytest.raises(CodecError, match="unknown message tag 9999"):
        CODEC.decode(msgpack.packb(msgpack.ExtType(1, body)))


def test_wrong_typed_field_names_class_and_field() -> None:
    body = msgpack.packb([CODEC.tag_of(ChatMessage), "user", 42])
    with pytest.raises(CodecError, match=r"ChatMessage\.content: expected str, got int"):
        CODEC.decode(msgpack.packb(msgpack.ExtType(1, body)))


def test_wrong_field_count_is_rejected() -> None:
    body = msgpack.packb([CODEC.tag_of(ArcPair), [[1]]])
    with pytest.raises(CodecError, match="expected 2 fields, got 1"):
        CODEC.decode(msgpack.packb(msgpack.ExtType(1, body)))


def test_plain_msgpack_value_is_not_a_message() -> None:
    with pytest.raises(CodecError, match="not a message"):
        CODEC.decode(msgpack.packb({"role": "user"}))


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(CodecError):
        CODEC.decode(CODEC.encode(ChatMessage("a", "b")) + b"\x00")


def test_unregistered_class_cannot_be_encoded() -> None:
    @message(60000)
    class Stranger:
        value: int

    with pytest.raises(CodecError, match="not a registered message"):
        CODEC.encode(Stranger(1))


def test_two_classes_cannot_share_a_tag() -> None:
    @message(61000)
    class One:
        value: int

    @message(61000)
    class Other:
        value: int

    with pytest.raises(TypeError, match="tag 61000"):
        Codec([One, Other])
