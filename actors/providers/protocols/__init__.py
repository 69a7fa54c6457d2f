"""The wire protocols a provider can speak, by the name a configuration uses."""

from __future__ import annotations

import types
from types import ModuleType

from actors.errors import ConfigError
from actors.providers.protocols import anthropic, gemini, openai, openai_stream

PROTOCOLS = types.MappingProxyType(
    {"openai": openai, "openai-stream": openai_stream, "anthropic": anthropic, "gemini": gemini}
)


def get_protocol(name: str) -> ModuleType:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown provider protocol {name!r} (known: {', '.join(sorted(PROTOCOLS))})"
        ) from None
