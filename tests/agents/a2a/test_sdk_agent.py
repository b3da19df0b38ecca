"""A2AClient against an agent served by the official Python a2a-sdk (1.3), over JSON-RPC and REST."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from agenticaiframework.communication import A2AClient
from agenticaiframework.communication.agents import a2a
from agenticaiframework.communication.agents.a2a import (
    CARD_CACHE,
    A2AAuthError,
    ArtifactUpdate,
    ContentTypeNotSupportedError,
    Message,
    Part,
    StatusUpdate,
    Task,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
from agenticaiframework.communication.agents.a2a.bindings.base import BindingContext
from agenticaiframework.communication.agents.a2a.bindings.jsonrpc import JSONRPCBinding
from agenticaiframework.communication.core import errors

from .sdk_agent import RunningAgent, serve_agent

pytestmark = pytest.mark.asyncio(loop_scope="module")

BINDINGS = ["jsonrpc", "rest"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def agent() -> AsyncIterator[RunningAgent]:
    async with serve_agent() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def secured() -> AsyncIterator[RunningAgent]:
    async with serve_agent(token="s3cret-token") as running:
        yield running


@pytest.mark.parametrize("binding", BINDINGS)
async def test_direct_message_reply(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        assert client.card["name"] == "SDK test agent"
        reply = await client.send("hello there")
    assert isinstance(reply, Message)
    assert reply.role == "agent"
    assert reply.text == "Hello! You said: hello there"
    headers = agent.state.headers[-1]
    assert headers["a2a-version"] == "1.0"


async def test_the_card_chooses_the_first_interface(agent: RunningAgent) -> None:
    async with A2AClient(agent.url) as client:
        assert client.interface.binding == "JSONRPC"
        assert client.interface.url == f"{agent.url}/a2a/jsonrpc"
    async with A2AClient(agent.url, binding="rest") as client:
        assert client.interface.binding == "HTTP+JSON"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_task_runs_to_completed_with_an_artifact(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("task please")
        assert isinstance(task, Task)
        assert task.state == "completed"
        assert task.is_terminal
        assert task.text == "the result"
        assert task.artifacts[0]["name"] == "result"
        again = await client.get_task(task.id, history_length=10)
    assert again.id == task.id
    assert again.state == "completed"
    assert again.history[0].text == "task please"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_stream_sees_submitted_working_artifacts_completed(
    agent: RunningAgent, binding: str
) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        events = [event async for event in client.stream("chunks 4")]
    kinds = [event.kind for event in events]
    assert kinds == ["task", "statusUpdate", *["artifactUpdate"] * 4, "statusUpdate"]
    assert isinstance(events[0], Task) and events[0].state == "submitted"
    assert isinstance(events[1], StatusUpdate) and events[1].state == "working"
    chunks = [e.text for e in events if isinstance(e, ArtifactUpdate)]
    assert chunks == ["chunk 0;", "chunk 1;", "chunk 2;", "chunk 3;"]
    assert [e.append for e in events if isinstance(e, ArtifactUpdate)] == [
        False,
        True,
        True,
        True,
    ]
    last = events[-1]
    assert isinstance(last, StatusUpdate) and last.state == "completed" and last.is_terminal


@pytest.mark.parametrize("binding", BINDINGS)
async def test_stream_of_a_direct_reply_is_one_message(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        events = [event async for event in client.stream("hello stream")]
    assert len(events) == 1 and isinstance(events[0], Message)
    assert events[0].text == "Hello! You said: hello stream"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancel_a_running_task(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("wait", return_immediately=True)
        assert isinstance(task, Task)
        assert task.state in ("submitted", "working")
        canceled = await client.cancel_task(task.id)
        assert canceled.state == "canceled"
        assert (await client.get_task(task.id)).state == "canceled"
        with pytest.raises(TaskNotCancelableError) as info:
            await client.cancel_task(task.id)
    assert info.value.code == "ERR_A2A_TASK_NOT_CANCELABLE"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_a_running_task(agent: RunningAgent, binding: str) -> None:
    agent.state.release.clear()
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("wait", return_immediately=True)
        assert isinstance(task, Task)
        events = []
        async for event in client.subscribe(task.id):
            events.append(event)
            if len(events) == 1:
                agent.state.release.set()
    agent.state.release.clear()
    first = events[0]
    assert isinstance(first, Task) and first.id == task.id
    assert first.state in ("submitted", "working")
    assert any(isinstance(e, ArtifactUpdate) and e.text == "released" for e in events)
    assert isinstance(events[-1], StatusUpdate) and events[-1].state == "completed"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_a_finished_task_is_unsupported(
    agent: RunningAgent, binding: str
) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("task")
        assert isinstance(task, Task)
        with pytest.raises(UnsupportedOperationError) as info:
            async for _ in client.subscribe(task.id):
                pass
    assert info.value.code == "ERR_A2A_UNSUPPORTED_OPERATION"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_input_required_round(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("ask")
        assert isinstance(task, Task)
        assert task.state == "input-required" and task.is_interrupted
        assert task.status_message is not None
        assert task.status_message.text == "what is your name?"
        done = await client.send("Ada", task_id=task.id, context_id=task.context_id)
        assert isinstance(done, Task)
        assert done.id == task.id and done.state == "completed"
        assert done.text == "answer: Ada"
        # The same round, streamed: the stream ends at input-required, the answer's stream at completed.
        first = [e async for e in client.stream("ask")]
        assert isinstance(first[-1], StatusUpdate) and first[-1].state == "input-required"
        task_id = first[-1].task_id
        second = [e async for e in client.stream("Grace", task_id=task_id)]
        assert isinstance(second[-1], StatusUpdate) and second[-1].state == "completed"
        assert [e.text for e in second if isinstance(e, ArtifactUpdate)] == ["answer: Grace"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_unknown_task_id_is_a_clear_error(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        with pytest.raises(TaskNotFoundError) as info:
            await client.get_task("no-such-task")
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task("no-such-task")
    error = info.value
    assert error.code == "ERR_A2A_TASK_NOT_FOUND"
    assert error.remote_code == (-32001 if binding == "jsonrpc" else 404)
    assert isinstance(error, errors.RemoteError)
    assert "GetTask" in str(error) and "not found" in str(error).lower()


@pytest.mark.parametrize("binding", BINDINGS)
async def test_data_and_file_parts_arrive(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send(
            [
                "task",
                {"city": "Paris", "days": 3},
                Part.file(b"\x89PNG...", media_type="image/png", filename="a.png"),
            ]
        )
        assert isinstance(task, Task)
        stored = await client.get_task(task.id, history_length=5)
    parts = stored.history[0].parts
    assert parts[0] == {"text": "task"}
    assert parts[1]["data"] == {"city": "Paris", "days": 3}
    assert parts[2]["mediaType"] == "image/png" and parts[2]["filename"] == "a.png"
    assert parts[2]["raw"] == "iVBORy4uLg=="


@pytest.mark.parametrize("binding", BINDINGS)
async def test_list_tasks_of_a_context(agent: RunningAgent, binding: str) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        first = await client.send("task one")
        assert isinstance(first, Task)
        await client.send("task two", context_id=first.context_id)
        page = await client.list_tasks(context_id=first.context_id, state="completed")
    assert page["tasks"] and all(isinstance(t, Task) for t in page["tasks"])
    assert {t.context_id for t in page["tasks"]} == {first.context_id}
    assert len(page["tasks"]) == 2


async def test_extensions_header_is_sent(agent: RunningAgent) -> None:
    async with A2AClient(agent.url, extensions=["https://ext.example/a/v1", "urn:b"]) as client:
        await client.send("hello")
    assert agent.state.headers[-1]["a2a-extensions"] == "https://ext.example/a/v1,urn:b"


async def test_a_wrong_version_is_refused_by_the_agent(agent: RunningAgent) -> None:
    # Our A2A-Version header wins over one in headers=; the agent refuses 0.3 on its own.
    async with A2AClient(agent.url, headers={"a2a-version": "0.3"}) as client:
        assert isinstance(await client.send("hello"), Message)
    assert agent.state.headers[-1]["a2a-version"] == "1.0"
    binding = JSONRPCBinding(
        BindingContext(
            url=f"{agent.url}/a2a/jsonrpc",
            protocol_binding="JSONRPC",
            service_params={"A2A-Version": "0.3"},
        )
    )
    await binding.open()
    try:
        with pytest.raises(VersionNotSupportedError) as info:
            await binding.get_task({"id": "x"})
    finally:
        await binding.close()
    assert info.value.code == "ERR_A2A_VERSION_NOT_SUPPORTED"
    assert info.value.remote_code == -32009


async def test_card_is_cached_by_etag(agent: RunningAgent) -> None:
    CARD_CACHE.clear()
    before = len(agent.state.card_requests)
    async with A2AClient(agent.url) as client:
        card = client.card
    async with A2AClient(agent.url) as client:
        assert client.card == card
    requests = agent.state.card_requests[before:]
    assert len(requests) == 2
    assert "if-none-match" not in requests[0]
    assert requests[1]["if-none-match"].startswith('W/"')
    async with A2AClient(agent.url, card_cache=False) as client:
        assert client.card == card
    assert "if-none-match" not in agent.state.card_requests[-1]
    CARD_CACHE.clear()


# -- bearer auth ------------------------------------------------------------------------


@pytest.mark.parametrize("binding", BINDINGS)
async def test_bearer_token_from_the_card_scheme(secured: RunningAgent, binding: str) -> None:
    async with A2AClient(secured.url, binding=binding, auth="s3cret-token") as client:
        reply = await client.send("hello")
    assert isinstance(reply, Message)
    assert secured.state.headers[-1]["authorization"] == "Bearer s3cret-token"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_missing_credentials_say_what_the_card_asks_for(
    secured: RunningAgent, binding: str
) -> None:
    async with A2AClient(secured.url, binding=binding) as client:
        with pytest.raises(A2AAuthError) as info:
            await client.send("hello")
        with pytest.raises(A2AAuthError):
            async for _ in client.stream("task"):
                pass
    error = info.value
    assert error.code == "ERR_AUTH" and error.status_code == 401
    assert "bearer" in str(error).lower() and "auth=" in str(error)


async def test_wrong_token_is_refused_and_not_printed(secured: RunningAgent) -> None:
    async with A2AClient(secured.url, auth="wrong-token") as client:
        with pytest.raises(A2AAuthError) as info:
            await client.send("hello")
        assert "wrong-token" not in repr(client)
    assert "wrong-token" not in str(info.value)


async def test_close_mid_stream_leaves_nothing_running(agent: RunningAgent) -> None:
    async with A2AClient(agent.url) as client:
        async for event in client.stream("chunks 50 0.01"):
            if isinstance(event, ArtifactUpdate):
                break
    assert client.is_closed
    with pytest.raises(errors.ClosedError):
        await client.send("hello")
    await asyncio.sleep(0)


async def test_api_key_goes_where_the_card_says() -> None:
    async with serve_agent(token="key-123", auth_kind="apikey") as keyed:
        async with A2AClient(keyed.url, auth="key-123") as client:
            reply = await client.send("hello")
        async with A2AClient(keyed.url) as client:
            with pytest.raises(A2AAuthError) as info:
                await client.send("hello")
    assert isinstance(reply, Message)
    assert keyed.state.headers[-2]["x-agent-key"] == "key-123"
    assert "authorization" not in keyed.state.headers[-2]
    assert "X-Agent-Key" in str(info.value)


async def test_oauth2_client_credentials_at_the_card_token_url() -> None:
    async with serve_agent(token="issued-token", auth_kind="oauth2") as guarded:
        credentials = {"client_id": "agent-client", "client_secret": "shh-secret"}
        async with A2AClient(guarded.url, binding="rest", auth=credentials) as client:
            reply = await client.send("hello")
            await client.send("hello again")
    assert isinstance(reply, Message)
    assert guarded.state.headers[-1]["authorization"] == "Bearer issued-token"
    assert len(guarded.state.token_requests) == 1  # cached for the second call
    headers, form = guarded.state.token_requests[0]
    assert "grant_type=client_credentials" in form
    assert "scope=agent.use" in form
    assert headers["authorization"].startswith("Basic ")


async def test_the_interface_tenant_goes_into_every_request(agent: RunningAgent) -> None:
    # JSON-RPC carries it in params (HTTP+JSON in the path: see test_hostile.py).
    async with A2AClient(agent.url, card_cache=False) as plain:
        card = dict(plain.card)
    card["supportedInterfaces"] = [{**i, "tenant": "acme"} for i in card["supportedInterfaces"]]
    async with A2AClient(card=card, binding="jsonrpc") as client:
        assert client.interface.tenant == "acme"
        task = await client.send("task")
        assert isinstance(task, Task)
        assert (await client.get_task(task.id)).state == "completed"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_media_type_the_card_does_not_take_is_refused(
    agent: RunningAgent, binding: str
) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        assert "audio/wav" not in client.card["defaultInputModes"]
        with pytest.raises(ContentTypeNotSupportedError) as info:
            await client.send(b"RIFF....WAVE", media_type="audio/wav")
    assert info.value.code == "ERR_A2A_CONTENT_TYPE_NOT_SUPPORTED"
    assert info.value.remote_code == (-32005 if binding == "jsonrpc" else 400)
    assert "audio/wav" in str(info.value)


async def test_stream_from_an_agent_that_cannot_stream_is_one_send() -> None:
    async with serve_agent() as plain:
        plain.advertise(plain.url, streaming=False)
        async with A2AClient(plain.url, card_cache=False) as client:
            events = [event async for event in client.stream("task")]
    assert len(events) == 1
    assert isinstance(events[0], Task) and events[0].state == "completed"
    assert plain.state.headers and all(
        "text/event-stream" not in h.get("accept", "") for h in plain.state.headers
    )


@pytest.mark.parametrize("binding", BINDINGS)
async def test_push_and_extended_card_errors_keep_their_codes(
    agent: RunningAgent, binding: str
) -> None:
    async with A2AClient(agent.url, binding=binding) as client:
        task = await client.send("task")
        assert isinstance(task, Task)
        with pytest.raises(a2a.A2AError) as push:
            await client.set_push_config(task.id, "https://hooks.example.com/a2a", token="t")
        with pytest.raises(a2a.A2AError) as extended:
            await client.get_extended_card()
    assert push.value.code == "ERR_A2A_PUSH_NOT_SUPPORTED"
    assert extended.value.code in (
        "ERR_A2A_EXTENDED_CARD_NOT_CONFIGURED",
        "ERR_A2A_UNSUPPORTED_OPERATION",
    )


async def test_health_check(agent: RunningAgent) -> None:
    async with A2AClient(agent.url) as client:
        status = await client.health_check()
    assert status.is_healthy and "SDK test agent" in status.detail
    down = await A2AClient(f"{agent.url}/nowhere/card.json").health_check()
    assert not down.is_healthy and "404" in down.detail
