"""The I/O edge of a provider: send one HttpCall, get status, headers and body back.

The real transport is one pooled aiohttp ClientSession per provider, living on the
HTTP loop (the caller's asyncio loop, or the bridge's thread under trio). Tests of
timing logic inject an in-memory transport instead, so that a mock clock never has
to wait on a real socket.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
import attrs

from actors.providers.settings import ProviderSettings
from actors.providers.wire import HttpCall
from actors.runtime.bridge import HttpLoop


class FirstTokenTimeout(TimeoutError):
    """A streamed answer whose first bytes did not come within the provider's `first_token_timeout`."""


class AnswerTooLarge(Exception):
    """A response body over the provider's `max_answer_bytes`: it is not read further, and the connection closes."""


@attrs.frozen
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    async def open(self) -> None: ...

    async def send(self, call: HttpCall) -> RawResponse: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    def __init__(self, settings: ProviderSettings, loop: HttpLoop) -> None:
        self._settings = settings
        self._loop = loop
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = await self._loop.run(self._open)

    async def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_concurrency, ttl_dns_cache=300, enable_cleanup_closed=False
        )
        timeout = aiohttp.ClientTimeout(
            total=self._settings.timeout_s, sock_connect=self._settings.connect_timeout_s
        )
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, raise_for_status=False, trust_env=False
        )

    async def send(self, call: HttpCall) -> RawResponse:
        assert self._session is not None, "transport used before open()"
        settings = self._settings
        return await self._loop.run(self._send, self._session, call, settings.first_token_timeout_s,
                                    settings.max_answer_bytes)

    @staticmethod
    async def _send(session: aiohttp.ClientSession, call: HttpCall, first_bytes_s: float | None,
                    most_bytes: int) -> RawResponse:
        """The whole response, of at most `most_bytes`; with `first_bytes_s`, the status line and the first bytes
        must come within it."""
        try:
            async with asyncio.timeout(first_bytes_s) as first_bytes:
                resp = await session.request(call.method, call.url, data=call.body, headers=call.headers,
                                             allow_redirects=False)
                first = await resp.content.readany() if first_bytes_s is not None else b""
                first_bytes.reschedule(None)
        except TimeoutError:
            if first_bytes_s is None:
                raise
            raise FirstTokenTimeout(f"no first token within {first_bytes_s:g} s") from None
        try:
            body = await _body(resp, first, most_bytes)
        except AnswerTooLarge:
            resp.close()
            raise
        finally:
            resp.release()
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return RawResponse(resp.status, headers, body)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await self._loop.run(session.close)


async def _body(resp: aiohttp.ClientResponse, first: bytes, most_bytes: int) -> bytes:
    """The rest of the body after `first`, refused past `most_bytes` (by its declared length before reading)."""
    declared = resp.content_length
    if declared is not None and declared > most_bytes:
        raise AnswerTooLarge(f"the answer declares {declared:,} bytes, over this provider's max_answer_bytes of {most_bytes:,}")
    chunks, size = [first], len(first)
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > most_bytes:
            raise AnswerTooLarge(f"the answer passed {most_bytes:,} bytes (this provider's max_answer_bytes) unfinished")
        chunks.append(chunk)
    return b"".join(chunks)
