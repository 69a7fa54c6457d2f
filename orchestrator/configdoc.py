"""Reading a configuration document: strict YAML, `${ENV}` interpolation, and `extends`.

Strict where a silent choice would cost money: a key written twice in one mapping is
an error (YAML would keep the last one silently), bytes that are not UTF-8 are an
error naming the byte, and numbers in exponent form (`1e30`) are numbers, as in YAML
1.2, not the strings YAML 1.1 makes of them. Every mapping remembers the file and
line of each of its keys, through interpolation and `extends` merging, so an error
in a base file is reported at the base file's own line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from actors.errors import ConfigError
from orchestrator.yamlnode import show

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FLOAT_1_2 = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class LocatedDict(dict[str, Any]):
    """A mapping that knows where each of its keys was written: (file, line)."""

    origins: dict[str, tuple[str, int]]

    def __init__(self, *args: Any, origins: Mapping[str, tuple[str, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins = dict(origins or {})


def _loader_for(file: str) -> type[yaml.SafeLoader]:
    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LocatedDict:  # type: ignore[override]
            mapping = LocatedDict()
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in mapping:
                    first = mapping.origins[key][1]
                    raise ConfigError(f"{file}:{line}: key {show(key)} appears twice in one mapping (first at line {first})")
                mapping[key] = self.construct_object(value_node, deep=deep)
                mapping.origins[key] = (file, line)
            return mapping

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, StrictLoader.construct_mapping)
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789"))
    return StrictLoader


def read_document(path: Path, env: Mapping[str, str], seen: tuple[Path, ...] = ()) -> LocatedDict:
    """The document at `path` merged over its `extends` base, with `${VAR}` replaced."""
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: extends itself (through {' -> '.join(map(str, seen))})")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x}); save the file as UTF-8"
        ) from None
    try:
        document = yaml.load(text, Loader=_loader_for(str(path)))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: must be a mapping at the top level, got {show(document)}")
    size = expanded_size(document, str(path), {}, set())
    if size > MAX_VALUES:
        raise ConfigError(f"{path}: expands to {size:,} values, more than the {MAX_VALUES:,} a configuration may hold "
                          "(YAML aliases repeat what their anchor names: one nested in another multiplies)")
    document = interpolate(document, env, str(path), "")
    base = document.pop("extends", None)
    if base is None:
        return document
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends: must be a file name, got {show(base)}")
    parent = read_document(path.parent / base, env, seen + (resolved,))
    return merge(parent, document)


MAX_VALUES = 100_000
"""More values than any configuration needs (a large one holds a few hundred), and few enough to walk at once."""


def expanded_size(value: Any, file: str, sizes: dict[int, int], open_ids: set[int]) -> int:
    """How many values `value` holds once every alias is written out, counted without writing them out (each
    object once, by identity: `sizes`); an alias inside what it names (`open_ids`) is refused."""
    if not isinstance(value, (dict, list)):
        return 1
    known = sizes.get(id(value))
    if known is not None:
        return known
    if id(value) in open_ids:
        raise ConfigError(f"{file}: an alias refers to a value it is inside of; a configuration cannot contain itself")
    open_ids.add(id(value))
    children = value.values() if isinstance(value, dict) else value
    size = 1 + sum(expanded_size(child, file, sizes, open_ids) for child in children)
    open_ids.discard(id(value))
    sizes[id(value)] = size
    return size


def extends_chain(path: Path) -> list[Path]:
    """The file and each file it `extends`, nearest first (for `orchestrator doctor`); read, not validated."""
    chain: list[Path] = []
    while path.resolve() not in chain and len(chain) < 32:
        chain.append(path.resolve())
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            break
        base = document.get("extends") if isinstance(document, dict) else None
        if not isinstance(base, str):
            break
        path = path.parent / base
    return chain


def interpolate(value: Any, env: Mapping[str, str], file: str, where: str) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{file}: {where}: environment variable {name} is not set "
                f"(write ${{{name}:-default}} to give a default)"
            )

        replaced = _ENV.sub(replace, value)
        if replaced != value and _ENV.fullmatch(value):
            return yaml.load(replaced, Loader=_loader_for(file)) if replaced.strip() else replaced  # noqa: S506
        return replaced
    if isinstance(value, dict):
        origins = value.origins if isinstance(value, LocatedDict) else {}
        return LocatedDict(
            {k: interpolate(v, env, file, f"{where}.{k}" if where else str(k)) for k, v in value.items()},
            origins=origins,
        )
    if isinstance(value, list):
        return [interpolate(v, env, file, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def merge(base: dict[str, Any], over: dict[str, Any]) -> LocatedDict:
    """`over` deep-merged onto `base`; each key keeps the location it finally came from."""
    merged = LocatedDict(base, origins=base.origins if isinstance(base, LocatedDict) else {})
    over_origins = over.origins if isinstance(over, LocatedDict) else {}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
        if key in over_origins:
            merged.origins[key] = over_origins[key]
    return merged
