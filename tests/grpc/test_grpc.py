"""GRPCClient and generate_grpc_client against a real grpc.aio server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenticaiframework.communication import (
    AuthenticationError,
    ClosedError,
    ConfigError,
    ConnectionError,
    GRPCClient,
    GRPCConfig,
    MessageTooLargeError,
    RemoteError,
    SecurityError,
    TimeoutError,
    generate_grpc_client,
)
from agenticaiframework.communication.grpc.client import parse_target
from tests.servers.grpc_server import (
    PROTO_FILE,
    GRPCTestServer,
    make_tls_files,
    serve_grpc,
    start_grpc_server,
)
from tests.servers.ports import free_port
from tests.servers.proxy import FaultProxy

PROTO = str(PROTO_FILE)
FAST = {"retry_delay": 0.05, "max_retries": 2, "timeout_seconds": 10}


@pytest.fixture
async def server() -> AsyncIterator[GRPCTestServer]:
    async with serve_grpc() as srv:
        yield srv


def _client(srv: GRPCTestServer, source: str, **kw: Any) -> GRPCClient:
    if source == "proto":
        kw["proto_files"] = [PROTO]
    return GRPCClient(srv.target, **{**FAST, **kw})


def _client_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the client side: ours (named by TaskSet) and grpc.aio client calls."""
    out = []
    for task in asyncio.all_tasks():
        text = repr(task)
        if task is asyncio.current_task() or "AioServer" in text or "_server" in text:
            continue
        if "GRPCClient" in task.get_name() or "grpc/aio/_call" in text or "grpc" in text:
            out.append(task)
    return out


async def _no_tasks_but_mine() -> None:
    await asyncio.sleep(0.05)
    assert _client_tasks() == []


SOURCES = ["proto", "reflection"]


# -- the four call shapes, by proto file and by reflection ---------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_unary_call_returns_dict(server: GRPCTestServer, source: str) -> None:
    async with _client(server, source) as client:
        reply = await client.call(
            "AgentService",
            "ExecuteTask",
            request={
                "task_id": "t1",
                "input": "hello",
                "priority": "PRIORITY_HIGH",
                "tags": ["a", "b"],
                "labels": {"k": "v"},
                "context": {"n": 1, "s": "x"},
                "sequence": 2**40,
            },
        )
        assert reply["task_id"] == "t1"
        assert reply["result"] == "processed: hello"
        assert reply["priority"] == "PRIORITY_HIGH"
        assert reply["tags"] == ["a", "b"]
        assert reply["labels"] == {"k": "v"}
        assert reply["context"] == {"n": 1, "s": "x"}
        assert reply["sequence"] == 2**40
        assert reply["payload"] == b""
        # The full name works too, and the message object is given when asked.
        message = await client.call(
            "agents.v1.AgentService", "ExecuteTask", {"task_id": "t2"}, as_message=True
        )
        assert message.task_id == "t2"
        assert client.stats.sent == 2 and client.stats.received == 2


@pytest.mark.parametrize("source", SOURCES)
async def test_server_streaming(server: GRPCTestServer, source: str) -> None:
    async with _client(server, source) as client:
        tokens = [
            r["token"]
            async for r in client.stream_call(
                "AgentService", "StreamTokens", request={"prompt": "one two three"}
            )
        ]
        assert tokens == ["one ", "two ", "three "]


@pytest.mark.parametrize("source", SOURCES)
async def test_client_streaming_with_bytes(server: GRPCTestServer, source: str) -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        for part in (b"\x00\x01", b"abc", b"\xff" * 10):
            yield {"chunk": part}

    async with _client(server, source) as client:
        reply = await client.stream_send("DataService", "UploadData", requests=chunks())
        assert reply == {"total_bytes": 15, "chunks": 3}
        # A plain list works as the request stream too.
        reply = await client.stream_send("DataService", "UploadData", [{"chunk": b"zz"}])
        assert reply == {"total_bytes": 2, "chunks": 1}


@pytest.mark.parametrize("source", SOURCES)
async def test_bidirectional_stream(server: GRPCTestServer, source: str) -> None:
    async def chat() -> AsyncIterator[dict[str, str]]:
        yield {"message": "Hello"}
        await asyncio.sleep(0.01)
        yield {"message": "How are you?"}

    async with _client(server, source) as client:
        replies = [
            r["message"]
            async for r in client.bidirectional_stream("ChatService", "Chat", requests=chat())
        ]
        assert replies == ["echo: Hello", "echo: How are you?"]


async def test_reflection_falls_back_to_v1alpha() -> None:
    async with serve_grpc(reflection_versions=("v1alpha",)) as srv:
        async with GRPCClient(srv.target, **FAST) as client:
            assert "agents.v1.AgentService" in await client.list_services()
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "x"})
            assert reply["task_id"] == "x"


async def test_no_reflection_and_no_proto_says_what_to_do() -> None:
    async with serve_grpc(reflection_versions=()) as srv:
        async with GRPCClient(srv.target, **FAST) as client:
            with pytest.raises(ConfigError, match="proto_files"):
                await client.call("AgentService", "ExecuteTask", {})


# -- generate_grpc_client ----------------------------------------------------------


async def test_generated_client_every_shape(server: GRPCTestServer) -> None:
    client = generate_grpc_client(proto_file=PROTO, target=server.target, **FAST)
    try:
        assert "AgentService" in dir(client)
        reply = await client.AgentService.ExecuteTask(task_id="123", input="Process this")
        assert reply["result"] == "processed: Process this"
        reply = await client.AgentService.ExecuteTask({"task_id": "9"}, timeout=5)
        assert reply["task_id"] == "9"
        tokens = [r["token"] async for r in client.AgentService.StreamTokens(prompt="a b")]
        assert tokens == ["a ", "b "]
        upload = await client.DataService.UploadData([{"chunk": b"123"}, {"chunk": b"45"}])
        assert upload == {"total_bytes": 5, "chunks": 2}
        echoes = [r["message"] async for r in client.ChatService.Chat([{"message": "hi"}])]
        assert echoes == ["echo: hi"]
        with pytest.raises(AttributeError, match="AgentService"):
            _ = client.NoSuchService
        with pytest.raises(AttributeError, match="ExecuteTask"):
            _ = client.AgentService.Nope
    finally:
        await client.close()


def test_generate_grpc_client_reports_bad_proto(tmp_path: Any) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\nmessage A { strin x = 1; }\n')
    with pytest.raises(ConfigError, match="strin"):
        generate_grpc_client(proto_file=str(bad), target="127.0.0.1:1")
    with pytest.raises(ConfigError, match="no such file"):
        generate_grpc_client(proto_file=str(tmp_path / "missing.proto"), target="127.0.0.1:1")


# -- errors: names, fields, shapes, statuses ----------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_unknown_names_and_fields_are_explained(server: GRPCTestServer, source: str) -> None:
    async with _client(server, source) as client:
        with pytest.raises(ConfigError, match=r"NoService.*AgentService.*ChatService"):
            await client.call("NoService", "X", {})
        with pytest.raises(ConfigError, match=r"no method 'Nope'.*ExecuteTask, StreamTokens"):
            await client.call("AgentService", "Nope", {})
        with pytest.raises(ConfigError, match=r"no field 'bogus'.*task_id, input"):
            await client.call("AgentService", "ExecuteTask", {"bogus": 1})
        with pytest.raises(ConfigError, match=r"TaskRequest.delay_ms expects int32"):
            await client.call("AgentService", "ExecuteTask", {"delay_ms": "soon"})
        with pytest.raises(ConfigError, match=r"server-streaming.*stream_call\(\)"):
            await client.call("AgentService", "StreamTokens", {"prompt": "x"})
        with pytest.raises(ConfigError, match=r"unary.*call\(\)"):
            async for _ in client.stream_call("AgentService", "ExecuteTask", {}):
                pass
        with pytest.raises(ConfigError, match=r"bidi-streaming.*bidirectional_stream"):
            await client.stream_send("ChatService", "Chat", [])
        with pytest.raises(ConfigError, match=r"no field 'nope'"):
            async for _ in client.bidirectional_stream("ChatService", "Chat", [{"nope": 1}]):
                pass
        with pytest.raises(ConfigError, match=r"DataChunk.chunk expects bytes"):
            await client.stream_send("DataService", "UploadData", [{"chunk": 12}])
        await _no_tasks_but_mine()


async def test_status_codes_map_onto_our_errors(server: GRPCTestServer) -> None:
    async with _client(server, "proto") as client:
        with pytest.raises(RemoteError) as info:
            await client.call("AgentService", "ExecuteTask", {"task_id": "a", "fail_code": 5})
        assert info.value.code == "ERR_REMOTE"
        assert info.value.remote_code == "NOT_FOUND"
        assert info.value.data == "asked to fail for a"
        with pytest.raises(AuthenticationError) as auth:
            await client.call("AgentService", "ExecuteTask", {"fail_code": 16})
        assert auth.value.code == "ERR_AUTH"
        with pytest.raises(RemoteError, match="INTERNAL") as mid:
            async for _ in client.stream_call(
                "AgentService", "StreamTokens", {"count": 5, "fail_after": 2}
            ):
                pass
        assert mid.value.remote_code == "INTERNAL"


async def test_deadline_exceeded_is_timeout(server: GRPCTestServer) -> None:
    async with _client(server, "proto", timeout_seconds=0.1) as client:
        with pytest.raises(TimeoutError) as info:
            await client.call("AgentService", "ExecuteTask", {"delay_ms": 2000})
        assert info.value.code == "ERR_TIMEOUT"
        assert "DEADLINE_EXCEEDED" in str(info.value)
        # A per-call timeout overrides the default; None means no deadline.
        reply = await client.call("AgentService", "ExecuteTask", {"delay_ms": 200}, timeout=None)
        assert reply["status"] == "completed"


async def test_bearer_auth_is_sent_as_metadata() -> None:
    async with serve_grpc(token="s3cret") as srv:
        async with GRPCClient(
            srv.target, proto_files=[PROTO], auth={"type": "bearer", "token": "s3cret"}
        ) as client:
            reply = await client.call(
                "AgentService", "ExecuteTask", {"task_id": "1"}, metadata={"x-trace": "t"}
            )
            assert reply["authorization"] == "Bearer s3cret"
            assert "s3cret" not in repr(client.config)
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as anonymous:
            with pytest.raises(AuthenticationError):
                await anonymous.call("AgentService", "ExecuteTask", {"task_id": "1"})


# -- robustness ----------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_server_down_at_first_call_comes_up_during_retries(source: str) -> None:
    port = free_port()
    client = GRPCClient(
        f"127.0.0.1:{port}",
        retry_delay=0.1,
        max_retries=30,
        timeout_seconds=5,
        **({"proto_files": [PROTO]} if source == "proto" else {}),
    )
    srv: GRPCTestServer | None = None

    async def start_later() -> None:
        nonlocal srv
        await asyncio.sleep(0.4)
        srv = await start_grpc_server(port=port)

    starter = asyncio.create_task(start_later())
    try:
        async with client:
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "late"})
            assert reply["task_id"] == "late"
            assert client.stats.errors >= 1
    finally:
        await starter
        assert srv is not None
        await srv.stop()


async def test_unavailable_after_retries_is_connection_error() -> None:
    client = GRPCClient(f"127.0.0.1:{free_port()}", proto_files=[PROTO], **FAST)
    async with client:
        with pytest.raises(ConnectionError) as info:
            await client.call("AgentService", "ExecuteTask", {})
        assert info.value.code == "ERR_CONNECTION"
        assert client.stats.errors == 3  # first try + 2 retries
        status = await client.health_check(timeout=1)
        assert not status.is_healthy


async def test_stream_cut_midway_raises_connection_error(server: GRPCTestServer) -> None:
    async with FaultProxy(server.port) as proxy:
        async with GRPCClient(f"127.0.0.1:{proxy.port}", proto_files=[PROTO], **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 1_000_000})
            with pytest.raises(ConnectionError):
                async for reply in stream:
                    if reply["index"] == 10:
                        await proxy.cut()
            # The channel reconnects for the next call.
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "again"})
            assert reply["task_id"] == "again"


async def test_close_leaves_no_channel_or_task(server: GRPCTestServer) -> None:
    gate = asyncio.Event()

    async def slow_chat() -> AsyncIterator[dict[str, str]]:
        yield {"message": "first"}
        await gate.wait()
        yield {"message": "never"}

    client = _client(server, "reflection")
    await client.connect()
    stream = client.bidirectional_stream("ChatService", "Chat", slow_chat())
    assert (await stream.__anext__())["message"] == "echo: first"
    tokens = client.stream_call("AgentService", "StreamTokens", {"count": 100000})
    await tokens.__anext__()
    assert client.channel is not None
    await client.close()
    await client.close()  # idempotent
    assert client.channel is None
    # Streams end quietly on a normal close.
    assert [r async for r in stream] == []
    assert [r async for r in tokens] == []
    await _no_tasks_but_mine()
    with pytest.raises(ClosedError):
        await client.call("AgentService", "ExecuteTask", {})


async def test_breaking_out_of_a_stream_cancels_it(server: GRPCTestServer) -> None:
    async with _client(server, "proto") as client:
        async with client.stream_call("AgentService", "StreamTokens", {"count": 10**6}) as s:
            async for reply in s:
                if reply["index"] == 3:
                    break
        assert s.call is not None and s.call.cancelled()
        async with client.bidirectional_stream("ChatService", "Chat", [{"message": "a"}] * 5) as b:
            async for _ in b:
                break
        await _no_tasks_but_mine()


# -- TLS, compression, message size --------------------------------------------------


async def test_tls_and_mutual_tls(tmp_path: Any) -> None:
    tls = make_tls_files(str(tmp_path))
    async with serve_grpc(tls=tls) as srv:
        target = f"localhost:{srv.port}"
        async with GRPCClient(
            target, secure=True, root_certificates=tls.ca, proto_files=[PROTO]
        ) as client:
            assert (await client.call("AgentService", "ExecuteTask", {"task_id": "tls"}))[
                "task_id"
            ] == "tls"
    async with serve_grpc(tls=tls, mutual_tls=True) as srv:
        target = f"localhost:{srv.port}"
        config = GRPCConfig(
            target=target,
            secure=True,
            root_certificates=tls.ca,
            private_key=tls.client_key,
            certificate_chain=tls.client_cert,
            proto_files=[PROTO],
        )
        async with GRPCClient(config=config) as client:
            assert (await client.call("AgentService", "ExecuteTask", {"task_id": "m"}))[
                "task_id"
            ] == "m"
            assert (await client.health_check()).is_healthy
        async with GRPCClient(
            target, secure=True, root_certificates=tls.ca, proto_files=[PROTO], **FAST
        ) as no_cert:
            with pytest.raises(ConnectionError):
                await no_cert.call("AgentService", "ExecuteTask", {})


async def test_gzip_compression(server: GRPCTestServer) -> None:
    async with _client(server, "reflection", compression="gzip") as client:
        reply = await client.call("AgentService", "ExecuteTask", {"payload": b"a" * 100_000})
        assert reply["payload_size"] == 100_000


async def test_keepalive_and_default_metadata() -> None:
    async with serve_grpc(token="tok") as srv:
        async with GRPCClient(
            srv.target,
            proto_files=[PROTO],
            keepalive_time_ms=10_000,
            metadata={"Authorization": "Bearer tok"},
        ) as client:
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "k"})
            assert reply["authorization"] == "Bearer tok"


async def test_five_megabytes_under_and_over_max_message_length(server: GRPCTestServer) -> None:
    five_mb = b"x" * (5 * 1024 * 1024)
    async with _client(server, "proto", max_message_length=8 * 1024 * 1024) as big:
        reply = await big.call("AgentService", "ExecuteTask", {"payload": five_mb})
        assert reply["payload_size"] == len(five_mb)
        reply = await big.call("AgentService", "ExecuteTask", {"reply_bytes": len(five_mb)})
        assert len(reply["payload"]) == len(five_mb)
    async with _client(server, "proto") as small:  # default 4 MB
        with pytest.raises(MessageTooLargeError) as sent:
            await small.call("AgentService", "ExecuteTask", {"payload": five_mb})
        assert sent.value.code == "ERR_MESSAGE_TOO_LARGE"
        with pytest.raises(MessageTooLargeError):
            await small.call("AgentService", "ExecuteTask", {"reply_bytes": len(five_mb)})


# -- describe, health, config, security ---------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
async def test_describe_gives_json_schemas(server: GRPCTestServer, source: str) -> None:
    async with _client(server, source) as client:
        info = await client.describe()
    assert info["source"] == source
    services = {s["short_name"]: s for s in info["services"]}
    assert {"AgentService", "DataService", "ChatService"} <= set(services)
    methods = {m["name"]: m for m in services["AgentService"]["methods"]}
    execute = methods["ExecuteTask"]
    assert execute["shape"] == "unary" and execute["path"] == "/agents.v1.AgentService/ExecuteTask"
    schema = execute["request_schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["task_id"] == {"type": "string"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert props["priority"]["enum"] == ["PRIORITY_UNSPECIFIED", "PRIORITY_LOW", "PRIORITY_HIGH"]
    assert props["context"] == {"type": "object"}
    assert props["payload"]["contentEncoding"] == "base64"
    assert props["sequence"] == {"type": "integer"}
    assert methods["StreamTokens"]["client_method"] == "stream_call"
    chat = services["ChatService"]["methods"][0]
    assert chat["shape"] == "bidi_streaming"
    if source == "proto":  # comments survive only in compiled protos
        assert execute["description"] == "Execute one task and return its result."


async def test_health_check_with_and_without_health_service() -> None:
    async with serve_grpc() as srv:
        async with GRPCClient(srv.target) as client:
            status = await client.health_check()
            assert status.is_healthy and "SERVING" in status.detail
            await srv.health.set("", 2)  # NOT_SERVING
            status = await client.health_check()
            assert not status.is_healthy and "NOT_SERVING" in status.detail
    async with serve_grpc(health_service=False) as srv:
        async with GRPCClient(srv.target) as client:
            status = await client.health_check()
            assert status.is_healthy and "channel ready" in status.detail


def test_security_policy_refuses_plain_text_to_remote_hosts() -> None:
    with pytest.raises(SecurityError) as info:
        GRPCClient("10.1.2.3:50051")
    assert info.value.code == "ERR_SECURITY"
    with pytest.raises(SecurityError):
        GRPCClient(config=GRPCConfig(target="dns:///agents.example.com:443"))
    # TLS, an explicit opt-out, loopback and unix sockets are fine (nothing is dialled).
    GRPCClient("agents.example.com:443", secure=True)
    GRPCClient("grpcs://agents.example.com:443")
    GRPCClient("10.1.2.3:50051", allow_insecure=True)
    GRPCClient("[::1]:50051")
    GRPCClient("unix:/tmp/agent.sock")


def test_config_is_validated_and_merged() -> None:
    with pytest.raises(ConfigError, match="compression"):
        GRPCClient("localhost:1", compression="brotli")
    with pytest.raises(ConfigError, match="max_message_length"):
        GRPCConfig(max_message_length=0)
    with pytest.raises(ConfigError, match="private_key"):
        GRPCConfig(private_key="k.pem")
    with pytest.raises(ConfigError, match="not_a_field"):
        GRPCClient("localhost:1", not_a_field=1)
    base = GRPCConfig(target="localhost:1", timeout_seconds=3)
    client = GRPCClient(config=base, max_retries=7)
    assert client.config.max_retries == 7 and client.config.timeout_seconds == 3


def test_parse_target() -> None:
    assert parse_target("localhost:50051") == ("localhost:50051", "localhost", False)
    assert parse_target("grpcs://h.example:443") == ("h.example:443", "h.example", True)
    assert parse_target("dns:///h.example:80")[1] == "h.example"
    assert parse_target("ipv6:[::1]:80")[1] == "::1"
    assert parse_target("unix:/x.sock")[1] == "localhost"
