"""Each failure kind, in each wire protocol, over real loopback HTTP to the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import attrs
import pytest

from actors.catalog import CODEC
from actors.messages import ChatMessage, FailureKind
from actors.providers.actor import ProviderActor
from actors.providers.messages import ProviderCall, ProviderReply
from actors.providers.settings import ProviderSettings
from actors.providers.transport import AiohttpTransport
from actors.runtime.bridge import SameLoop
from actors.runtime.supervisor import Supervisor
from orchestrator.simulator import FaultRule, Simulator, SimulatorSettings, serve

BASES = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}
CALL = ProviderCall("req", 1, (ChatMessage("user", "say something"),), 40, 0.5, None, (), 100)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with serve(SimulatorSettings(seed=3, hang_s=5, slow_body_s=0.2)) as sim:
        yield sim


async def call_once(url: str, protocol: str, call: ProviderCall = CALL, **changes: object) -> ProviderReply:
    settings = ProviderSettings(
        name="p", protocol=protocol, base_url=url + BASES[protocol], model="m",
        input_price_nd_per_mtok=1, output_price_nd_per_mtok=1, timeout_s=0.5, connect_timeout_s=0.5,
    )
    settings = attrs.evolve(settings, **changes)
    supervisor = Supervisor(CODEC)
    ref = supervisor.add("p", lambda: ProviderActor(settings, AiohttpTransport(settings, SameLoop()), failures_to_crash=100))
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        reply = await ref.ask(call, timeout=10)
        supervisor.stop()
    return reply


FAULTS = [
    ("rate_limit", FailureKind.RATE_LIMIT),
    ("server_error", FailureKind.SERVER_ERROR),
    ("hang", FailureKind.TIMEOUT),
    ("drop", FailureKind.UNAVAILABLE),
    ("context_length", FailureKind.CONTEXT_LENGTH),
    ("malformed", FailureKind.MALFORMED_RESPONSE),
    ("missing_usage", FailureKind.MALFORMED_RESPONSE),
    ("auth", FailureKind.AUTH),
]


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", sorted(BASES))
@pytest.mark.parametrize(("fault", "kind"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_each_injected_fault_is_classified(simulator: Simulator, protocol: str, fault: str, kind: FailureKind) -> None:
    simulator.set_faults([FaultRule(kind=fault, count=1, retry_after=3.0)])
    reply = await call_once(simulator.url, protocol)
    assert reply.failure == kind.value, reply.detail
    if kind is FailureKind.RATE_LIMIT:
        assert reply.retry_after_s == 3.0


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", sorted(BASES))
async def test_a_healthy_answer_respects_max_tokens_and_is_deterministic(simulator: Simulator, protocol: str) -> None:
    first = await call_once(simulator.url, protocol)
    second = await call_once(simulator.url, protocol)
    assert first.ok and first.text == second.text
    assert 0 < first.output_tokens <= CALL.max_tokens and first.input_tokens > 0


@pytest.mark.anyio
async def test_a_slow_body_still_arrives(simulator: Simulator) -> None:
    simulator.set_faults([FaultRule(kind="slow_body", count=1)])
    reply = await call_once(simulator.url, "openai")
    assert reply.ok and reply.latency_s >= 0.15


@pytest.mark.anyio
async def test_ignoring_max_tokens_is_visible_in_the_usage(simulator: Simulator) -> None:
    simulator.set_faults([FaultRule(kind="ignore_max_tokens", count=1)])
    reply = await call_once(simulator.url, "openai")
    assert reply.ok and reply.output_tokens > CALL.max_tokens


@pytest.mark.anyio
async def test_connection_refused_is_unavailable() -> None:
    reply = await call_once("http://127.0.0.1:9", "openai")
    assert reply.failure == FailureKind.UNAVAILABLE.value


@pytest.mark.anyio
async def test_a_scheduled_outage_starts_and_ends(simulator: Simulator) -> None:
    simulator.set_faults([FaultRule(kind="server_error", schedule=((0.0, 0.3),))])
    during = await call_once(simulator.url, "openai")
    await anyio.sleep(0.35)
    after = await call_once(simulator.url, "openai")
    assert during.failure == FailureKind.SERVER_ERROR.value and after.ok


@pytest.mark.anyio
async def test_a_missing_key_variable_is_an_auth_failure_naming_it(simulator: Simulator) -> None:
    reply = await call_once(simulator.url, "openai", api_key_env="ORCH_TEST_UNSET_KEY")
    assert reply.failure == FailureKind.AUTH.value
    assert "ORCH_TEST_UNSET_KEY is not set" in reply.detail


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["sk-test-4242\r", "sk-test-4242\n", "sk-te\x01st-4242"])
async def test_a_key_no_header_can_carry_is_an_auth_failure_naming_its_variable(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """A key with a trailing carriage return (a .env written on Windows) failed every call as UNKNOWN, its money
    held as if the provider might have billed, while nothing left the machine."""
    monkeypatch.setenv("ORCH_TEST_CR_KEY", key)
    reply = await call_once(simulator.url, "openai", api_key_env="ORCH_TEST_CR_KEY")
    assert (reply.failure, reply.sent) == (FailureKind.AUTH.value, False)
    assert "ORCH_TEST_CR_KEY holds a control character" in reply.detail and "sk-te" not in reply.detail


def test_the_simulator_thread_works_from_plain_synchronous_code() -> None:
    import urllib.request

    from orchestrator.simulator import SimulatorThread

    with SimulatorThread(SimulatorSettings()) as sim:
        request = urllib.request.Request(
            sim.url + "/v1/chat/completions", data=b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert sim.stats()["openai:m:requests"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["oversized", "oversized_stream"])
async def test_an_answer_past_max_answer_bytes_fails_the_call_without_being_read_whole(fault: str) -> None:
    """A body over the provider's bound, declared or not, is a malformed answer (held: it may have been billed),
    and the next call on the same provider is served."""
    async with serve(SimulatorSettings(seed=3, oversized_bytes=3 * 1024 * 1024)) as sim:
        sim.set_faults([FaultRule(kind=fault, count=1)])
        refused = await call_once(sim.url, "openai", max_answer_bytes=1024 * 1024)
        served = await call_once(sim.url, "openai", max_answer_bytes=1024 * 1024)
        within = await call_once(sim.url, "openai", max_answer_bytes=4 * 1024 * 1024)
    assert refused.failure == FailureKind.MALFORMED_RESPONSE.value and refused.sent
    assert "max_answer_bytes" in refused.detail and ("declares 3,145,728 bytes" in refused.detail) == (fault == "oversized")
    assert served.ok and within.ok


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", sorted(BASES))
async def test_a_redirect_is_not_followed_and_the_key_never_reaches_its_target(
    simulator: Simulator, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint that answers 307 to another address: Anthropic's and Gemini's key headers would go along (only
    Authorization is dropped for another host). The call fails as a wrong address (AUTH, nothing billed)."""
    from aiohttp import web

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(simulator.url + request.path)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("WIRE_TEST_KEY", "sk-wire-secret")
    try:
        reply = await call_once(f"http://127.0.0.1:{port}", protocol, api_key_env="WIRE_TEST_KEY")
    finally:
        await runner.cleanup()
    assert reply.failure == FailureKind.AUTH.value and not reply.sent
    assert "a redirect to " + simulator.url in reply.detail and "sk-wire-secret" not in reply.detail
    assert not any(key.endswith(":requests") for key in simulator.stats()), "the simulator behind it was never called"
