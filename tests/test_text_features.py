"""The text rules answered from a prompt's words give exactly what their regular expressions give.

The reference below is the rules as written (docs/ROUTING.md): a dozen
case-insensitive searches. The module answers them from the prompt's words in one
pass; any difference in points, features or reasons is a routing change, so it is
compared on the seed's examples, on a corpus of prompts, and on generated ones made
of the keywords, their near misses, separators and file names.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.policy import text_features as tf
from actors.policy.text_features import text_points


def reference_points(text: str) -> tuple[int, bool, dict[str, float], list[str]]:
    line_count = text.count("\n")
    length = len(text)
    if length > 2 * tf.SCAN_WINDOW:
        text = text[: tf.SCAN_WINDOW] + "\n" + text[-tf.SCAN_WINDOW :]
    features: dict[str, float] = {}
    reasons: list[str] = []
    if tf._TRIVIAL.search(text) and not tf._DESIGN.search(text):
        base, task_type = 5, "trivial"
    elif tf._DESIGN.search(text):
        base, task_type = 15, "design"
    else:
        base, task_type = 10, "ordinary"
    features["base"] = base
    reasons.append(f"task type {task_type} (+{base})")
    points = base
    critical = bool(tf._CRITICAL.search(text))
    if critical:
        points += 80
        features["critical"] = 80
        reasons.append("critical pattern (+80)")
    for pattern, value, label in tf._COMPLEX_KEYWORDS + tf._ASPECTS:
        if pattern.search(text):
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    file_count = len(set(m.group(0) for m in tf._FILES.finditer(text)))
    for label, value in (("files", tf._file_points(file_count)), ("lines", tf._line_points(line_count)),
                         ("context", tf._context_points(length))):
        if value:
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    points = min(100, points)
    features["points"] = points
    return points, critical, features, reasons


SEED_EXAMPLES = [
    "Fix typo in README.md",
    "Implement user authentication with JWT tokens in auth.py and middleware.py",
    "Design a distributed system architecture with async message queues for high throughput",
    "Fix the security vulnerability in production: SQL injection in the login endpoint",
]
CORPUS = SEED_EXAMPLES + [
    "Refactor the payment module to use the strategy pattern; keep the public API.",
    "Why does the cache return stale entries under concurrent writes? Find the root cause.",
    "Add a docstring to utils/strings.py and fix the formatting of setup.cfg",
    "Plan the migration of our monolith to microservices, with a rollback strategy.",
    "Production outage: the checkout queue is stuck; orders are not processed since 09:12.",
    "CVE-2024-3094 affects xz; check whether our images (Dockerfile, build.sh) pull it.",
    "Optimise the O(n^2) algorithm in search.go; memory usage is the bottleneck, not latency.",
    "Write a unit test for the race condition in worker/pool.rs and worker/queue.rs",
    "Analyze the trade-offs between Raft and Paxos for our replication layer.",
    "rename variable `tmp` to `buffer` in parser.c, parser.h, lexer.c and lexer.h",
    "The system design review flagged our module boundaries: split core.py into io.py, model.py, api.py.",
    "Encrypt passwords at rest; today the token table stores them in plain text (data loss risk on breach).",
    "Planet-scale planning? No: just reformat the README and lint the CHANGELOG.md",
    "A locksmith's threadbare reasoning about async_io and thread_pool.py (see a/b/c.py, ./d.ts, e-f.yaml)",
    "Investigate why the scalability tests for the scalable_queue fail on CI (.github/workflows/ci.yml)",
    "def transform(grid):\n    return [row[::-1] for row in grid]\n" * 40,
    "Explain the high-throughput path and the high throughput mode; are they faster? security issue? security  hole?",
] + [f"{before}{phrase}{after} first." for before, after in (("Look at the ", ""), ("see x", ""), ("see ", "x"), ("_", "_"))
      for phrase in (
    "security issue", "security hole", "security flaw", "production incident", "production outage", "production issue",
    "production down", "data loss", "sql injection", "cve-1", "system design", "module boundaries", "memory usage",
    "race condition", "trade-off", "trade-offs", "root cause", "scalable", "scalab",
)] + [
    "security or xsecurity issue", "data and bigdata loss", "cve 1 and xcve-1", "root or uproot cause",
    "a trade or x_trade-off", "memory and xmemory usage",
]
VOCABULARY = [
    "typo", "spelling", "format", "formats", "formatting", "rename", "renamed", "comment", "docstring", "readme", "lint",
    "linter", "whitespace", "design", "designs", "architect", "architecture", "research", "investigate", "plan",
    "planet", "planning", "security", "vulnerability", "vulnerabilities", "vulnerable", "issue", "hole", "flaw",
    "exploit", "exploited", "cve", "cve-2021", "cve-12a", "cve-", "production", "incident", "outage", "down", "data",
    "loss", "sql", "injection", "xss", "rce", "source", "breach", "distributed", "consensus", "raft", "paxos",
    "sharding", "replication", "migration", "migrations", "scalab", "scalable", "scalability", "microservice",
    "microservices", "refactor", "refactoring", "optimise", "optimize", "optimizer", "optimum", "algorithm",
    "algorithms", "system", "module", "boundaries", "auth", "author", "authentication", "encrypt", "password",
    "passwords", "token", "tokens", "permission", "oauth", "jwt", "performance", "latency", "throughput",
    "high", "fast", "faster", "fastest", "memory", "usage", "concurrency", "concurrent", "async", "asyncio",
    "thread", "threads", "parallel", "race", "condition", "lock", "locks", "queue", "queues", "prove", "proof",
    "reason", "reasoning", "trade", "off", "offs", "tradeoff", "tradeoffs", "why", "analyse", "analyze",
    "analyzer", "root", "cause", "main.py", "a.py", "lib/util.js", "x.tsx", "conf.yaml", "DATA.JSON", "f.PY",
    "query.sql", "notes.md", "file.py.bak", ".py", "a..py", "-b.rs", "c/d/e.go", "v1.2.3", "self.queue",
    "Security", "TYPO", "Design", "ASYNC", "Thread_Pool", "_lock", "lock_", "x_why", "2fast", "ok",
]
SEPARATORS = [" ", " ", " ", "\n", "-", ".", "/", ",", "_", "'", "(", ")", ": ", "  ", "\t", "`"]


def _token_text(parts: list[tuple[str, str]]) -> str:
    return "".join(word + separator for word, separator in parts)


texts = st.lists(st.tuples(st.sampled_from(VOCABULARY), st.sampled_from(SEPARATORS)), max_size=40).map(_token_text)
OTHER_CHARACTERS = [
    "\u2019", "\u201c", "\u2014", "\xa0", "\u3000", "\u20ac", "\xbe", "\xb2", "\u0663", "\uff11", "\xe9", "\xfc", "\xdf",
    "\u0130", "\u0131", "\u017f", "\u212a", "\u212b", "\u0301", "\u4e2d", "\U0001f600", "\uff41", "\u0394", "\u03c3",
]
"""Curly quotes, dashes, other spaces, symbols, digits of other scripts (Nd and not), letters, the four case twins
and a near one (the Angstrom sign), a combining mark, CJK, an emoji, fullwidth and Greek letters."""


def _with_others(parts: list[tuple[str, str, str, int]]) -> str:
    """Vocabulary words with other characters put between, after, or inside them (at a position)."""
    out = []
    for word, separator, other, at in parts:
        at = at % (len(word) + 1)
        out.append(word[:at] + other + word[at:] + separator if other else word + separator)
    return "".join(out)


mixed_texts = st.lists(
    st.tuples(st.sampled_from(VOCABULARY), st.sampled_from(SEPARATORS + OTHER_CHARACTERS),
              st.sampled_from(["", "", *OTHER_CHARACTERS]), st.integers(0, 40)),
    max_size=40,
).map(_with_others)


def test_the_corpus_scores_exactly_as_the_rules_read() -> None:
    for text in CORPUS:
        assert text_points(text) == reference_points(text), text


@settings(max_examples=1500, deadline=None)
@given(texts)
@example("cve-2021-1234 and CVE-9 and cve-12a")
@example("security issue and production down")
def test_generated_prompts_score_exactly_as_the_rules_read(text: str) -> None:
    assert text_points(text) == reference_points(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200) | st.text(max_size=80))
def test_any_text_scores_exactly_as_the_rules_read(text: str) -> None:
    assert text_points(text) == reference_points(text)


@settings(max_examples=1500, deadline=None)
@given(mixed_texts)
@example("Janet\u2019s ducks: a security\xa0issue? \u017fecurity, toKen, \u0131nvest\u0131gate, cve-\u0663\u0664, r\xe9sum\xe9.py r\xfcsum\xfc.py")
@example("\u0130nvestigate the \u212aafka thread\u2019s lock in caf\xe9/main.py and caf\xe9/main.py, a.j\u017f")
def test_text_past_ascii_scores_exactly_as_the_rules_read(text: str) -> None:
    assert text_points(text) == reference_points(text)


def test_every_character_past_ascii_stands_in_as_the_expressions_read_it() -> None:
    """Every code point past ASCII is tried against the engine's own classes: a case twin of an ASCII letter
    (for the case-insensitive rules), a digit, a word character, or none of these. A Python release that
    changes one (a new case twin, a new digit) turns this red before it turns a routing decision."""
    letters = re.compile("(?:" + "|".join("abcdefghijklmnopqrstuvwxyz") + ")", re.I)
    digit, word = re.compile(r"\d"), re.compile(r"\w")
    twins, wrong = {}, []
    for code in range(0x80, 0x110000):
        character = chr(code)
        if letters.fullmatch(character):
            twins[character] = next(a for a in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch(a, character, re.I))
        kind = "0" if digit.fullmatch(character) else "_" if word.fullmatch(character) else "\x01"
        if tf._stand_in_of(character, case_twins=False) != kind:
            wrong.append(hex(code))
    assert twins == tf._CASE_TWINS
    assert all(tf._stand_in_of(c, case_twins=True) == a for c, a in twins.items())
    assert not wrong, wrong[:20]


def test_a_long_prompt_reads_the_same_window() -> None:
    text = "please refactor this\n" + "x = 1\n" * 20_000 + "\nand check the security of auth.py"
    assert len(text) > 2 * tf.SCAN_WINDOW
    assert text_points(text) == reference_points(text)
