"""The coding-router source's scoring of a text task, in points from 0 to 100.

Rules (each match adds its points once; the total is capped at 100):
critical patterns (security vulnerability, production incident/outage, data loss,
exploit, CVE) +80; complex keywords +15 to +30 (distributed, consensus: 30;
architecture, migration, scalability: 20; refactor, optimise, algorithm: 15);
files mentioned or attached +5 (2), +10 (3-5), +20 (6-10), +40 (more); lines of code
given +5 (>50), +15 (>200), +30 (>1000); context size +10 (>8k characters), +20
(>32k); architecture +20; security +25; performance +15; concurrency +20; deep
reasoning +15. A task type (typo, formatting, docs: trivial; feature, bug; design,
research) sets the base: trivial 5, ordinary 10, design 15.

The last level is reserved for critical patterns: a task that scores high without
one (a distributed system design) stays one level below it, as in the source's
examples (a distributed system is complex/opus; a security issue critical/opus).
"""

from __future__ import annotations

import re

_TRIVIAL = re.compile(r"\b(typo|spelling|format(ting)?|rename|comment|docstring|readme|whitespace|lint)\b", re.I)
_DESIGN = re.compile(r"\b(design|architect\w*|research|investigate|plan)\b", re.I)
_CRITICAL = re.compile(
    r"\b(security (vulnerabilit(y|ies)|issue|hole|flaw)|vulnerabilit(y|ies)|exploit\w*|cve-\d+|"
    r"production (incident|outage|issue|down)|outage|data loss|sql injection|xss|rce|breach)\b",
    re.I,
)
_COMPLEX_KEYWORDS = (
    (re.compile(r"\b(distributed|consensus|raft|paxos|sharding|replication)\b", re.I), 30, "distributed systems"),
    (re.compile(r"\b(migration|scalab\w+|microservices?)\b", re.I), 20, "migration or scale"),
    (re.compile(r"\b(refactor\w*|optimi[sz]\w*|algorithm\w*)\b", re.I), 15, "refactoring or algorithms"),
)
_ASPECTS = (
    (re.compile(r"\b(architect\w*|system design|module boundaries)\b", re.I), 20, "architecture"),
    (re.compile(r"\b(auth\w*|security|encrypt\w*|password|token|permission\w*|oauth|jwt)\b", re.I), 25, "security"),
    (re.compile(r"\b(performance|latency|throughput|high[- ]throughput|fast(er)?|memory usage)\b", re.I), 15, "performance"),
    (re.compile(r"\b(concurren\w*|async\w*|thread\w*|parallel\w*|race condition|lock\w*|queue)\b", re.I), 20, "concurrency"),
    (re.compile(r"\b(prove|proof|reason\w*|trade-?offs?|why|analy[sz]e|root cause)\b", re.I), 15, "deep reasoning"),
)
_FILES = re.compile(r"\b[\w./-]+\.(py|js|ts|tsx|go|rs|java|c|cc|cpp|h|rb|yaml|yml|json|toml|sql|md)\b")


def _file_points(count: int) -> int:
    if count >= 11:
        return 40
    if count >= 6:
        return 20
    if count >= 3:
        return 10
    if count >= 2:
        return 5
    return 0


def _line_points(lines: int) -> int:
    if lines > 1000:
        return 30
    if lines > 200:
        return 15
    if lines > 50:
        return 5
    return 0


def _context_points(chars: int) -> int:
    if chars > 32_000:
        return 20
    if chars > 8_000:
        return 10
    return 0


SCAN_WINDOW = 32_768
"""Keyword patterns read the first and last this many characters of a prompt: that is where
instructions are, and a multi-megabyte prompt must not hold the event loop for a second."""


def text_points(text: str, *, files: int | None = None, lines: int | None = None) -> tuple[int, bool, dict[str, float], list[str]]:
    """(points 0-100, critical pattern matched, features, reasons)."""
    line_count = lines if lines is not None else text.count("\n")
    length = len(text)
    if length > 2 * SCAN_WINDOW:
        text = text[:SCAN_WINDOW] + "\n" + text[-SCAN_WINDOW:]
    features: dict[str, float] = {}
    reasons: list[str] = []
    if _TRIVIAL.search(text) and not _DESIGN.search(text):
        base, task_type = 5, "trivial"
    elif _DESIGN.search(text):
        base, task_type = 15, "design"
    else:
        base, task_type = 10, "ordinary"
    features["base"] = base
    reasons.append(f"task type {task_type} (+{base})")
    points = base
    critical = bool(_CRITICAL.search(text))
    if critical:
        points += 80
        features["critical"] = 80
        reasons.append("critical pattern (+80)")
    for pattern, value, label in _COMPLEX_KEYWORDS:
        if pattern.search(text):
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    for pattern, value, label in _ASPECTS:
        if pattern.search(text):
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    file_count = files if files is not None else len(set(m.group(0) for m in _FILES.finditer(text)))
    for label, value in (
        ("files", _file_points(file_count)),
        ("lines", _line_points(line_count)),
        ("context", _context_points(length)),
    ):
        if value:
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    points = min(100, points)
    features["points"] = points
    return points, critical, features, reasons
