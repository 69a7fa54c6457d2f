"""The loop's clock, as the engine's parts read it: the same time anyio reads, virtual under a MockClock."""

from __future__ import annotations

import anyio
import pytest
import trio
import trio.testing

from actors.runtime.clock import current_time, loop_clock


@pytest.mark.anyio
async def test_both_clocks_read_what_anyio_reads(anyio_backend: str) -> None:
    clock = loop_clock()
    before = anyio.current_time()
    readings = (clock(), current_time())
    after = anyio.current_time()
    assert all(before <= reading <= after for reading in readings)


@pytest.mark.trio
async def test_the_loop_clock_follows_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    clock = loop_clock()
    start = clock()
    await trio.sleep(60)
    assert clock() - start == pytest.approx(60)
