"""Features of a prompt for the learned router: hashed n-grams and a few counts, in microseconds.

Two parts, both computed from the text alone, offline, with nothing downloaded:

- sparse: word unigrams and character 3- to 5-grams of the lower-cased text, digits
  folded to 0 (so "17 apples" and "42 apples" share their n-grams), hashed into
  `buckets` slots; counts are log-damped and the vector L2-normalised, so a long
  prompt does not outweigh a short one by its length alone;
- dense: lengths, how many numbers and which kinds (decimals, fractions, percentages,
  money, the largest magnitude), code and maths markers, and the ARC grid features when
  the request carries a task (zeros otherwise). The model standardises them.

Only the first `max_chars` characters are hashed or searched for markers, which bounds
the time a huge prompt can take; lengths are measured on the whole text. Character n-grams are hashed with
vectorised arithmetic on the UTF-8 bytes, which is what keeps a decision well under a
millisecond.
"""

from __future__ import annotations

import math
import re
import zlib

import attrs
import numpy as np

from actors.messages import ArcTask
from actors.policy.arc_features import FEATURES as ARC_FEATURES
from actors.policy.arc_features import arc_features

DENSE = (
    "log_chars", "log_words", "log_lines", "log_numbers", "log_distinct_numbers", "sentences",
    "has_percent", "has_money", "has_decimal", "has_fraction", "log_max_number",
    "code_markers", "math_markers", *ARC_FEATURES, "log_cells",
)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_LETTERS_ONLY = bytes(byte if 97 <= byte <= 122 else 32 for byte in range(256))
"""Every byte but a-z made a space: the words (runs of a-z) of a folded prompt are then its `split()`."""
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")
_ASCII_SPACE = bytes(byte for byte in range(128) if chr(byte).isspace())
_SENTENCE_MARKS = bytes.maketrans(b"?!" + _ASCII_SPACE, b".." + b" " * len(_ASCII_SPACE))
"""ASCII text with every sentence mark made "." and every whitespace character (what `\\s` matches) a space."""
_CODE = ("```", "def ", "class ", "return ", "import ", "{", ";", "=>")
_MATH = ("=", "+", "*", "^", "\\frac", "\\sqrt")
_DIGIT_FOLD = bytes.maketrans(b"123456789", b"000000000")
MAX_CHARS = 4000
_LOG1P = np.log1p(np.arange(1 << 14, dtype=np.float64)).astype(np.float32)
"""log1p(k) rounded to float32 for counts below 2**14, more than a bucket of a MAX_CHARS prompt usually holds
(`damped` works out larger ones; read-only)."""
_LOG1P.flags.writeable = False
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(1_000_003)


@attrs.frozen
class FeatureSpec:
    """What the featurizer does; saved with a model so prediction hashes exactly as training did."""

    buckets: int = 4096
    char_ngrams: tuple[int, int] = (3, 5)
    max_chars: int = MAX_CHARS

    def __attrs_post_init__(self) -> None:
        if self.buckets < 2 or self.buckets & (self.buckets - 1):
            raise ValueError(f"buckets must be a power of two, got {self.buckets}")


def sparse_features(text: str, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, values): the unique hashed n-grams of `text` and their damped, normalised counts."""
    counts = bucket_counts(text, spec)
    if counts is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    index = (counts > 0).nonzero()[0]
    values = damped(counts[index])
    values /= l2_norm(values)
    return index, values


def l2_norm(values: np.ndarray) -> np.float32:
    """The length a prompt's damped counts are divided by, in training and prediction alike (zeros add nothing)."""
    return np.float32(np.sqrt(np.dot(values, values)))


def bucket_counts(text: str, spec: FeatureSpec) -> np.ndarray | None:
    """How many of `text`'s n-grams fall in each of the `spec.buckets` buckets (None: the text has none)."""
    return counted_buckets(text, spec)[0]


def counted_buckets(text: str, spec: FeatureSpec) -> tuple[np.ndarray | None, int]:
    """`bucket_counts` and how many n-grams were counted: no bucket holds more, so `damped` needs no scan for
    the largest when that many are in its table."""
    folded = text[: spec.max_chars].lower().encode("utf-8", "replace").translate(_DIGIT_FOLD)
    words = folded.translate(_LETTERS_ONLY).split()
    low, high = spec.char_ngrams
    per_n = [max(0, len(folded) - n + 1) for n in range(low, high + 1)]
    chars = sum(per_n)
    if not chars and not words:
        return None, 0
    buckets = np.empty(chars + len(words), dtype=np.uint64)
    if chars:
        _char_buckets(folded, low, per_n, buckets[:chars], np.uint64(64 - spec.buckets.bit_length() + 1))
    if words:
        crcs = buckets[chars:]
        crcs[:] = np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))
        crcs &= np.uint64(spec.buckets - 1)  # a power of two: the remainder of the CRC
    return np.bincount(buckets.view(np.int64), minlength=spec.buckets), len(buckets)  # every bucket < 2**63


def damped(counts: np.ndarray, most: int | None = None) -> np.ndarray:
    """log(1 + count) as float32, each value as a float64 log1p rounded (read from a table for counts it holds).

    `most`: a bound on every count, when the caller knows one (`counted_buckets`).
    """
    if most is not None and most < len(_LOG1P):
        return _LOG1P.take(counts)
    if len(counts) and counts.max() >= len(_LOG1P):
        return np.log1p(counts.astype(np.float64)).astype(np.float32)
    return _LOG1P.take(counts)


def _char_buckets(data: bytes, low: int, per_n: list[int], out: np.ndarray, shift: np.uint64) -> None:
    """Write the bucket of every character n-gram into `out`, n from `low` up (`per_n[k]` of length low + k).

    The n-gram at i hashes as n * B^n + sum of byte[i + k] * B^(n-1-k) (mod 2^64): the
    (n+1)-grams' sums are the n-grams' times B plus the next byte, so each longer n
    costs one multiply-add over the bytes, not n of them. Everything happens in place
    in `out`, one segment per n: a prompt's hashing allocates nothing but its bytes.
    """
    raw = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
    count = per_n[0]
    sums = out[:count]
    sums[:] = raw[:count]
    for offset in range(1, low):
        sums *= _BASE
        sums += raw[offset : offset + count]
    segments = [sums]
    start = count
    for n, count in enumerate(per_n[1:], start=low + 1):
        if count <= 0:
            break
        longer = out[start : start + count]
        np.multiply(segments[-1][:count], _BASE, out=longer)
        longer += raw[n - 1 : n - 1 + count]
        segments.append(longer)
        start += count
    for n, segment in enumerate(segments, start=low):
        segment += _seed(n)
    out *= _MULTIPLIER
    out >>= shift


def _seed(n: int) -> np.uint64:
    return _SEEDS[n] if n < len(_SEEDS) else _seed_of(n)


def _seed_of(n: int) -> np.uint64:
    """n * B^n (mod 2^64): what sets the n-grams of one length apart from the others'."""
    return np.uint64(n * pow(int(_BASE), n, 1 << 64) % (1 << 64))


_SEEDS = tuple(_seed_of(n) for n in range(16))
"""The seeds of the n-gram lengths specs use, made once (read-only)."""


def dense_features(text: str, task: ArcTask | None = None, max_chars: int = MAX_CHARS) -> np.ndarray:
    """The DENSE values of `text` (and of `task`'s grids, when given: zeros otherwise)."""
    full = text
    text = text[:max_chars]
    numbers = _NUMBER.findall(text)
    magnitudes = [float(n.replace(",", "")) for n in numbers if n.replace(",", "").replace(".", "", 1).isdigit()]
    values = [
        math.log1p(len(full)),
        math.log1p(full.count(" ") + full.count("\n") + 1),
        math.log1p(full.count("\n")),
        math.log1p(len(numbers)),
        math.log1p(len(set(numbers))),
        min(sentence_ends(text), 50) / 10,
        float("%" in text or "percent" in text),
        float("$" in text),
        float(any("." in n for n in numbers)),
        float(_has_fraction(text) or "half" in text or "third" in text),
        math.log1p(max(magnitudes, default=0.0)) / 10,
        math.log1p(sum(map(text.count, _CODE))),
        math.log1p(sum(map(text.count, _MATH))),
    ]
    if task is not None:
        grid = arc_features(task)
        cells = sum(len(g) * len(g[0]) for p in task.train for g in (p.input, p.output)) + sum(len(g) * len(g[0]) for g in task.test)
        values += [grid[name] for name in ARC_FEATURES] + [math.log1p(cells)]
    else:
        values += [0.0] * (len(ARC_FEATURES) + 1)
    return np.asarray(values, dtype=np.float32)


def sentence_ends(text: str) -> int:
    """How many times `_SENTENCE_END` matches `text`: a mark followed by whitespace or the end.

    For ASCII text (most prompts) counted on its bytes with every mark made "." and every
    whitespace character a space, a quarter of the regular expression's time; a mark and
    its whitespace cannot overlap another such pair, so the counts are the same.
    """
    if not text.isascii():
        return len(_SENTENCE_END.findall(text))
    marked = text.encode("ascii").translate(_SENTENCE_MARKS)
    return marked.count(b". ") + marked.endswith(b".")


def _has_fraction(text: str) -> bool:
    """Whether a digit, a slash and a digit follow each other (as `\\d/\\d` would find), looking only around slashes."""
    at = text.find("/", 1)
    while 0 < at < len(text) - 1:
        if text[at - 1].isdecimal() and text[at + 1].isdecimal():
            return True
        at = text.find("/", at + 1)
    return False


@attrs.frozen(eq=False)
class FeatureBatch:
    """Many prompts' features: sparse entries as (row, bucket, value) triples, dense as a matrix."""

    rows: np.ndarray
    index: np.ndarray
    values: np.ndarray
    dense: np.ndarray

    def __len__(self) -> int:
        return len(self.dense)

    def subset(self, selected: np.ndarray) -> FeatureBatch:
        position = np.full(len(self), -1, dtype=np.int64)
        position[selected] = np.arange(len(selected))
        keep = position[self.rows] >= 0
        return FeatureBatch(position[self.rows[keep]], self.index[keep], self.values[keep], self.dense[selected])


def featurize(texts: list[str], spec: FeatureSpec, tasks: list[ArcTask | None] | None = None) -> FeatureBatch:
    rows, indices, values, dense = [], [], [], []
    for row, text in enumerate(texts):
        index, value = sparse_features(text, spec)
        rows.append(np.full(len(index), row, dtype=np.int64))
        indices.append(index)
        values.append(value)
        dense.append(dense_features(text, tasks[row] if tasks else None, spec.max_chars))
    return FeatureBatch(
        np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
        np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
        np.concatenate(values) if values else np.zeros(0, dtype=np.float32),
        np.vstack(dense) if dense else np.zeros((0, len(DENSE)), dtype=np.float32),
    )
