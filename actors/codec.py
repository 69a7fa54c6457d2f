"""The one msgpack codec for every message that crosses between actors or onto disk.

A message is a frozen, slotted attrs class marked with `@message(tag)`. A `Codec` is
built once from the classes it may carry and never changes afterwards, so there is no
global registry to mutate. On the wire a message is a msgpack extension (type 1)
whose payload is `[tag, field1, field2, ...]`; nested messages nest the same way.
Decoding checks every field against the class's annotations, so a truncated buffer,
an unknown tag or a wrong-typed field raises `CodecError` naming the class and field
instead of building a half-valid object.
"""

from __future__ import annotations

import enum
import operator
import threading
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs
import msgpack

from actors.errors import CodecError

MESSAGE_EXT = 1


def _ext(data: bytes) -> msgpack.ExtType:
    """A message extension, made without ExtType's argument checks (the code is ours, the data bytes)."""
    return tuple.__new__(msgpack.ExtType, (MESSAGE_EXT, data))


_FIXEXT_HEADERS = {
    size: bytes((code, MESSAGE_EXT)) for size, code in ((1, 0xD4), (2, 0xD5), (4, 0xD6), (8, 0xD7), (16, 0xD8))
}


def _ext_bytes(data: bytes) -> bytes:
    """The bytes msgpack writes for `_ext(data)`, without a Packer: fixext for 1, 2, 4, 8
    and 16 bytes, else ext 8, 16 or 32 (a test holds them to `msgpack.packb`'s)."""
    size = len(data)
    header = _FIXEXT_HEADERS.get(size)
    if header is None:
        if size < 0x100:
            header = bytes((0xC7, size, MESSAGE_EXT))
        elif size < 0x10000:
            header = b"\xc8" + size.to_bytes(2, "big") + bytes((MESSAGE_EXT,))
        else:
            header = b"\xc9" + size.to_bytes(4, "big") + bytes((MESSAGE_EXT,))
    return header + data


_T = TypeVar("_T")
_Check = Callable[[Any, str], Any]


def message(tag: int, *, cache_hash: bool = False) -> Callable[[type[_T]], type[_T]]:
    """Declare a frozen, slotted attrs message class with a stable wire tag.

    `cache_hash` for large messages used as memo keys (an ARC task hashes every cell).
    """

    def wrap(cls: type[_T]) -> type[_T]:
        if not 0 < tag < 2**16:
            raise ValueError(f"message tag out of range: {tag}")
        made = attrs.frozen(cls, slots=True, cache_hash=cache_hash)
        made.__message_tag__ = tag  # type: ignore[attr-defined]
        return made

    return wrap


@attrs.frozen
class _Layout:
    cls: type
    names: tuple[str, ...]
    checks: tuple[_Check, ...]
    required: int = 0
    """Fields without a default: bytes written before a defaulted field was appended still decode."""
    fields: Callable[[object], tuple[Any, ...]] = attrs.field(default=lambda _: ())
    """The field values in order, as one C-level call (operator.attrgetter)."""


def _field_getter(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    if not names:
        return lambda _: ()
    getter = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda msg: (getter(msg),)
    return getter  # type: ignore[return-value]


MEMO_SIZE = 4096


class Codec:
    """Encodes registered messages to bytes and decodes them back, checking types.

    Encoding reuses each thread's msgpack Packers, one in use per nesting level (the
    bytes are the same as `msgpack.packb`'s; a test holds them to it). A copy made by
    `remembering` also remembers the encoding of the most recent objects of its memo
    types by identity (messages
    are frozen, and the memo holds each object, so an identity is never reused while
    remembered): a GA sends the same ARC task object again and again, and its grids
    are then packed once, not once per request and event, without even hashing them.
    """

    __slots__ = ("_by_tag", "_tags", "_plans", "_local", "_memo_types", "_memo")

    def __init__(self, classes: Iterable[type]) -> None:
        self._start_memo(())
        by_tag: dict[int, _Layout] = {}
        tags: dict[type, int] = {}
        pending = list(classes)
        for cls in pending:
            tag = getattr(cls, "__message_tag__", None)
            if tag is None:
                raise TypeError(f"{cls.__qualname__} is not declared with @message")
            if tag in by_tag and by_tag[tag].cls is not cls:
                raise TypeError(
                    f"tag {tag} used by both {by_tag[tag].cls.__qualname__} and {cls.__qualname__}"
                )
            tags[cls] = tag
            by_tag[tag] = _Layout(cls, (), ())
        for cls, tag in tags.items():
            hints = typing.get_type_hints(cls)
            fields = attrs.fields(cls)
            checks = tuple(self._compile(hints[f.name], tags) for f in fields)
            required = sum(1 for f in fields if f.default is attrs.NOTHING)
            names = tuple(f.name for f in fields)
            by_tag[tag] = _Layout(cls, names, checks, required, _field_getter(names))
        self._by_tag = by_tag
        self._tags = tags
        self._plans = {cls: (tag, by_tag[tag].fields) for cls, tag in tags.items()}

    def remembering(self, memo: Iterable[type]) -> Codec:
        """This codec's messages with a memo of its own for `memo`'s types: one engine's, so that what it
        remembers (and keeps alive) is not shared with another engine in the process, nor kept after it."""
        other = object.__new__(Codec)
        other._by_tag, other._tags, other._plans = self._by_tag, self._tags, self._plans  # read-only once built
        other._start_memo(memo)
        return other

    def _start_memo(self, memo: Iterable[type]) -> None:
        """This codec's own packers (per thread) and memo (of `memo`'s types, empty to remember nothing)."""
        self._local = threading.local()
        self._memo_types = frozenset(memo)
        self._memo: OrderedDict[int, tuple[object, msgpack.ExtType]] = OrderedDict()

    def encode(self, msg: object) -> bytes:
        """Encode a registered message to bytes."""
        try:
            if type(msg) in self._memo_types:
                return _ext_bytes(self._memoised(msg).data)
            return _ext_bytes(self._body(msg))
        except CodecError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode {type(msg).__qualname__}: {exc}") from None

    def decode(self, data: bytes) -> Any:
        """Decode bytes made by `encode`; raise `CodecError` for anything else."""
        try:
            value = msgpack.unpackb(data, ext_hook=self._hook, use_list=False, raw=False)
        except CodecError:
            raise
        except (msgpack.ExtraData, ValueError, TypeError, msgpack.UnpackException) as exc:
            raise CodecError(f"not a valid message: {type(exc).__name__}: {exc}") from None
        if type(value) not in self._tags:
            raise CodecError(f"not a message: top-level value is {type(value).__name__}")
        return value

    def decode_trusted(self, data: bytes) -> Any:
        """Decode bytes this codec wrote and a checksum vouches for, skipping field checks.

        For reading large logs fast: the structure (tags, field counts) is still
        checked, the field types are not, and enum fields keep their raw values.
        """
        try:
            return msgpack.unpackb(data, ext_hook=self._trusted_hook, use_list=False, raw=False)
        except CodecError:
            raise
        except (msgpack.ExtraData, ValueError, TypeError, msgpack.UnpackException) as exc:
            raise CodecError(f"not a valid message: {type(exc).__name__}: {exc}") from None

    def _trusted_hook(self, code: int, data: bytes) -> object:
        if code != MESSAGE_EXT:
            raise CodecError(f"unknown msgpack extension type {code}")
        values = msgpack.unpackb(data, ext_hook=self._trusted_hook, use_list=False, raw=False)
        layout = self._by_tag.get(values[0]) if isinstance(values, tuple) and values else None
        if layout is None or not layout.required <= len(values) - 1 <= len(layout.names):
            raise CodecError("unknown message tag or wrong field count")
        return layout.cls(*values[1:])

    def tag_of(self, cls: type) -> int:
        return self._tags[cls]

    @staticmethod
    def peek_tag(data: bytes) -> int | None:
        """The tag of an encoded message without decoding it (None if not recognisable).

        Log readers use it to decode only the events a summary needs.
        """
        if len(data) < 4:
            return None
        first = data[0]
        if 0xD4 <= first <= 0xD8:
            pos = 2
        elif first == 0xC7:
            pos = 3
        elif first == 0xC8:
            pos = 4
        elif first == 0xC9:
            pos = 6
        else:
            return None
        if data[pos - 1] != MESSAGE_EXT or pos >= len(data):
            return None
        head = data[pos]
        if 0x90 <= head <= 0x9F:
            pos += 1
        elif head == 0xDC:
            pos += 3
        elif head == 0xDD:
            pos += 5
        else:
            return None
        if pos >= len(data):
            return None
        tag = data[pos]
        if tag < 0x80:
            return tag
        if tag == 0xCC and pos + 1 < len(data):
            return data[pos + 1]
        if tag == 0xCD and pos + 2 < len(data):
            return int.from_bytes(data[pos + 1 : pos + 3], "big")
        return None

    # -- encoding -----------------------------------------------------------------

    def _body(self, msg: object) -> bytes:
        """The packed `[tag, field1, ...]` of a message (not memoised)."""
        plan = self._plans.get(type(msg))
        if plan is None:
            raise CodecError(f"{type(msg).__qualname__} is not a registered message")
        tag, fields = plan
        return self._pack([tag, *fields(msg)])

    def _memoised(self, msg: object) -> msgpack.ExtType:
        remembered = self._memo.get(id(msg))
        if remembered is not None:
            return remembered[1]
        ext = _ext(self._body(msg))
        self._memo[id(msg)] = (msg, ext)
        if len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return ext

    def _pack(self, values: list[Any]) -> bytes:
        """Pack with a Packer of this thread's that no outer pack is using (packers are not reentrant):
        a nested message takes another from the free list, and each goes back when done."""
        try:
            free = self._local.free
        except AttributeError:
            free = self._local.free = []
        packer = free.pop() if free else msgpack.Packer(default=self._default, autoreset=True)
        try:
            return packer.pack(values)
        finally:
            free.append(packer)

    def _default(self, value: object) -> object:
        """A nested message as its extension (packed here, inline: this runs for every nested
        message of every encode), an enum as its value, a frozenset sorted."""
        kind = type(value)
        plan = self._plans.get(kind)
        if plan is not None:
            if kind in self._memo_types:
                return self._memoised(value)
            tag, fields = plan
            return _ext(self._pack([tag, *fields(value)]))
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, frozenset):
            return sorted(value)
        raise TypeError(f"unsupported type {type(value).__qualname__}")

    # -- decoding -----------------------------------------------------------------

    def _hook(self, code: int, data: bytes) -> object:
        if code != MESSAGE_EXT:
            raise CodecError(f"unknown msgpack extension type {code}")
        try:
            values = msgpack.unpackb(data, ext_hook=self._hook, use_list=False, raw=False)
        except CodecError:
            raise
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise CodecError(f"truncated or corrupt message body: {exc}") from None
        if not isinstance(values, tuple) or not values or type(values[0]) is not int:
            raise CodecError("message body is not [tag, fields...]")
        layout = self._by_tag.get(values[0])
        if layout is None:
            raise CodecError(f"unknown message tag {values[0]}")
        name = layout.cls.__qualname__
        if not layout.required <= len(values) - 1 <= len(layout.names):
            raise CodecError(
                f"{name}: expected {len(layout.names)} fields, got {len(values) - 1}"
            )
        kwargs = {}
        for field, check, value in zip(layout.names, layout.checks, values[1:]):
            kwargs[field] = check(value, f"{name}.{field}")
        try:
            return layout.cls(**kwargs)
        except (ValueError, TypeError) as exc:
            raise CodecError(f"{name}: {exc}") from None

    def _compile(self, hint: Any, tags: dict[type, int]) -> _Check:
        """Build a checker that validates (and, for enums and floats, converts) a value."""
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is Any:
            return _accept
        if hint is type(None) or hint is None:
            return _exact(type(None), "None")
        if hint is bool:
            return _exact(bool, "bool")
        if hint is int:
            return _exact(int, "int")
        if hint is str:
            return _exact(str, "str")
        if hint is bytes:
            return _exact(bytes, "bytes")
        if hint is float:
            return _float
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return _enum(hint)
        if isinstance(hint, type) and hint in tags:
            return _exact(hint, hint.__qualname__)
        if origin in (typing.Union, types.UnionType):
            return _union(tuple(self._compile(a, tags) for a in args), hint)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return _homogeneous(self._compile(args[0], tags))
            return _fixed(tuple(self._compile(a, tags) for a in args))
        if origin is dict:
            return _mapping(self._compile(args[0], tags), self._compile(args[1], tags))
        if origin is typing.Literal:
            return _literal(args)
        raise TypeError(f"the codec cannot carry fields of type {hint!r}")


def _accept(value: Any, where: str) -> Any:
    return value


def _exact(kind: type, label: str) -> _Check:
    def check(value: Any, where: str) -> Any:
        if type(value) is not kind:
            raise CodecError(f"{where}: expected {label}, got {type(value).__name__}")
        return value

    return check


def _float(value: Any, where: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise CodecError(f"{where}: expected float, got {type(value).__name__}")


def _enum(kind: type[enum.Enum]) -> _Check:
    def check(value: Any, where: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise CodecError(f"{where}: {value!r} is not a {kind.__name__}") from None

    return check


def _literal(choices: tuple[Any, ...]) -> _Check:
    def check(value: Any, where: str) -> Any:
        if value not in choices:
            raise CodecError(f"{where}: {value!r} is not one of {choices!r}")
        return value

    return check


def _union(checks: tuple[_Check, ...], hint: Any) -> _Check:
    def check(value: Any, where: str) -> Any:
        for candidate in checks:
            try:
                return candidate(value, where)
            except CodecError:
                continue
        raise CodecError(f"{where}: expected {hint}, got {type(value).__name__}")

    return check


def _homogeneous(item: _Check) -> _Check:
    def check(value: Any, where: str) -> Any:
        if type(value) is not tuple:
            raise CodecError(f"{where}: expected a sequence, got {type(value).__name__}")
        if item is _accept:
            return value
        return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))

    return check


def _fixed(items: tuple[_Check, ...]) -> _Check:
    def check(value: Any, where: str) -> Any:
        if type(value) is not tuple or len(value) != len(items):
            raise CodecError(f"{where}: expected a sequence of {len(items)}")
        return tuple(c(v, f"{where}[{i}]") for i, (c, v) in enumerate(zip(items, value)))

    return check


def _mapping(key: _Check, val: _Check) -> _Check:
    def check(value: Any, where: str) -> Any:
        if type(value) is not dict:
            raise CodecError(f"{where}: expected a map, got {type(value).__name__}")
        return {key(k, f"{where} key"): val(v, f"{where}[{k!r}]") for k, v in value.items()}

    return check
