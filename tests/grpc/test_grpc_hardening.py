"""Hardening of GRPCClient (issue 16): every address of a target passes the policy,
reflection survives grpcio's INTERNAL for a missing v1, and a cancelled wait for
the next message of a stream loses nothing.

"A remote host" is played by addresses the policy calls non-loopback but that
still lead to a listener of ours on this machine (``0.0.0.0``,
``::ffff:127.0.0.1``), so nothing ever leaves loopback even when a check fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from agenticaiframework.communication import (
    CommunicationError,
    ConfigError,
    GRPCClient,
    RemoteError,
    SecurityError,
)
from agenticaiframework.communication.agents.discovery import (
    AgentRecord,
    connect_agent,
    parse_record,
)
from agenticaiframework.communication.core.security import grpc_target_hosts, is_local_address
from agenticaiframework.communication.grpc import reflection as _grpc_reflection
from tests.servers.grpc_server import PROTO_FILE, serve_grpc

PROTO = str(PROTO_FILE)
FAST: dict[str, Any] = {"retry_delay": 0.05, "max_retries": 0, "timeout_seconds": 10}
TOKEN = "s3cret-token"
V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class CountingListener:
    """A loopback TCP listener that counts connections and closes each at once."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CountingListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


# -- item 1: every address of a target passes the policy -----------------------------

LISTS = [
    "ipv4:127.0.0.1:{A},0.0.0.0:{B}",
    "ipv4:127.0.0.1:{A}%2C0.0.0.0:{B}",  # grpcio decodes %2C into a second address
    "IPV4:///127.0.0.1:{A},/0.0.0.0:{B}",
    "ipv6:[::1]:{A},[::ffff:127.0.0.1]:{B}",
    "grpc://ipv4:127.0.0.1:{A},0.0.0.0:{B}",
    "ipv4:127.0.0.1:{A}?,0.0.0.0:{B}",  # dropped by grpcio: only the first address counts
]


@pytest.mark.parametrize("form", LISTS)
async def test_every_address_of_a_target_list_passes_the_policy(form: str) -> None:
    # The first address refuses (a listener that hangs up); grpcio would then
    # fall through to the second one, which the policy calls non-loopback.
    async with CountingListener() as first, serve_grpc(token=TOKEN) as remote:
        target = form.format(A=first.port, B=remote.port)
        if "?" in form:
            # The query hides nothing: the one address grpcio dials is loopback.
            assert grpc_target_hosts(target) == [("127.0.0.1", first.port)]
            return
        with pytest.raises(SecurityError) as info:
            async with GRPCClient(
                target, auth={"type": "bearer", "token": TOKEN}, proto_files=[PROTO], **FAST
            ) as client:
                await client.call("AgentService", "ExecuteTask", {"task_id": "leak"})
        assert info.value.code == "ERR_SECURITY"
        assert "non-loopback" in str(info.value)
        await asyncio.sleep(0.1)
        assert first.connections == 0
        assert remote.stats == {}  # the token never reached the "remote" server


async def test_refused_before_grpc_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_channel(*args: object, **kwargs: object) -> None:
        raise AssertionError("a channel was opened")

    monkeypatch.setattr(grpc.aio, "insecure_channel", no_channel)
    with pytest.raises(SecurityError):
        GRPCClient("ipv4:127.0.0.1:1,192.0.2.1:50051", auth={"type": "bearer", "token": TOKEN})


@pytest.mark.parametrize(
    ("target", "scheme"),
    [
        ("dns://127.0.0.1:53/localhost:50051", "dns"),
        ("vsock:2:50051", "vsock"),
        ("xds:///agents", "xds"),
        ("XDS:50051", "xds"),
        ("google-c2p:///agents", "google-c2p"),
        ("zz:agents", "zz"),
    ],
)
def test_resolvers_we_cannot_check_are_refused(target: str, scheme: str) -> None:
    with pytest.raises(SecurityError, match=repr(scheme)) as info:
        GRPCClient(target)
    assert info.value.code == "ERR_SECURITY"
    # Over TLS, or with the explicit opt-out, the client policy has nothing to refuse.
    GRPCClient(target, secure=True)
    GRPCClient(target, allow_insecure=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:50051", "https://agents.example.com/"])
def test_a_web_url_is_not_a_grpc_target(url: str) -> None:
    # Whatever the options: grpcio would take "http" for a host name.
    with pytest.raises(ConfigError, match=r"a gRPC target is host:port.*did you mean '"):
        GRPCClient(url, secure=True)


def test_unix_sockets_are_local() -> None:
    assert grpc_target_hosts("unix:/tmp/agent.sock") == [("localhost", None)]
    assert grpc_target_hosts("unix-abstract:agent") == [("localhost", None)]
    assert is_local_address(grpc_target_hosts("unix:///tmp/a.sock")[0][0])
    GRPCClient("unix:/tmp/agent.sock")  # plain text to this machine is allowed


def test_grpc_target_hosts_reads_every_form() -> None:
    cases: dict[str, list[tuple[str, int | None]]] = {
        "localhost:50051": [("localhost", 50051)],
        "agents.example.com": [("agents.example.com", 443)],
        "[::1]:80": [("::1", 80)],
        "::1": [("::1", 443)],
        "fe80::1": [("fe80::1", 443)],
        "grpcs://agents.example.com:443/": [("agents.example.com", 443)],
        "grpc://ipv4:10.0.0.1:1,10.0.0.2:2": [("10.0.0.1", 1), ("10.0.0.2", 2)],
        "ipv4:,127.0.0.1:1,": [("127.0.0.1", 1)],
        "ipv6:[::1]:1,[fe80::1%25eth0]:2": [("::1", 1), ("fe80::1%eth0", 2)],
        "dns:///agents.example.com:80": [("agents.example.com", 80)],
        "dns:agents.example.com": [("agents.example.com", 443)],
        "DNS:/localhost:7": [("localhost", 7)],
        "agents:50051": [("agents", 50051)],  # no resolver "agents": a host and port
        "localhost:50051#x": [("localhost", 50051)],
    }
    for target, hosts in cases.items():
        assert grpc_target_hosts(target) == hosts, target


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1:99999",
        "localhost:0",
        "[::1]:65536",
        "ipv4:127.0.0.1:1,127.0.0.1:70000",
        "ipv4:127.0.0.1",
        "ipv4:127.1:5",
        "ipv6:::1",
        "127.0.0.1:+1",
        "[::1",
        "a b:1",
        "",
    ],
)
def test_bad_targets_are_config_errors(target: str) -> None:
    with pytest.raises(ConfigError) as info:
        GRPCClient(target) if target else grpc_target_hosts(target)
    assert info.value.code == "ERR_CONFIG"
    assert f"{target!r}" in str(info.value)


async def test_aid_grpc_uri_with_a_bad_port_is_our_error() -> None:
    # Discovery refuses it as an invalid record (ERR_INVALID_TXT, the AID code),
    # whether read from TXT or built by hand; never a raw ValueError.
    uri = "https://agent.example.com:99999"
    with pytest.raises(CommunicationError, match="99999") as info:
        parse_record(f"v=aid1;p=grpc;u={uri}")
    assert info.value.code == "ERR_INVALID_TXT"
    with pytest.raises(CommunicationError, match="99999"):
        await connect_agent(AgentRecord(v="aid1", uri=uri, proto="grpc"))


# -- item 19: reflection falls back on INTERNAL and remembers the version -------------


async def test_reflection_falls_back_when_v1_reports_internal() -> None:
    async with serve_grpc(
        reflection_versions=("v1alpha",), reflection_v1_status=grpc.StatusCode.INTERNAL
    ) as srv:
        for _ in range(3):
            async with GRPCClient(srv.target, **FAST) as client:
                assert "agents.v1.AgentService" in await client.list_services()
        # v1 was asked once; after that the target's working version goes first.
        # Each load of v1alpha is two calls: the service list, then the files.
        assert srv.stats[V1] == 1
        assert srv.stats[V1ALPHA] == 3 * 2


async def test_internal_everywhere_is_reported_not_hidden() -> None:
    async with serve_grpc(
        reflection_versions=(), reflection_v1_status=grpc.StatusCode.INTERNAL
    ) as srv:
        async with GRPCClient(srv.target, **FAST) as client:
            with pytest.raises(RemoteError) as info:
                await client.list_services()
        assert info.value.remote_code == "INTERNAL"
        assert srv.stats[V1] == 1 and srv.stats[V1ALPHA] == 1


async def test_300_connects_to_a_v1alpha_only_server_never_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Forget the working version before each connect, so that every one asks
    # v1 first and meets the race grpcio sometimes reports as INTERNAL.
    monkeypatch.setattr(_grpc_reflection, "_worked", {}, raising=False)
    failures: list[str] = []
    async with serve_grpc(reflection_versions=("v1alpha",), health_service=False) as srv:
        for _ in range(300):
            _grpc_reflection._worked.clear()
            try:
                async with GRPCClient(srv.target, **FAST) as client:
                    await client.list_services()
            except Exception as exc:
                failures.append(repr(exc))
        assert srv.stats[V1] == 300
    assert failures == []


# -- item 23: a cancelled wait for the next message loses nothing --------------------


def _read_tasks() -> list[asyncio.Task[Any]]:
    """The streams' reader tasks still running."""
    return [t for t in asyncio.all_tasks() if "grpc-reader" in t.get_name()]


async def test_cancelled_anext_on_a_server_stream_keeps_the_stream() -> None:
    gate = asyncio.Semaphore(0)
    async with serve_grpc(token_gate=gate) as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 5})
            assert (await anext(stream))["token"] == "t0"
            # The server holds t1 back: the wait times out.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await anext(stream)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await anext(stream)
            assert stream.call is not None and not stream.call.done()
            for _ in range(4):
                gate.release()
            rest = [r["token"] async for r in stream]
            assert rest == ["t1", "t2", "t3", "t4"]
            assert client.stats.received == 5

            # A cancelled wait, then aclose(): the pending read goes with the call.
            second = client.stream_call("AgentService", "StreamTokens", {"count": 5})
            await anext(second)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await anext(second)
            await second.aclose()
            assert second.call is not None and second.call.cancelled()
            await asyncio.sleep(0.05)
            assert _read_tasks() == []

            # A cancelled wait, then close(): the stream ends quietly.
            third = client.stream_call("AgentService", "StreamTokens", {"count": 5})
            await anext(third)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await anext(third)
        assert [r async for r in third] == []
        await asyncio.sleep(0.05)
        assert _read_tasks() == []


async def test_short_timeouts_in_a_loop_make_progress() -> None:
    gate = asyncio.Semaphore(0)

    async def release_slowly() -> None:
        for _ in range(59):
            await asyncio.sleep(0.01)
            gate.release()

    async with serve_grpc(token_gate=gate) as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            stream = client.stream_call("AgentService", "StreamTokens", {"count": 60})
            releaser = asyncio.create_task(release_slowly())
            got: list[int] = []
            timeouts = 0
            while len(got) < 60:
                try:
                    async with asyncio.timeout(0.002):
                        got.append((await anext(stream))["index"])
                except TimeoutError:
                    timeouts += 1
            await releaser
            assert got == list(range(60))
            assert timeouts > 0
            with pytest.raises(StopAsyncIteration):
                await anext(stream)


async def test_cancelled_anext_on_a_bidirectional_stream_keeps_the_stream() -> None:
    outbox: asyncio.Queue[str | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[dict[str, str]]:
        while (text := await outbox.get()) is not None:
            yield {"message": text}

    async with serve_grpc() as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            stream = client.bidirectional_stream("ChatService", "Chat", requests())
            outbox.put_nowait("a")
            assert (await anext(stream))["message"] == "echo: a"
            with pytest.raises(TimeoutError):  # nothing sent, nothing to read
                async with asyncio.timeout(0.05):
                    await anext(stream)
            outbox.put_nowait("b")
            assert (await anext(stream))["message"] == "echo: b"
            outbox.put_nowait("c")
            outbox.put_nowait(None)
            assert [r["message"] async for r in stream] == ["echo: c"]


async def test_a_stream_abandoned_after_a_timeout_ends_its_call() -> None:
    gate = asyncio.Semaphore(0)
    async with serve_grpc(token_gate=gate) as srv:
        async with GRPCClient(srv.target, proto_files=[PROTO], **FAST) as client:
            calls: list[Any] = []
            # The whole loop under a timeout, the stream never closed by hand:
            # once nothing refers to it, its call is cancelled as aclose() would.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    stream = client.stream_call("AgentService", "StreamTokens", {"count": 5})
                    async for _ in stream:
                        calls.append(stream.call)
            del stream
            await asyncio.sleep(0.05)
            assert calls[0].cancelled()
            assert _read_tasks() == []
