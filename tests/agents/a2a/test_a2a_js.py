"""A2AClient against an agent served by the official JavaScript SDK (@a2a-js/sdk 1.3.0).

The agent (tests/node/a2a_agent.mjs) runs under Node on 127.0.0.1, with
JSON-RPC and HTTP+JSON (REST) interfaces; one server is shared by the tests of
this module. What it does is chosen by the message text: ``hello`` (a direct
reply), ``task N MS`` (a task streaming N artifact chunks MS ms apart),
``ask`` (input-required), ``fail``; ``/secure`` is the same agent behind a
bearer token.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agenticaiframework.communication.agents.a2a.client import A2AClient
from agenticaiframework.communication.agents.a2a.errors import A2AAuthError, TaskNotFoundError
from agenticaiframework.communication.agents.a2a.types import A2AObject
from agenticaiframework.communication.testing.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "tests" / "node"
TOKEN = "js-test-token"
BINDINGS = ["jsonrpc", "rest"]


def node_agent_command() -> list[str]:
    """``node a2a_agent.mjs 0 TOKEN``; fails the test clearly when Node or the SDK is missing."""
    if not (NODE_DIR / "node_modules" / "@a2a-js" / "sdk").is_dir():
        pytest.fail(
            "tests/node/node_modules is missing (the official A2A JavaScript SDK): "
            "run scripts/setup (or `cd tests/node && npm ci`)",
            pytrace=False,
        )
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ and run scripts/setup", pytrace=False)
    return [node, str(NODE_DIR / "a2a_agent.mjs"), "0", TOKEN]


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    """The JS agent's base URL (one Node process for the module)."""
    proc = subprocess.Popen(
        node_agent_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=NODE_DIR,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(30)
        line = proc.stdout.readline() if ready else b"(no READY line in 30 s)"
        if not line.startswith(b"READY "):
            pytest.fail(f"the JS A2A agent did not start: {line[:300]!r}", pytrace=False)
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()


async def collect(events: AsyncIterator[A2AObject]) -> list[A2AObject]:
    return [event async for event in events]


def states(events: list[A2AObject]) -> list[str]:
    return [e.state for e in events if e.kind in ("task", "statusUpdate")]  # type: ignore[attr-defined]


def artifact_text(events: list[A2AObject]) -> str:
    return "".join(e.text for e in events if e.kind == "artifactUpdate")  # type: ignore[attr-defined]


# ------------------------------------------------------------------ basics, per binding


@pytest.mark.parametrize("binding", BINDINGS)
async def test_card_and_a_direct_message_reply(agent_url: str, binding: str) -> None:
    async with A2AClient(agent_url, binding=binding) as agent:
        assert agent.card["name"] == "JS test agent"
        reply = await agent.send("hello there")
        assert reply.kind == "message"
        assert reply.text == "echo: hello there"  # type: ignore[union-attr]
        data = await agent.send({"city": "Oslo", "days": 3})
        assert data.kind == "message"
        assert data.parts[0]["data"] == {"city": "Oslo", "days": 3}  # type: ignore[union-attr]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_task_streams_from_submitted_to_completed_with_its_artifact(
    agent_url: str, binding: str
) -> None:
    async with A2AClient(agent_url, binding=binding) as agent:
        events = await collect(agent.stream("task 3"))
        assert [e.kind for e in events] == [
            "task",
            "statusUpdate",
            "artifactUpdate",
            "artifactUpdate",
            "artifactUpdate",
            "statusUpdate",
        ]
        assert states(events) == ["submitted", "working", "completed"]
        assert artifact_text(events) == "chunk 1;chunk 2;chunk 3;"
        task_id = events[0]["id"]

        task = await agent.get_task(task_id)
        assert task.state == "completed"
        [report] = task.artifacts
        assert "".join(p["text"] for p in report["parts"]) == "chunk 1;chunk 2;chunk 3;"

        # Not streamed: SendMessage waits for the task to finish.
        done = await agent.send("task 2")
        assert done.kind == "task" and done.state == "completed"  # type: ignore[union-attr]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_input_required_round(agent_url: str, binding: str) -> None:
    async with A2AClient(agent_url, binding=binding) as agent:
        first = await collect(agent.stream("ask"))
        assert states(first)[-1] == "input-required"
        question = first[-1]
        assert question.message.text == "what is your name?"  # type: ignore[attr-defined]
        task_id, context_id = question["taskId"], question["contextId"]

        second = await collect(agent.stream("Ada", task_id=task_id, context_id=context_id))
        assert states(second)[-1] == "completed"
        assert artifact_text(second) == "hello, Ada"
        assert {e.get("taskId") or e.get("id") for e in second} == {task_id}


@pytest.mark.parametrize("binding", BINDINGS)
async def test_unknown_task_id_is_a_clear_error_with_a_stable_code(
    agent_url: str, binding: str
) -> None:
    async with A2AClient(agent_url, binding=binding) as agent:
        for call in (
            agent.get_task("no-such-task"),
            agent.cancel_task("no-such-task"),
            collect(agent.subscribe("no-such-task")),
        ):
            with pytest.raises(TaskNotFoundError) as info:
                await call
            assert info.value.code == "ERR_A2A_TASK_NOT_FOUND"


async def test_a_failed_task_ends_the_stream_in_failed(agent_url: str) -> None:
    async with A2AClient(agent_url) as agent:
        events = await collect(agent.stream("fail"))
    assert states(events)[-1] == "failed"
    assert events[-1].message.text == "it went wrong"  # type: ignore[attr-defined]


# ------------------------------------------------------------------ running tasks


async def _first_event(events: AsyncIterator[A2AObject]) -> A2AObject:
    return await anext(events)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_cancel_a_running_task(agent_url: str, binding: str) -> None:
    async with A2AClient(agent_url, binding=binding) as agent:
        stream = agent.stream("task 400 50")
        try:
            opening = await _first_event(stream)
            task_id = opening["id"]
            canceled = await agent.cancel_task(task_id)
            assert canceled.state == "canceled"
            rest = await collect(stream)
        finally:
            await stream.aclose()
        assert states(rest)[-1] == "canceled"
        assert (await agent.get_task(task_id)).state == "canceled"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_a_running_task(agent_url: str, binding: str) -> None:
    async with (
        A2AClient(agent_url, binding=binding) as sender,
        A2AClient(agent_url, binding=binding) as watcher,
    ):
        stream = sender.stream("task 10 60")
        try:
            task_id = (await _first_event(stream))["id"]
            watched = await collect(watcher.subscribe(task_id))
            sent = await collect(stream)
        finally:
            await stream.aclose()
    assert watched[0].kind == "task" and watched[0]["id"] == task_id
    assert states(watched)[-1] == "completed"
    # The snapshot's artifact plus the live chunks: every chunk once, in order.
    snapshot_text = "".join(
        p["text"] for a in watched[0].get("artifacts") or () for p in a["parts"]
    )
    assert snapshot_text + artifact_text(watched[1:]) == "".join(
        f"chunk {i};" for i in range(1, 11)
    )
    assert states(sent)[-1] == "completed"


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("binding", BINDINGS)
async def test_bearer_auth_from_the_card(agent_url: str, binding: str) -> None:
    secure = f"{agent_url}/secure"
    async with A2AClient(secure, binding=binding) as anonymous:
        assert "bearer" in anonymous.card["securitySchemes"]
        with pytest.raises(A2AAuthError) as info:
            await anonymous.send("hello")
        assert info.value.code == "ERR_AUTH" and info.value.status_code == 401
    async with A2AClient(secure, binding=binding, auth="wrong") as wrong:
        with pytest.raises(A2AAuthError):
            await wrong.send("hello")
    async with A2AClient(secure, binding=binding, auth=TOKEN) as agent:
        reply = await agent.send("hello")
        assert reply.text == "echo: hello"  # type: ignore[union-attr]
        events = await collect(agent.stream("task 2"))
        assert states(events)[-1] == "completed"


# ------------------------------------------------------------------ a stream cut mid-task


async def _card_through(proxy: FaultProxy, agent_url: str) -> dict[str, Any]:
    """The agent's card with its interfaces pointed at the proxy."""
    async with httpx.AsyncClient() as http:
        card: dict[str, Any] = (await http.get(f"{agent_url}/.well-known/agent-card.json")).json()
    for interface in card["supportedInterfaces"]:
        interface["url"] = interface["url"].replace(agent_url, f"http://127.0.0.1:{proxy.port}")
    return card


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_stream_cut_mid_task_resumes_and_every_update_arrives_once(
    agent_url: str, binding: str
) -> None:
    chunks = 30
    async with FaultProxy(agent_url) as proxy:
        card = await _card_through(proxy, agent_url)
        async with A2AClient(card=card, binding=binding, resume_delay=0.05) as agent:
            events: list[A2AObject] = []
            cuts = 0
            async for event in agent.stream(f"task {chunks} 40"):
                events.append(event)
                seen = sum(1 for e in events if e.kind == "artifactUpdate")
                if seen in (5, 15) and cuts < (1 if seen == 5 else 2):
                    cuts += 1
                    await proxy.cut()
            assert cuts == 2
            assert proxy.accepted >= 3  # the first stream, then one re-subscription per cut
    assert states(events)[-1] == "completed"
    assert states(events).count("completed") == 1
    assert artifact_text(events) == "".join(f"chunk {i};" for i in range(1, chunks + 1))


async def test_leaving_a_stream_early_closes_it_and_the_task_can_still_be_canceled(
    agent_url: str,
) -> None:
    async with A2AClient(agent_url) as agent:
        stream = agent.stream("task 400 50")
        try:
            first = await _first_event(stream)
        finally:
            await stream.aclose()
        # The task keeps running on the agent; cancel it so the agent is idle again.
        canceled = await agent.cancel_task(first["id"])
    assert canceled.state == "canceled"


def test_a_js_sdk_card_with_oauth2_flows_in_oneof_form_is_read() -> None:
    """The JS SDK serves oneofs as {"$case", "value"}; the card still names its token URL."""
    from agenticaiframework.communication.agents.a2a.card import auth_from_card, validate_card

    card = validate_card(
        {
            "name": "js",
            "supportedInterfaces": [
                {
                    "url": "https://a.example/rpc",
                    "protocolBinding": "JSONRPC",
                    "protocolVersion": "1.0",
                }
            ],
            "securitySchemes": {
                "oauth": {
                    "scheme": {
                        "$case": "oauth2SecurityScheme",
                        "value": {
                            "description": "",
                            "flows": {
                                "flow": {
                                    "$case": "clientCredentials",
                                    "value": {"tokenUrl": "https://a.example/token", "scopes": {}},
                                }
                            },
                        },
                    }
                }
            },
            "securityRequirements": [{"schemes": {"oauth": {"list": []}}}],
        },
        source="test",
    )
    assert card["securitySchemes"]["oauth"] == {
        "oauth2SecurityScheme": {
            "description": "",
            "flows": {"clientCredentials": {"tokenUrl": "https://a.example/token", "scopes": {}}},
        }
    }
    _auth, token_url = auth_from_card(
        card, {"client_id": "id", "client_secret": "secret"}, allow_insecure=False
    )
    assert token_url == "https://a.example/token"
