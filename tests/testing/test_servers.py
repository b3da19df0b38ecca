"""The public test servers: each serves for real on loopback and leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from agenticaiframework.communication import (
    GRPCClient,
    HTTPClient,
    MQTTClient,
    SSEClient,
    STDIOClient,
    WebSocketClient,
)
from agenticaiframework.communication.testing import (
    MosquittoBroker,
    echo_command,
    mcp_server_command,
    run_child,
    serve_echo_app,
    serve_grpc_proto,
    serve_mqtt_broker,
    serve_websocket,
)
from agenticaiframework.communication.testing import mqtt as testing_mqtt
from tests.servers.ports import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except OSError:
        return "Z"


def _our_folders(prefix: str) -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{prefix}*")}


def _config_of(folder: str) -> str:
    try:
        return (Path(tempfile.gettempdir()) / folder / "mosquitto.conf").read_text()
    except OSError:
        return ""  # another worker's broker, gone meanwhile


async def test_echo_app_echoes_and_its_event_stream_resumes_after_last_event_id() -> None:
    async with serve_echo_app(count=5, cut_after=2) as server:
        async with HTTPClient(server.url) as http:
            reply = await http.post("/anything?x=1", json={"a": 1})
        echoed = reply.json()
        assert (echoed["method"], echoed["path"], echoed["query"]) == (
            "POST",
            "/anything",
            {"x": "1"},
        )
        assert json.loads(echoed["body"]) == {"a": 1}
        seen = []
        async with SSEClient(f"{server.url}/events", terminal_event="done") as sse:
            async for event in sse:
                if event.event == "message":
                    seen.append(event.json()["n"])
            assert sse.stats.reconnects == 1
        assert seen == [1, 2, 3, 4, 5]
        assert server.state.last_event_ids == [None, "2"]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))


async def test_websocket_echo_and_own_handler() -> None:
    async with serve_websocket() as server, WebSocketClient(server.url) as ws:
        await ws.send({"hello": "world"})
        assert await ws.receive(timeout=5) == {"hello": "world"}

    async def shout(connection: Any) -> None:
        async for message in connection:
            await connection.send(message.upper())

    async with serve_websocket(shout, path="/shout") as server:
        assert server.url.endswith("/shout")
        async with WebSocketClient(server.url) as ws:
            await ws.send("quiet")
            assert await ws.receive(timeout=5) == "QUIET"
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_mqtt_broker_serves_and_leaves_no_process_or_folder() -> None:
    before = _our_folders("agentcomm-mosquitto-")
    async with serve_mqtt_broker() as broker:
        assert broker.kind == "mosquitto"
        async with MQTTClient(broker.url) as mqtt:
            await mqtt.subscribe("t/#", qos=1)
            await mqtt.publish("t/1", {"n": 1}, qos=1)
            async with asyncio.timeout(5):
                message = await mqtt.receive()
            assert message.json() == {"n": 1}
        # Other test workers start brokers of their own meanwhile: this one's folder
        # is the new one whose config listens on this broker's port.
        listener = f"listener {broker.port} "
        ours = [
            name
            for name in _our_folders("agentcomm-mosquitto-") - before
            if listener in _config_of(name)
        ]
        assert len(ours) == 1
    assert ours[0] not in _our_folders("agentcomm-mosquitto-")
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", broker.port)


async def test_mosquitto_restarts_on_the_same_port_for_outages() -> None:
    async with MosquittoBroker() as broker:
        pid = broker.pid
        assert pid is not None
        await broker.stop()
        assert not broker.running and not _alive(pid)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", broker.port)
        await broker.start()
        async with MQTTClient(broker.url) as mqtt:
            await mqtt.publish("up/again", "yes")
        pid = broker.pid
    assert pid is not None and not _alive(pid)


async def test_mosquitto_accepts_on_every_extra_listener_once_started() -> None:
    # Mosquitto opens listeners in turn; start() returning means all of them are up.
    for _ in range(5):
        extra_port = free_port()
        async with MosquittoBroker(extra_config=f"listener {extra_port} 127.0.0.1\n"):
            _, writer = await asyncio.open_connection("127.0.0.1", extra_port)
            writer.close()
            await writer.wait_closed()


async def test_no_broker_at_all_is_an_error_naming_both_installs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(testing_mqtt, "find_mosquitto", lambda: None)
    monkeypatch.setattr(testing_mqtt, "find_amqtt", lambda *a, **k: None)
    with pytest.raises(RuntimeError) as caught:
        async with serve_mqtt_broker():
            pass
    assert "apt-get install -y mosquitto" in str(caught.value)
    assert "amqtt" in str(caught.value)
    monkeypatch.setattr(testing_mqtt.shutil, "which", lambda name: None)
    monkeypatch.setattr(testing_mqtt.os, "access", lambda path, mode: False)
    with pytest.raises(RuntimeError, match="mosquitto not found: install Mosquitto"):
        MosquittoBroker()


PROTO = """
syntax = "proto3";
package shop.v1;
service Shop {
  rpc Price (Item) returns (Quote);
  rpc Count (Item) returns (stream Quote);
}
message Item { string name = 1; int32 n = 2; }
message Quote { string name = 1; int32 cents = 2; }
"""


async def test_grpc_server_from_a_proto_file_with_reflection_and_health(tmp_path: Path) -> None:
    proto = tmp_path / "shop.proto"
    proto.write_text(PROTO)
    messages: dict[str, Any] = {}

    class Shop:
        async def Price(self, request: Any, context: Any) -> Any:
            return messages["shop.v1.Quote"](name=request.name, cents=100 * request.n)

        async def Count(self, request: Any, context: Any) -> Any:
            for i in range(request.n):
                yield messages["shop.v1.Quote"](name=request.name, cents=i)

    async with serve_grpc_proto(proto, {"shop.v1.Shop": Shop()}) as server:
        messages.update(server.messages)
        async with GRPCClient(server.target) as client:  # descriptors by reflection
            reply = await client.call("Shop", "Price", request={"name": "tea", "n": 3})
            assert reply == {"name": "tea", "cents": 300}
            stream = client.stream_call("Shop", "Count", request={"name": "x", "n": 3})
            assert [q.get("cents", 0) async for q in stream] == [0, 1, 2]
            assert (await client.health_check()).is_healthy
    with pytest.raises(ValueError, match=r"shop\.v1\.Nope"):
        async with serve_grpc_proto(proto, {"shop.v1.Nope": Shop()}):
            pass


async def test_stdio_echo_child_and_run_child() -> None:
    async with STDIOClient(command=echo_command()) as stdio:
        await stdio.send({"task": "x"})
        assert await stdio.receive(timeout=10) == {"task": "x"}
    async with run_child(echo_command()) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b'{"a": 1}\n')
        async with asyncio.timeout(10):
            assert await proc.stdout.readline() == b'{"a": 1}\n'
    assert proc.returncode is not None and not _alive(proc.pid)


async def test_mcp_server_child_answers_tools_call() -> None:
    pytest.importorskip("mcp")
    async with STDIOClient(command=mcp_server_command(), message_format="jsonrpc") as mcp:
        await mcp.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
            timeout=20,
        )
        await mcp.notify("notifications/initialized")
        result = await mcp.request(
            "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}, timeout=20
        )
    assert result["structuredContent"] == {"result": 5}


async def test_a_connection_made_as_the_websocket_server_stops_is_closed_with_it() -> None:
    # A client connects just before the server stops (as a test's last act before its
    # fixtures end): whichever turn of the loop the stop lands on, no socket is left open.
    for turns in range(8):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with serve_websocket() as server:
                socket.create_connection(("127.0.0.1", server.port)).close()
                for _ in range(turns):
                    await asyncio.sleep(0)  # let the loop run that many turns before the stop
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], turns
