"""The canonical cache key: everything that changes an answer, and nothing else.

Model, messages (roles and contents, trailing whitespace of each line removed and
line endings normalised to \n, since neither changes what a model is asked), the
sampling parameters that change the answer (temperature, top_p, max_tokens, stop)
and the sample index, so the k-th sample of a prompt at temperature > 0 is its own
entry: a GA re-run replays exactly the programs it got before, while asking for a
new sample is still a miss. Telemetry replay matches recorded responses by this key.
"""

from __future__ import annotations

import functools
import hashlib
import re

import orjson

from actors.messages import ChatMessage

_TRAILING = re.compile(r"[ \t]+(?=\n|$)")


@functools.lru_cache(maxsize=8192)
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


def cache_key(
    model: str,
    messages: tuple[ChatMessage, ...],
    *,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int,
    stop: tuple[str, ...],
    sample_index: int,
) -> str:
    digest = _before_sample(model, messages, temperature, top_p, max_tokens, stop).copy()
    digest.update(b",%d]" % sample_index)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _before_sample(
    model: str,
    messages: tuple[ChatMessage, ...],
    temperature: float | None,
    top_p: float | None,
    max_tokens: int,
    stop: tuple[str, ...],
) -> hashlib.blake2b:
    """The hash fed with everything but the sample index, which comes last in the canonical form.

    Every sample of a prompt is a new key, so a GA or a benchmark misses a memo of
    whole keys every time; this part is the same for all of them (the messages are
    most of the bytes). Callers copy it and never update it. The keys are the same
    bytes as hashing `[1, model, messages, temperature, top_p, max_tokens, stop, sample]`
    in one go (tests pin them).
    """
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
