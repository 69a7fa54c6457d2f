"""The canonical cache key: everything that changes an answer, and nothing else.

Model, messages (roles and contents, trailing whitespace of each line removed and
line endings normalised to \n, since neither changes what a model is asked), the
sampling parameters that change the answer (temperature, top_p, max_tokens, stop)
and the sample index, so the k-th sample of a prompt at temperature > 0 is its own
entry: a GA re-run replays exactly the programs it got before, while asking for a
new sample is still a miss. Telemetry replay matches recorded responses by this key.
"""

from __future__ import annotations

import hashlib
import re

import orjson

from actors.memo import ContentMemo
from actors.messages import ChatMessage

_TRAILING = re.compile(r"[ \t]+(?=\n|$)")


def normalise(text: str) -> str:
    """Line endings as \n, no trailing blanks on any line.

    Most prompts have no trailing blanks, and a blank run ends a line only where a
    space or tab stands right before a \n or at the end, so those two checks (in C)
    spare the expression's scan of every run of spaces in the text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if " \n" not in text and "\t\n" not in text and not text.endswith((" ", "\t")):
        return text
    return _TRAILING.sub("", text)


class CacheKeys:
    """The keys for one router, which hashes a prompt and its parameters once for all their samples.

    Every sample of a prompt is a new key, so a GA or a benchmark would miss a memo of
    whole keys every time; the hash of everything before the sample index is the same
    for all of them (the messages are most of the bytes: 2 µs for a 760-character
    prompt, 35-68 for 30,000 characters), so it is kept and copied for each sample.
    """

    __slots__ = ("_prefixes",)

    def __init__(self, size: int = 4096) -> None:
        self._prefixes: ContentMemo[hashlib.blake2b] = ContentMemo(size)

    def key(
        self,
        model: str,
        messages: tuple[ChatMessage, ...],
        *,
        temperature: float | None,
        top_p: float | None,
        max_tokens: int,
        stop: tuple[str, ...],
        sample_index: int,
    ) -> str:
        parts = (model, messages, temperature, top_p, max_tokens, stop)
        prefix = self._prefixes.get(parts)
        if prefix is None:
            prefix = _before_sample(parts)
            self._prefixes.put(parts, prefix)
        return _with_sample(prefix, sample_index)


def _with_sample(prefix: hashlib.blake2b, sample_index: int) -> str:
    digest = prefix.copy()
    digest.update(b",%d]" % sample_index)
    return digest.hexdigest()


def _before_sample(parts: tuple[str, tuple[ChatMessage, ...], float | None, float | None, int, tuple[str, ...]]
                   ) -> hashlib.blake2b:
    """The hash fed with everything but the sample index (model, messages, temperature, top_p, max_tokens, stop),
    which comes last in the canonical form.

    Callers copy it and never update it (`CacheKeys` keeps it for the next sample). The
    keys are the same bytes as hashing `[1, model, messages, temperature, top_p,
    max_tokens, stop, sample]` in one go (tests pin them).
    """
    model, messages, temperature, top_p, max_tokens, stop = parts
    canonical = orjson.dumps(
        [
            1,
            model,
            [[m.role, normalise(m.content)] for m in messages],
            None if temperature is None else round(float(temperature), 6),
            None if top_p is None else round(float(top_p), 6),
            max_tokens,
            list(stop),
        ]
    )
    return hashlib.blake2b(canonical[:-1], digest_size=20)
