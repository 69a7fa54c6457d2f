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

The rules are regular expressions (the reference, below), but running a dozen
case-insensitive searches cost ~400 µs for a 760-character prompt and 15 ms for
30,000. An ASCII prompt is instead cut into its words once (one bytes translate and
split, in C) and each rule asks set questions of them: a whole keyword is a word; a
keyword the rule lets run on (`architect` in architecture) is a word's prefix; a phrase (two words, or a hyphen) is
looked up in the text with its rule's expression only when all its words occur.
That is exactly the expressions' word-boundary semantics for ASCII text (a test compares
the two on a corpus and on generated prompts). Text with other characters (a curly
apostrophe is enough: one GSM8K question in twenty has one) is read the same way
through an ASCII stand-in of the same length, each other character replaced by one the
expressions treat alike (`_ascii_stand_in`); the expressions themselves took 120 µs
for such a question against 9 for the words.
"""

from __future__ import annotations

import re

import attrs
import numpy as np

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


SCAN_WINDOW = 4_096
"""Keyword patterns read the first and last this many characters of a prompt: that is where
instructions are, and a multi-megabyte prompt must not hold the event loop for a second."""


def _scanned(text: str) -> str:
    """The part of `text` the rules read: all of it, or its first and last SCAN_WINDOW characters."""
    return text if len(text) <= 2 * SCAN_WINDOW else text[:SCAN_WINDOW] + "\n" + text[-SCAN_WINDOW:]


_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if c in _WORD_BYTES else 32 for c in range(256))
"""Lowercases ASCII letters and turns every byte that is not a word character into a space."""
_PATH_BYTES = _WORD_BYTES | frozenset(b"./-")
_PATHS = bytes(c if c in _PATH_BYTES else 32 for c in range(256))
"""Keeps the characters a file name is made of (`[\\w./-]`), turns the rest into spaces."""
_FILES_IN_RUN = re.compile(_FILES.pattern.encode())
_FILE_EXTENSIONS = frozenset(b"py js ts tsx go rs java c cc cpp h rb yaml yml json toml sql md".split())
_EXTENSION_AT = re.compile(rb"\.(" + b"|".join(sorted(_FILE_EXTENSIONS)) + rb")\b")
"""Where a file name may end: every name the rule counts ends so, inside its run of path characters."""


_CASE_TWINS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
"""The characters past ASCII that a case-insensitive expression takes for an ASCII letter (İ, ı, ſ and the
Kelvin sign; every code point was tried, and a test tries them again)."""
_OTHER = re.compile(r"[^\x00-\x7f]")
FEW_OTHERS = 4
"""Up to this many distinct characters past ASCII are replaced one by one in the string (`_ascii_stand_in`)."""


def _stand_in_of(character: str, case_twins: bool) -> str:
    """An ASCII character the rules' expressions treat as they treat `character` (one past ASCII): its letter for
    a case twin (`case_twins`: the case-insensitive rules, not file names), 0 for a digit (what `\\d` matches), _
    for another word character (`\\w`: `isalnum`), and \\x01 for anything else (no expression names it)."""
    if case_twins and character in _CASE_TWINS:
        return _CASE_TWINS[character]
    if character.isdecimal():
        return "0"
    return "_" if character.isalnum() else "\x01"


def _ascii_stand_in(text: str, case_twins: bool) -> bytes:
    """`text` in ASCII, character for character, each other one replaced by its `_stand_in_of`.

    The expressions ask only whether a character is a word character, a digit, a given ASCII
    character (in either case for the rules) or a space, so each answers the same at every
    position of the stand-in as of the text. Each distinct character is classified once. A
    few (curly quotes, a dash: 4 µs for 760 characters) are replaced in the string; more (a
    prompt in Cyrillic or Chinese: 20-30 µs) with array operations, whose cost does not grow
    with their number times the length.
    """
    others = set(_OTHER.findall(text))
    if len(others) <= FEW_OTHERS:
        for character in others:
            text = text.replace(character, _stand_in_of(character, case_twins))
        return text.encode()
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    past_ascii = codes > 127
    distinct, where = np.unique(codes[past_ascii], return_inverse=True)
    stand_ins = "".join([_stand_in_of(chr(code), case_twins) for code in distinct.tolist()])
    ascii_bytes = codes.astype(np.uint8)
    ascii_bytes[past_ascii] = np.frombuffer(stand_ins.encode(), dtype=np.uint8)[where]
    return ascii_bytes.tobytes()


def _is_word(byte: int) -> bool:
    return byte in _WORD_BYTES


def _occurs(low: bytes, phrase: bytes, digits_after: bool) -> bool:
    """Whether `phrase` occurs in `low` between word boundaries (then, with `digits_after`, digits do too)."""
    start = low.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        if start == 0 or not _is_word(low[start - 1]):
            if digits_after:
                digits = end
                while digits < len(low) and 48 <= low[digits] <= 57:
                    digits += 1
                end = digits if digits > start + len(phrase) else -1
            if end >= 0 and (end == len(low) or not _is_word(low[end])):
                return True
        start = low.find(phrase, start + 1)
    return False


@attrs.frozen(eq=False)
class _Rule:
    """One rule as word questions: any `whole` word, a word starting with any of `prefixes`,
    or one of `phrases` (a keyword with a space or hyphen in it) found between word boundaries."""

    whole: frozenset[bytes] = frozenset()
    prefixes: tuple[bytes, ...] = ()
    phrases: tuple[bytes, ...] = ()
    longer_than_prefix: bool = False
    """`scalab\\w+`: the word must go on past the prefix."""
    phrase_words: tuple[frozenset[bytes], ...] = attrs.field(init=False)
    """The words of each phrase: it can only occur where they all do."""

    @phrase_words.default
    def _phrase_words(self) -> tuple[frozenset[bytes], ...]:
        return tuple(frozenset(phrase.translate(_WORDS).split()) for phrase in self.phrases)



def _words(*text: str) -> frozenset[bytes]:
    return frozenset(w.encode() for t in text for w in t.split())


def _phrases(*phrases: str) -> tuple[bytes, ...]:
    return tuple(phrase.encode() for phrase in phrases)


_CVE = b"cve-"
"""`cve-\\d+`: a phrase followed by digits."""
_TRIVIAL_RULE = _Rule(_words("typo spelling format formatting rename comment docstring readme whitespace lint"))
_DESIGN_RULE = _Rule(_words("design research investigate plan"), (b"architect",))
_CRITICAL_RULE = _Rule(
    _words("vulnerability vulnerabilities outage xss rce breach"), (b"exploit",),
    _phrases("security issue", "security hole", "security flaw", "production incident", "production outage",
             "production issue", "production down", "data loss", "sql injection") + (_CVE,),
)
_COMPLEX_RULES = (
    _Rule(_words("distributed consensus raft paxos sharding replication")),
    _Rule(_words("migration microservice microservices"), (b"scalab",), longer_than_prefix=True),
    _Rule(prefixes=(b"refactor", b"optimis", b"optimiz", b"algorithm")),
)
_ASPECT_RULES = (
    _Rule(prefixes=(b"architect",), phrases=_phrases("system design", "module boundaries")),
    _Rule(_words("security password token oauth jwt"), (b"auth", b"encrypt", b"permission")),
    _Rule(_words("performance latency throughput fast faster"), phrases=_phrases("memory usage")),
    _Rule(_words("queue"), (b"concurren", b"async", b"thread", b"parallel", b"lock"),
          _phrases("race condition")),
    _Rule(_words("prove proof tradeoff tradeoffs why analyse analyze"), (b"reason",),
          _phrases("trade-off", "trade-offs", "root cause")),
)
_RULES = (_TRIVIAL_RULE, _DESIGN_RULE, _CRITICAL_RULE, *_COMPLEX_RULES, *_ASPECT_RULES)
_RULES_OF_WORD = {word: tuple(rule for rule in _RULES if word in rule.whole) for rule in _RULES for word in rule.whole}
_RULES_OF_PREFIX = {prefix: tuple(rule for rule in _RULES if prefix in rule.prefixes) for rule in _RULES for prefix in rule.prefixes}


def _alternation(prefixes: list[bytes]) -> bytes:
    """The prefixes as one expression grouped by first letter: the engine tries a handful of letters per word."""
    by_letter: dict[bytes, list[bytes]] = {}
    for prefix in sorted(prefixes):
        by_letter.setdefault(prefix[:1], []).append(prefix)
    return b"|".join(
        letter + b"(?:" + b"|".join(
            prefix[1:] + (b"(?=[0-9a-z_])" if any(r.longer_than_prefix for r in _RULES_OF_PREFIX[prefix]) else b"")
            for prefix in group
        ) + b")"
        for letter, group in by_letter.items()
    )


_PREFIX_AT = re.compile(b" (" + _alternation(list(_RULES_OF_PREFIX)) + b")")
"""A word that begins with a rule's prefix, in the text with every other character a space."""
_PHRASES = tuple((needed, phrase, rule) for rule in _RULES for phrase, needed in zip(rule.phrases, rule.phrase_words))
_PHRASE_WORDS = frozenset().union(*(needed for needed, _, _ in _PHRASES))
_KEYWORDS = frozenset(_RULES_OF_WORD) | _PHRASE_WORDS | _FILE_EXTENSIONS


class _Matcher:
    """The rules' questions, answered from the text's words (of its ASCII stand-in when it has other characters)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._ascii = text.encode() if text.isascii() else _ascii_stand_in(text, case_twins=True)
        """The text in ASCII (its stand-in, for the rules, when it has other characters)."""
        self._hits, self._matched = self._match(self._ascii)

    @staticmethod
    def _match(ascii_text: bytes) -> tuple[frozenset[bytes], set[_Rule]]:
        """The text's keyword words, and every rule they satisfy, in one pass over its words."""
        spaced = b" " + ascii_text.translate(_WORDS)
        hits = _KEYWORDS.intersection(spaced.split())
        matched: set[_Rule] = set()
        for word in hits:
            matched.update(_RULES_OF_WORD.get(word, ()))
        for prefix in set(_PREFIX_AT.findall(spaced)):
            matched.update(_RULES_OF_PREFIX[prefix])
        if not hits.isdisjoint(_PHRASE_WORDS):
            low = ascii_text.lower()
            for needed, phrase, rule in _PHRASES:
                if rule not in matched and needed <= hits and _occurs(low, phrase, phrase == _CVE):
                    matched.add(rule)
        return hits, matched

    def __call__(self, rule: _Rule) -> bool:
        return rule in self._matched

    def file_count(self) -> int:
        """The distinct names `_FILES` finds, each searched for only in the run of path characters around an
        extension; read in the stand-in without case twins (`_FILES` is case-sensitive), named as in the text."""
        if self._hits.isdisjoint(_FILE_EXTENSIONS):
            return 0
        raw = self._ascii
        if any(twin in self._text for twin in _CASE_TWINS):
            raw = _ascii_stand_in(self._text, case_twins=False)
        paths = raw.translate(_PATHS)
        runs = set()
        for hit in _EXTENSION_AT.finditer(raw):
            at = hit.start()
            end = paths.find(b" ", at)
            runs.add((paths.rfind(b" ", 0, at) + 1, len(paths) if end < 0 else end))
        return len({self._text[m.start() : m.end()] for start, end in runs for m in _FILES_IN_RUN.finditer(paths, start, end)})


def text_points(text: str, *, files: int | None = None, lines: int | None = None) -> tuple[int, bool, dict[str, float], list[str]]:
    """(points 0-100, critical pattern matched, features, reasons)."""
    points, critical, features, reasons, _ = rule_points(text, files=files, lines=lines)
    return points, critical, features, reasons


def rule_points(text: str, *, files: int | None = None,
                lines: int | None = None) -> tuple[int, bool, dict[str, float], list[str], int]:
    """`text_points` and the file names counted (for `coding_signal`, which would otherwise count them again)."""
    line_count = lines if lines is not None else text.count("\n")
    length = len(text)
    text = _scanned(text)
    matches = _Matcher(text)
    features: dict[str, float] = {}
    reasons: list[str] = []
    design = matches(_DESIGN_RULE)
    if not design and matches(_TRIVIAL_RULE):
        base, task_type = 5, "trivial"
    elif design:
        base, task_type = 15, "design"
    else:
        base, task_type = 10, "ordinary"
    features["base"] = base
    reasons.append(f"task type {task_type} (+{base})")
    points = base
    critical = matches(_CRITICAL_RULE)
    if critical:
        points += 80
        features["critical"] = 80
        reasons.append("critical pattern (+80)")
    for rule, (_, value, label) in zip(_COMPLEX_RULES + _ASPECT_RULES, _COMPLEX_KEYWORDS + _ASPECTS):
        if matches(rule):
            points += value
            features[label] = value
            reasons.append(f"{label} (+{value})")
    file_count = files if files is not None else matches.file_count()
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
    return points, critical, features, reasons, file_count


CODING_FEATURES = ("critical", "distributed systems", "migration or scale", "refactoring or algorithms", "files")
"""The rules' features that only a software task sets: their other aspects (why, fast, token, password) occur in
plain questions too (a quarter of MMLU's humanities questions set one)."""
_CODE_MARKERS = ("```", "def ", "self.", "();", "};", "=>", "</", "#include", "):\n")


def coding_signal(text: str, features: dict[str, float], files: int | None = None) -> str:
    """What marks `text` as a coding task, the kind the keyword rules were written for: a software keyword they
    score, a file name, or code. "" for plain text (a question, a word problem), where the rules find nothing
    but the task type and can only rank by length. `files`: the file names counted already, if they were."""
    for label in CODING_FEATURES:
        if label in features:
            return label
    text = _scanned(text)
    if files if files is not None else _Matcher(text).file_count():
        return "a file name"
    for marker in _CODE_MARKERS:
        if marker in text:
            return f"code ({marker.strip()})"
    return ""
