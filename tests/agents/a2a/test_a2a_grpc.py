"""A2AClient over the gRPC binding, against the official Python a2a-sdk's gRPC server.

The server is the SDK's ``GrpcHandler`` (over its own compiled ``a2a_pb2``) on
a grpc.aio server bound to 127.0.0.1, driven by the test agent of
``sdk_agent.py``; the agent card, served over HTTP by the SDK's card route,
lists the gRPC interface first. Our side compiles the vendored ``a2a.proto``
at run time through GRPCClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.request_handlers.grpc_handler import GrpcHandler
from a2a.server.routes import create_agent_card_routes
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.types import AgentInterface, a2a_pb2, a2a_pb2_grpc
from google.protobuf import json_format
from starlette.applications import Starlette

from agenticaiframework.communication.agents.a2a.bindings.grpc import (
    PROTO_FILE,
    SERVICE,
    grpc_target,
    stream_response_dict,
)
from agenticaiframework.communication.agents.a2a.client import A2AClient
from agenticaiframework.communication.agents.a2a.errors import A2AAuthError, TaskNotFoundError
from agenticaiframework.communication.agents.a2a.types import A2AObject
from agenticaiframework.communication.core.errors import ConfigError, ConnectionError, SecurityError
from agenticaiframework.communication.grpc.descriptors import schema_from_protos
from agenticaiframework.communication.testing.http import serve_asgi
from agenticaiframework.communication.testing.proxy import FaultProxy
from tests.agents.a2a.sdk_agent import AgentState, SDKAgentExecutor, build_card

TOKEN = "grpc-test-token"


class _RequireBearer(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without ``authorization: Bearer <token>`` (UNAUTHENTICATED)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        metadata = dict(details.invocation_metadata or ())
        handler = await continuation(details)
        if metadata.get("authorization") == f"Bearer {self.token}" or handler is None:
            return handler

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required")

        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                refuse, handler.request_deserializer, handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            refuse, handler.request_deserializer, handler.response_serializer
        )


class _Late:
    """An ASGI app set once the card (which names the server's URL) can be built."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class GRPCAgent:
    """The running agent: its base URL (card), gRPC port, state and card (a dict)."""

    url: str
    port: int
    state: AgentState
    card: dict[str, Any]

    def card_for(self, address: str) -> dict[str, Any]:
        """The card with its gRPC interface at ``address`` (e.g. a FaultProxy's)."""
        card: dict[str, Any] = json_format.MessageToDict(
            json_format.ParseDict(self.card, a2a_pb2.AgentCard())
        )
        card["supportedInterfaces"][0]["url"] = address
        return card


@contextlib.asynccontextmanager
async def serve_grpc_agent(
    token: str | None = None, tls: tuple[bytes, bytes] | None = None
) -> AsyncIterator[GRPCAgent]:
    """The SDK's gRPC server (plus the card over HTTP) on 127.0.0.1, for the block.

    ``tls``: (private key, certificate chain) PEM: serve gRPC over TLS.
    """
    state = AgentState()
    server = grpc.aio.server(interceptors=[_RequireBearer(token)] if token else [])
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([tls]))
    late = _Late()
    async with serve_asgi(late) as url:
        card = build_card(url, token=token)
        interfaces = list(card.supported_interfaces)
        del card.supported_interfaces[:]
        grpc_interface = AgentInterface(
            protocol_binding="GRPC", protocol_version="1.0", url=f"127.0.0.1:{port}"
        )
        card.supported_interfaces.extend([grpc_interface, *interfaces])
        handler = DefaultRequestHandlerV2(
            agent_executor=SDKAgentExecutor(state), task_store=InMemoryTaskStore(), agent_card=card
        )
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)  # type: ignore[no-untyped-call]
        late.app = Starlette(routes=create_agent_card_routes(card))
        await server.start()
        try:
            yield GRPCAgent(url, port, state, json_format.MessageToDict(card))
        finally:
            await server.stop(0.5)


@pytest.fixture
async def agent() -> AsyncIterator[GRPCAgent]:
    async with serve_grpc_agent() as running:
        yield running


async def collect(events: AsyncIterator[A2AObject]) -> list[A2AObject]:
    return [event async for event in events]


def states(events: list[A2AObject]) -> list[str]:
    return [e.state for e in events if e.kind in ("task", "statusUpdate")]  # type: ignore[attr-defined]


def artifact_text(events: list[A2AObject]) -> str:
    return "".join(e.text for e in events if e.kind == "artifactUpdate")  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the proto and the address


def test_the_vendored_proto_describes_what_the_official_sdk_compiled() -> None:
    ours = schema_from_protos([PROTO_FILE]).pool.FindFileByName("a2a.proto")
    theirs = a2a_pb2.DESCRIPTOR

    def message(d: Any) -> Any:
        return (
            d.full_name,
            [
                (
                    f.name,
                    f.number,
                    f.type,
                    f.message_type.full_name if f.message_type else None,
                    f.enum_type.full_name if f.enum_type else None,
                    f.containing_oneof.name if f.containing_oneof else None,
                    f.json_name,
                )
                for f in d.fields
            ],
            [message(n) for n in d.nested_types],
            [(e.full_name, [(v.name, v.number) for v in e.values]) for e in d.enum_types],
        )

    def file(fd: Any) -> Any:
        return (
            fd.package,
            [message(m) for m in fd.message_types_by_name.values()],
            [
                (e.full_name, [(v.name, v.number) for v in e.values])
                for e in fd.enum_types_by_name.values()
            ],
            [
                (
                    m.full_name,
                    m.input_type.full_name,
                    m.output_type.full_name,
                    m.client_streaming,
                    m.server_streaming,
                )
                for s in fd.services_by_name.values()
                for m in s.methods
            ],
        )

    assert file(ours) == file(theirs)
    assert SERVICE in ours.services_by_name.get("A2AService").full_name


@pytest.mark.parametrize(
    "event",
    [
        {
            "statusUpdate": {
                "taskId": "t",
                "contextId": "c",
                "status": {
                    "state": "TASK_STATE_WORKING",
                    "timestamp": "2026-12-02T08:07:12.481829Z",
                },
            }
        },
        {"statusUpdate": {"taskId": "t", "status": {"state": "TASK_STATE_COMPLETED"}}},
        {"statusUpdate": {"contextId": "c", "status": {"timestamp": "2026-12-02T08:07:12Z"}}},
        {"statusUpdate": {"taskId": "t", "status": {}}},
        {"statusUpdate": {"taskId": "t"}},
        {"statusUpdate": {}},
        {"statusUpdate": {"taskId": "t", "status": {"state": 99}}},
        {
            "statusUpdate": {
                "taskId": "t",
                "metadata": {"k": [1, "v"]},
                "status": {"state": "TASK_STATE_WORKING"},
            }
        },
        {
            "statusUpdate": {
                "taskId": "t",
                "status": {
                    "state": "TASK_STATE_INPUT_REQUIRED",
                    "message": {
                        "messageId": "m",
                        "role": "ROLE_AGENT",
                        "parts": [{"text": "which?"}],
                    },
                },
            }
        },
        {"task": {"id": "t", "contextId": "c", "status": {"state": "TASK_STATE_SUBMITTED"}}},
        {
            "artifactUpdate": {
                "taskId": "t",
                "artifact": {"artifactId": "a", "parts": [{"text": "x"}]},
                "append": True,
            }
        },
        {"message": {"messageId": "m", "role": "ROLE_AGENT", "parts": [{"raw": "AAE="}]}},
    ],
)
def test_stream_events_convert_as_message_to_dict_does(event: dict[str, Any]) -> None:
    """The direct conversion of plain status updates gives MessageToDict's dict, key for key."""
    schema = schema_from_protos([PROTO_FILE])
    cls = schema.method(SERVICE, "SendStreamingMessage").response_type
    reply = json_format.ParseDict(event, cls())
    assert json.dumps(stream_response_dict(reply)) == json.dumps(json_format.MessageToDict(reply))


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("127.0.0.1:50051", "grpc://127.0.0.1:50051"),
        ("localhost:7000", "grpc://localhost:7000"),
        ("agent.example.com:443", "grpcs://agent.example.com:443"),
        ("agent.example.com", "grpcs://agent.example.com:443"),
        ("grpcs://agent.example.com:8443", "grpcs://agent.example.com:8443"),
        ("https://agent.example.com", "grpcs://agent.example.com:443"),
        ("grpc://10.0.0.5:50051", "grpc://10.0.0.5:50051"),
        ("[::1]:50051", "grpc://[::1]:50051"),
    ],
)
def test_interface_url_to_grpc_target(url: str, target: str) -> None:
    assert grpc_target(url) == target


@pytest.mark.parametrize(
    "url", ["ftp://agent.example.com:21", "agent.example.com:443/a2a", "agent.example.com:99999"]
)
def test_an_interface_url_that_is_no_grpc_address_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="gRPC address"):
        grpc_target(url)


# ------------------------------------------------------------------ against the SDK's server


async def test_the_card_leads_to_grpc_and_a_direct_reply(agent: GRPCAgent) -> None:
    async with A2AClient(agent.url) as client:
        assert client.interface.binding == "GRPC"
        reply = await client.send("hello over grpc")
        assert reply.kind == "message"
        assert reply.text == "Hello! You said: hello over grpc"  # type: ignore[union-attr]
    # The service parameters travel as metadata.
    async with A2AClient(agent.url, binding="grpc", extensions=["urn:test:ext"]) as client:
        assert (await client.send("hello")).kind == "message"


async def test_a_task_streams_and_can_be_read_back(agent: GRPCAgent) -> None:
    async with A2AClient(agent.url, binding="grpc") as client:
        events = await collect(client.stream("chunks 3"))
        assert states(events)[0] == "submitted" and states(events)[-1] == "completed"
        assert "working" in states(events)
        assert artifact_text(events) == "chunk 0;chunk 1;chunk 2;"
        task_id = events[0]["id"]
        task = await client.get_task(task_id)
        assert task.state == "completed"
        assert "".join(p["text"] for p in task.artifacts[0]["parts"]) == "chunk 0;chunk 1;chunk 2;"
        done = await client.send("task")
        assert done.kind == "task" and done.state == "completed"  # type: ignore[union-attr]
        listed = await client.list_tasks()
        assert task_id in {t["id"] for t in listed["tasks"]}


async def test_cancel_and_subscribe(agent: GRPCAgent) -> None:
    async with (
        A2AClient(agent.url, binding="grpc") as sender,
        A2AClient(agent.url, binding="grpc") as watcher,
    ):
        stream = sender.stream("wait")
        try:
            opening = await anext(stream)
            task_id = opening["id"]
            watched = watcher.subscribe(task_id)
            try:
                snapshot = await anext(watched)
                assert snapshot.kind == "task" and snapshot["id"] == task_id
                canceled = await sender.cancel_task(task_id)
                assert canceled.state == "canceled"
                rest = await collect(watched)
            finally:
                await watched.aclose()
            sent = await collect(stream)
        finally:
            await stream.aclose()
    assert states([snapshot, *rest])[-1] == "canceled"
    assert states(sent)[-1] == "canceled"


async def test_the_input_required_round(agent: GRPCAgent) -> None:
    async with A2AClient(agent.url, binding="grpc") as client:
        first = await collect(client.stream("ask"))
        assert states(first)[-1] == "input-required"
        last = first[-1]
        task_id = last.get("taskId") or last.get("id")
        second = await collect(
            client.stream("Ada", task_id=task_id, context_id=last.get("contextId"))
        )
    assert states(second)[-1] == "completed"
    assert artifact_text(second) == "answer: Ada"


async def test_unknown_task_id_maps_from_the_status_details(agent: GRPCAgent) -> None:
    async with A2AClient(agent.url, binding="grpc") as client:
        for call in (
            client.get_task("no-such-task"),
            client.cancel_task("no-such-task"),
            collect(client.subscribe("no-such-task")),
        ):
            with pytest.raises(TaskNotFoundError) as info:
                await call
            assert info.value.code == "ERR_A2A_TASK_NOT_FOUND"
            assert info.value.remote_code == "NOT_FOUND"


async def test_bearer_auth_from_the_card() -> None:
    async with serve_grpc_agent(token=TOKEN) as secured:
        async with A2AClient(secured.url, binding="grpc") as anonymous:
            with pytest.raises(A2AAuthError) as info:
                await anonymous.send("hello")
            assert info.value.code == "ERR_AUTH"
            assert info.value.status_code == "UNAUTHENTICATED"
            assert "bearer" in str(info.value) and "auth=" in str(info.value)
        async with A2AClient(secured.url, binding="grpc", auth=TOKEN) as client:
            assert (await client.send("hello")).kind == "message"
            events = await collect(client.stream("chunks 2"))
            assert states(events)[-1] == "completed"


async def test_a_stream_cut_mid_task_resumes_and_every_update_arrives_once(
    agent: GRPCAgent,
) -> None:
    chunks = 30
    async with FaultProxy(agent.port) as proxy:
        card = agent.card_for(f"127.0.0.1:{proxy.port}")
        async with A2AClient(card=card, binding="grpc", resume_delay=0.05) as client:
            events: list[A2AObject] = []
            cuts = 0
            async for event in client.stream(f"chunks {chunks} 0.04"):
                events.append(event)
                seen = sum(1 for e in events if e.kind == "artifactUpdate")
                if seen in (5, 15) and cuts < (1 if seen == 5 else 2):
                    cuts += 1
                    await proxy.cut()
            assert cuts == 2
            assert proxy.accepted >= 3  # the first connection, then one per cut
    assert states(events).count("completed") == 1 and states(events)[-1] == "completed"
    assert artifact_text(events) == "".join(f"chunk {i};" for i in range(chunks))


async def test_plain_text_grpc_to_a_remote_host_is_refused_before_any_connection(
    agent: GRPCAgent,
) -> None:
    card = agent.card_for("grpc://agents.example.com:50051")
    client = A2AClient(card=card, binding="grpc")
    with pytest.raises(SecurityError) as info:
        await client.connect()
    assert info.value.code == "ERR_SECURITY"
    await client.close()


async def test_grpcs_interface_with_the_ca_given(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    tls = (cert.private_key_pem.bytes(), b"".join(c.bytes() for c in cert.cert_chain_pems))
    async with serve_grpc_agent(tls=tls) as secured:
        card = secured.card_for(f"grpcs://127.0.0.1:{secured.port}")
        async with A2AClient(card=card, binding="grpc", ca_certs=str(ca_path)) as client:
            reply = await client.send("hello over tls")
            assert reply.text == "Hello! You said: hello over tls"  # type: ignore[union-attr]
            events = await collect(client.stream("chunks 2"))
            assert states(events)[-1] == "completed"
        # Without our CA the server's certificate is not trusted: no message goes out.
        started = len(secured.state.started)
        async with A2AClient(card=card, binding="grpc", timeout=5) as untrusted:
            with pytest.raises(ConnectionError):
                await untrusted.send("chunks 1")
        assert len(secured.state.started) == started


async def test_a_silent_stream_counts_as_dropped_and_is_resumed(agent: GRPCAgent) -> None:
    """stream_timeout: the proxy holds every byte for a while; the task still ends once each.

    The timeout leaves a loaded machine's agent room for its first event (at 0.3 s it
    sometimes had not sent one yet, and a stream that names no task cannot resume).
    """
    chunks = 12
    async with FaultProxy(agent.port) as proxy:
        card = agent.card_for(f"127.0.0.1:{proxy.port}")
        async with A2AClient(
            card=card, binding="grpc", stream_timeout=1.0, resume_delay=0.05, max_resumes=20
        ) as client:
            events: list[A2AObject] = []
            held = False
            async for event in client.stream(f"chunks {chunks} 0.05"):
                events.append(event)
                if not held and sum(1 for e in events if e.kind == "artifactUpdate") == 3:
                    held = True
                    proxy.stall()
                    asyncio.get_running_loop().call_later(2.5, proxy.resume)
            assert client.stats.reconnects >= 1
    assert states(events).count("completed") == 1 and states(events)[-1] == "completed"
    assert artifact_text(events) == "".join(f"chunk {i};" for i in range(chunks))
