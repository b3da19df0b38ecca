"""The pytest plugin: loaded by its entry point, every fixture works, nothing is left behind."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from agenticaiframework.communication import MQTTClient, WebSocketClient
from agenticaiframework.communication.testing import plugin
from tests.child_env import child_env

PLUGIN_TESTS = '''
import asyncio
import socket

from agenticaiframework.communication import (
    GRPCClient, HTTPClient, MQTTClient, STDIOClient, WebSocketClient,
)

PROTO = """syntax = "proto3";
package t.v1;
service Echo { rpc Say (Msg) returns (Msg); }
message Msg { string text = 1; }
"""


class Echo:
    async def Say(self, request, context):
        return type(request)(text=request.text.upper())


async def test_function_fixtures(
    agentcomm_http_server, agentcomm_ws_server, agentcomm_mqtt_broker, agentcomm_fault_proxy,
    agentcomm_serve_asgi, agentcomm_serve_websocket, agentcomm_serve_grpc,
    agentcomm_stdio_echo_command, tmp_path,
):
    async with HTTPClient(agentcomm_http_server.url) as http:
        assert (await http.get("/hi")).json()["path"] == "/hi"
    async with WebSocketClient(agentcomm_ws_server.url) as ws:
        await ws.send({"a": 1})
        assert await ws.receive(timeout=5) == {"a": 1}
    proxy = agentcomm_fault_proxy(agentcomm_mqtt_broker.url)
    async with MQTTClient(proxy.url, reconnect_delay=0.05) as mqtt:
        await mqtt.subscribe("t/#", qos=1)
        await mqtt.publish("t/1", "one", qos=1)
        assert (await mqtt.receive()).raw == b"one"
        await proxy.cut()
        await mqtt.publish("t/2", "two", qos=1)
        assert (await mqtt.receive()).raw == b"two"
    assert proxy.accepted >= 2

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    url = agentcomm_serve_asgi(app)
    async with HTTPClient(url) as http:
        assert (await http.get("/")).status_code == 204

    async def shout(connection):
        async for message in connection:
            await connection.send(message.upper())

    server = agentcomm_serve_websocket(shout)
    async with WebSocketClient(server.url) as ws:
        await ws.send("hey")
        assert await ws.receive(timeout=5) == "HEY"
    proto = tmp_path / "echo.proto"
    proto.write_text(PROTO)
    grpc_server = agentcomm_serve_grpc(proto, {"t.v1.Echo": Echo()})
    async with GRPCClient(grpc_server.target) as client:
        assert await client.call("Echo", "Say", request={"text": "hi"}) == {"text": "HI"}
    async with STDIOClient(command=agentcomm_stdio_echo_command) as stdio:
        await stdio.send({"x": 1})
        assert await stdio.receive(timeout=10) == {"x": 1}


SEEN = []


def _reachable(url):
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=5).close()


def test_session_fixtures_in_a_plain_test(
    agentcomm_http_server_session, agentcomm_ws_server_session, agentcomm_mqtt_broker_session,
    agentcomm_fault_proxy_session,
):
    for server in (agentcomm_http_server_session, agentcomm_ws_server_session,
                   agentcomm_mqtt_broker_session):
        _reachable(server.url)
    proxy = agentcomm_fault_proxy_session(agentcomm_mqtt_broker_session.url)
    _reachable(proxy.url)
    SEEN.append((agentcomm_http_server_session.url, proxy.port))


async def test_session_fixtures_are_shared(
    agentcomm_http_server_session, agentcomm_fault_proxy_session
):
    assert SEEN and SEEN[0][0] == agentcomm_http_server_session.url
'''


def _run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(source)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = child_env(TMPDIR=str(temp))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def test_every_fixture_works_from_an_outside_test_file_and_leaves_nothing(tmp_path: Path) -> None:
    result = _run_pytest(tmp_path, PLUGIN_TESTS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 passed" in result.stdout
    # The brokers' folders were in the run's TMPDIR: all gone, and no broker still runs.
    assert not list((tmp_path / "tmp").glob("agentcomm-*"))
    assert not _processes_mentioning(str(tmp_path))


def test_a_server_that_cannot_start_fails_the_test_with_its_reason(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """
        def test_proto(agentcomm_serve_grpc, tmp_path):
            bad = tmp_path / "bad.proto"
            bad.write_text("this is not proto")
            agentcomm_serve_grpc(bad, {})
        """
    )
    result = _run_pytest(tmp_path, source)
    assert result.returncode == 1
    assert "RuntimeError: grpcio-tools could not compile" in result.stdout


def test_the_entry_point_names_the_plugin() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert {p.value for p in points if p.name == "agentcomm"} == {plugin.__name__}


def test_importing_the_plugin_loads_no_server_library() -> None:
    code = (
        "import sys, json; import agenticaiframework.communication.testing.plugin; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    loaded = set(json.loads(out))
    heavy = {"uvicorn", "websockets", "grpc", "aiomqtt", "paho", "starlette", "mcp"}
    assert not heavy & {name.split(".")[0] for name in loaded}
    servers = {name for name in loaded if name.startswith(plugin.__package__ + ".")}
    assert servers == {plugin.__name__}


def test_every_fixture_name_carries_the_prefix() -> None:
    source = Path(plugin.__file__).read_text()
    names = re.findall(r"@pytest\.fixture[^\n]*\ndef (\w+)", source)
    assert len(names) == 14, names
    assert all(name.startswith("agentcomm_") for name in names), names


async def test_fixtures_in_this_suite_under_pytest_asyncio(
    agentcomm_mqtt_broker: object, agentcomm_ws_server: object, agentcomm_fault_proxy: object
) -> None:
    from agenticaiframework.communication.testing import FaultProxy, MQTTBroker, WebSocketServer

    assert isinstance(agentcomm_mqtt_broker, MQTTBroker)
    assert isinstance(agentcomm_ws_server, WebSocketServer)
    proxy = agentcomm_fault_proxy(agentcomm_ws_server.url)  # type: ignore[operator]
    assert isinstance(proxy, FaultProxy)
    async with WebSocketClient(proxy.url, auto_reconnect=False) as ws:
        await ws.send("x")
        assert await ws.receive(timeout=5) == "x"
        await proxy.reset()  # driven from this test's loop, run in the servers' loop
        assert proxy.connections == 0
    async with MQTTClient(agentcomm_mqtt_broker.url) as mqtt:
        await mqtt.publish("a/b", "c")
