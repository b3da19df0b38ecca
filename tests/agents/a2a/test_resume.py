"""A task stream cut by the FaultProxy mid-task: the client resubscribes, every update arrives once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from agenticaiframework.communication import A2AClient
from agenticaiframework.communication.agents.a2a import ArtifactUpdate, StatusUpdate, Task
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.testing.proxy import FaultProxy

from .sdk_agent import RunningAgent, serve_agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

BINDINGS = ["jsonrpc", "rest"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def proxied() -> AsyncIterator[tuple[RunningAgent, FaultProxy]]:
    async with serve_agent() as agent:
        async with FaultProxy(agent.url) as proxy:
            agent.advertise(proxy.url)
            yield agent, proxy


def _chunks(events: Sequence[object]) -> list[str]:
    return [e.text for e in events if isinstance(e, ArtifactUpdate)]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_stream_cut_mid_task_resumes_without_loss_or_repeat(
    proxied: tuple[RunningAgent, FaultProxy], binding: str
) -> None:
    agent, proxy = proxied
    count = 30
    events: list[object] = []
    async with A2AClient(agent.url, binding=binding, resume_delay=0.05, card_cache=False) as client:
        cuts = 0
        async for event in client.stream(f"chunks {count} 0.02"):
            events.append(event)
            if isinstance(event, ArtifactUpdate) and event.text in ("chunk 5;", "chunk 17;"):
                cuts += 1
                await proxy.cut()
        reconnects = client.stats.reconnects
    assert cuts == 2
    assert reconnects >= 2
    assert "".join(_chunks(events)) == "".join(f"chunk {i};" for i in range(count))
    statuses = [e.state for e in events if isinstance(e, StatusUpdate)]
    assert statuses.count("completed") == 1
    assert isinstance(events[-1], StatusUpdate) and events[-1].state == "completed"
    assert isinstance(events[0], Task)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscription_cut_resumes_too(
    proxied: tuple[RunningAgent, FaultProxy], binding: str
) -> None:
    agent, proxy = proxied
    agent.state.release.clear()
    async with A2AClient(agent.url, binding=binding, resume_delay=0.05) as client:
        task = await client.send("wait", return_immediately=True)
        assert isinstance(task, Task)
        events = []
        async for event in client.subscribe(task.id):
            events.append(event)
            if len(events) == 1:
                await proxy.cut()
                agent.state.release.set()
    agent.state.release.clear()
    assert isinstance(events[0], Task)
    assert _chunks(events) == ["released"]
    assert [e.state for e in events if isinstance(e, StatusUpdate)][-1:] == ["completed"]


async def test_cut_before_the_task_is_named_is_not_resent(
    proxied: tuple[RunningAgent, FaultProxy],
) -> None:
    agent, proxy = proxied
    async with A2AClient(agent.url, resume_delay=0.05) as client:
        await client.send("hello")  # the connection is open
        proxy.stall = True
        try:
            stream = client.stream("chunks 3")
            pending = stream.__anext__()
            task = asyncio.ensure_future(pending)
            await asyncio.sleep(0.2)
            await proxy.reset()
            proxy.resume()
            with pytest.raises(errors.ConnectionError) as info:
                await task
            await stream.aclose()
        finally:
            proxy.resume()
    assert "cannot be resumed" in str(info.value)


async def test_gives_up_after_max_resumes(proxied: tuple[RunningAgent, FaultProxy]) -> None:
    agent, proxy = proxied
    events = []
    async with A2AClient(agent.url, resume_delay=0.01, max_resumes=2) as client:
        with pytest.raises(errors.ConnectionError) as info:
            async for event in client.stream("chunks 40 0.02"):
                events.append(event)
                if isinstance(event, ArtifactUpdate):
                    proxy.refuse = True
                    await proxy.reset()
        proxy.resume()
    assert "gave up resuming" in str(info.value)
    assert client.stats.reconnects == 2


async def test_task_that_ends_while_the_stream_is_down_still_ends_the_loop(
    proxied: tuple[RunningAgent, FaultProxy],
) -> None:
    agent, proxy = proxied
    events: list[object] = []
    async with A2AClient(agent.url, resume_delay=0.05) as client:
        direct_card = dict(client.card)
        direct_card["supportedInterfaces"] = [
            {**i, "url": i["url"].replace(proxy.url, agent.url)}
            for i in client.card["supportedInterfaces"]
        ]
        async with A2AClient(card=direct_card) as direct:
            async for event in client.stream("chunks 6 0.05"):
                events.append(event)
                if isinstance(event, ArtifactUpdate) and event.text == "chunk 0;":
                    await proxy.reset()
                    task_id = event.task_id
                    # The task ends while nobody listens: resubscribing is then refused.
                    while (await direct.get_task(task_id)).state != "completed":
                        await asyncio.sleep(0.05)
    assert "".join(_chunks(events)) == "".join(f"chunk {i};" for i in range(6))
    assert isinstance(events[-1], StatusUpdate) and events[-1].state == "completed"


async def test_a_gateway_error_while_resuming_is_tried_again(
    proxied: tuple[RunningAgent, FaultProxy],
) -> None:
    agent, proxy = proxied
    events: list[object] = []
    async with A2AClient(agent.url, binding="rest", resume_delay=0.05) as client:
        async for event in client.stream("chunks 8 0.03"):
            events.append(event)
            if isinstance(event, ArtifactUpdate) and event.text == "chunk 1;":
                agent.state.failing_subscribes = 2
                await proxy.cut()
        reconnects = client.stats.reconnects
    assert agent.state.failing_subscribes == 0
    assert reconnects == 3
    assert "".join(_chunks(events)) == "".join(f"chunk {i};" for i in range(8))
    assert isinstance(events[-1], StatusUpdate) and events[-1].state == "completed"
