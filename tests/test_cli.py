"""``agentcomm``: every subcommand, through a subprocess, against real loopback servers.

Stdout is a pipe here, so results come out as JSON lines; errors are one
``error ERR_CODE: message`` line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.dns_server import serve_dns
from tests.servers.grpc_server import PROTO_FILE, serve_grpc
from tests.servers.http_app import make_app as make_http_app
from tests.servers.mosquitto import Mosquitto
from tests.servers.ports import free_port
from tests.servers.sse_app import make_app as make_sse_app
from tests.servers.uvicorn_server import serve_asgi
from tests.servers.ws_server import WSServer

SERVERS = Path(__file__).resolve().parent / "servers"
CHILDREN = [sys.executable, str(SERVERS / "stdio_children.py")]
MCP = [sys.executable, str(SERVERS / "mcp_server.py")]
# The real entry point, installed beside this interpreter (pip puts console scripts there).
ENTRY_POINT = Path(sys.executable).with_name("agentcomm")
CLI = (
    [str(ENTRY_POINT)]
    if ENTRY_POINT.exists()
    else [sys.executable, "-m", "agenticaiframework.communication"]
)


class Result:
    """What one ``agentcomm`` run printed and returned."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def docs(self) -> list[Any]:
        """Stdout parsed as JSON lines (every line must be one JSON document)."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    def __repr__(self) -> str:
        return f"<rc={self.returncode} stdout={self.stdout!r} stderr={self.stderr!r}>"


async def run(*args: str, stdin: str | None = None, timeout: float = 30) -> Result:
    """Run ``agentcomm ARGS`` with stdout and stderr piped."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def assert_error(result: Result, code: str) -> None:
    """One error line with ``code`` on stderr, nothing on stdout, exit 1."""
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith(f"error {code}: "), result
    assert result.stdout == "", result


@pytest.fixture
async def http_url() -> AsyncIterator[str]:
    app, _state = make_http_app()
    async with serve_asgi(app) as url:
        yield url


# ------------------------------------------------------------------------------ --help


HELP_COMMANDS = [
    [],
    ["http"],
    ["ws"],
    ["sse"],
    ["mqtt"],
    ["mqtt", "pub"],
    ["mqtt", "sub"],
    ["grpc"],
    ["grpc", "call"],
    ["grpc", "describe"],
    ["stdio"],
    ["health"],
    ["discover"],
    ["mcp"],
    ["demo"],
]


async def test_help_on_every_command_and_subcommand() -> None:
    results = await asyncio.gather(*(run(*cmd, "--help") for cmd in HELP_COMMANDS))
    for cmd, result in zip(HELP_COMMANDS, results, strict=True):
        assert result.returncode == 0, (cmd, result)
        assert result.stdout.startswith(f"usage: agentcomm {' '.join(cmd)}".rstrip()), (cmd, result)
        assert result.stderr == ""
    top = results[0].stdout
    for name in ("http", "ws", "sse", "mqtt", "grpc", "stdio", "health", "discover", "demo"):
        assert name in top


async def test_usage_errors_exit_2() -> None:
    missing, unknown = await asyncio.gather(run(), run("telnet", "x"))
    assert missing.returncode == 2 and "required" in missing.stderr
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


# ------------------------------------------------------------------------------ http


async def test_http_get_post_and_status(http_url: str) -> None:
    got, posted, missing, pretty = await asyncio.gather(
        run("http", "GET", f"{http_url}/data"),
        run(
            "http",
            "post",
            f"{http_url}/echo",
            "--json",
            '{"task": "x"}',
            "-H",
            "X-Trace: abc",
        ),
        run("http", "GET", f"{http_url}/status/404"),
        run("--pretty", "http", "GET", f"{http_url}/data"),
    )
    assert got.returncode == 0, got
    [doc] = got.docs
    assert doc["status"] == 200
    assert doc["body"] == {"items": [1, 2, 3], "source": "local"}
    assert doc["headers"]["content-type"] == "application/json"

    assert posted.returncode == 0, posted
    [echo] = posted.docs
    assert echo["body"]["method"] == "POST"
    assert json.loads(echo["body"]["body"]) == {"task": "x"}
    assert echo["body"]["headers"]["x-trace"] == "abc"

    assert missing.returncode == 1, missing
    assert missing.docs[0]["status"] == 404
    assert missing.docs[0]["body"] == "status 404"

    assert pretty.returncode == 0, pretty
    assert pretty.stdout.splitlines()[0] == "HTTP 200 OK"
    assert '"source": "local"' in pretty.stdout


async def test_http_errors_are_one_line_with_the_code() -> None:
    refused_port = free_port()
    insecure, refused, bad_json, bad_header = await asyncio.gather(
        run("http", "GET", "http://agents.example.com/api"),
        run("http", "GET", f"http://127.0.0.1:{refused_port}/x", "--timeout", "2"),
        run("http", "POST", "http://127.0.0.1:1/x", "--json", "{not json"),
        run("http", "GET", "http://127.0.0.1:1/x", "-H", "no colon"),
    )
    assert_error(insecure, "ERR_SECURITY")
    assert_error(refused, "ERR_CONNECTION")
    assert_error(bad_json, "ERR_CONFIG")
    assert_error(bad_header, "ERR_CONFIG")


async def test_error_output_and_verbose_logs_never_show_url_secrets(http_url: str) -> None:
    secrets = ("PW-SECRET", "KEY-SECRET", "TOK-SECRET")
    query = "api_key=KEY-SECRET&token=TOK-SECRET&page=2"
    refused = free_port()
    http_refused, ws_refused, verbose = await asyncio.gather(
        run("http", "GET", f"http://bob:PW-SECRET@127.0.0.1:{refused}/x?{query}"),
        run("ws", f"ws://bob:PW-SECRET@127.0.0.1:{refused}/x?{query}", "--send", "x"),
        run("-vv", "http", "GET", http_url.replace("//", "//bob:PW-SECRET@") + f"/data?{query}"),
    )
    for result in (http_refused, ws_refused):
        assert result.returncode == 1, result
        assert "error ERR_" in result.stderr and "127.0.0.1" in result.stderr, result
    assert verbose.returncode == 0, verbose
    assert "HTTP Request: GET" in verbose.stderr and "bob:***@" in verbose.stderr, verbose
    for result in (http_refused, ws_refused, verbose):
        for secret in secrets:
            assert secret not in result.stderr + result.stdout, (secret, result)


# ------------------------------------------------------------------------------ ws, sse


async def test_ws_send_and_receive() -> None:
    async with WSServer() as server:
        echo, agent, refused = await asyncio.gather(
            run("ws", server.url("/echo"), "--send", '{"a": 1}', "--send", "plain text"),
            run("ws", server.url("/ws"), "--send", '{"type": "hello"}'),
            run("ws", f"ws://127.0.0.1:{free_port()}/x", "--send", "x"),
        )
        stream = await run("ws", server.url("/stream?n=3"), "--count", "4")
    assert echo.returncode == 0, echo
    assert echo.docs == [{"a": 1}, "plain text"]
    assert agent.docs == [{"type": "welcome"}], agent
    assert stream.returncode == 0, stream
    assert len(stream.docs) == 4 and stream.docs[-1] == {"type": "done"}
    assert_error(refused, "ERR_CONNECTION")


async def test_ws_times_out_with_a_clear_error() -> None:
    async with WSServer() as server:
        result = await run("ws", server.url("/record"), "--count", "1", "--timeout", "0.3")
    assert_error(result, "ERR_TIMEOUT")


async def test_sse_prints_events() -> None:
    app, _state = make_sse_app()
    async with serve_asgi(app) as url:
        every, first_two, typed = await asyncio.gather(
            run("sse", f"{url}/events?count=5", "--count", "3"),
            run("sse", f"{url}/events?count=10", "--count", "2"),
            run("sse", f"{url}/typed", "--until", "done"),
        )
        not_found = await run("sse", f"{url}/status/404")
    assert every.returncode == 0, every
    assert every.docs == [
        {"event": "message", "data": json.dumps({"n": n}), "id": str(n)} for n in (1, 2, 3)
    ]
    assert [d["id"] for d in first_two.docs] == ["1", "2"]
    assert [d["event"] for d in typed.docs] == ["message", "error", "done"], typed
    assert_error(not_found, "ERR_HTTP_STATUS")


# ------------------------------------------------------------------------------ mqtt


async def test_mqtt_pub_and_sub() -> None:
    async with Mosquitto() as broker:
        # Retained messages reach a subscriber that starts later: no race.
        pub1, pub2 = await asyncio.gather(
            run(
                "mqtt",
                "--broker",
                broker.url,
                "pub",
                "agents/a1/status",
                '{"ok": true}',
                "--retain",
            ),
            run(
                "mqtt",
                "--broker",
                broker.url,
                "pub",
                "jobs/7",
                "queued",
                "--qos",
                "1",
                "--retain",
            ),
        )
        sub = await run(
            "mqtt", "--broker", broker.url, "sub", "agents/+/status", "jobs/#", "--count", "2"
        )
        # A live message to a subscriber that is already listening.
        listener = asyncio.ensure_future(
            run("mqtt", "--broker", broker.url, "sub", "live/topic", "--qos", "1", "--count", "1")
        )
        try:
            for _ in range(100):
                await run("mqtt", "--broker", broker.url, "pub", "live/topic", "hi", "--qos", "1")
                if listener.done():
                    break
                await asyncio.sleep(0.2)
            live = await asyncio.wait_for(listener, 30)
        finally:
            listener.cancel()
    assert pub1.docs == [{"published": "agents/a1/status", "qos": 0}], pub1
    assert pub2.docs == [{"published": "jobs/7", "qos": 1}], pub2
    assert sub.returncode == 0, sub
    got = sorted((d["topic"], json.dumps(d["payload"])) for d in sub.docs)
    assert got == [("agents/a1/status", '{"ok": true}'), ("jobs/7", '"queued"')]
    assert live.docs[0]["topic"] == "live/topic" and live.docs[0]["payload"] == "hi"


async def test_mqtt_errors() -> None:
    refused, insecure = await asyncio.gather(
        run("mqtt", "--broker", f"mqtt://127.0.0.1:{free_port()}", "pub", "t", "x"),
        run("mqtt", "--broker", "mqtt://broker.example.com:1883", "pub", "t", "x"),
    )
    assert_error(refused, "ERR_CONNECTION")
    assert_error(insecure, "ERR_SECURITY")


# ------------------------------------------------------------------------------ grpc


async def test_grpc_call_by_reflection_and_proto_and_describe() -> None:
    async with serve_grpc() as server:
        target = server.target
        by_reflection, by_proto, streamed, described, unknown, failing = await asyncio.gather(
            run(
                "grpc",
                "call",
                target,
                "AgentService.ExecuteTask",
                '{"task_id": "t1", "input": "hello"}',
            ),
            run(
                "grpc",
                "call",
                target,
                "agents.v1.AgentService.ExecuteTask",
                '{"task_id": "t2"}',
                "--proto",
                str(PROTO_FILE),
            ),
            run("grpc", "call", target, "AgentService.StreamTokens", '{"count": 3}'),
            run("grpc", "describe", target),
            run("grpc", "call", target, "AgentService.NoSuchMethod"),
            run("grpc", "call", target, "AgentService.ExecuteTask", '{"fail_code": 5}'),
        )
        upload = await run("grpc", "call", target, "DataService.UploadData")
    assert by_reflection.returncode == 0, by_reflection
    [reply] = by_reflection.docs
    assert reply["task_id"] == "t1" and reply["result"] == "processed: hello"
    assert by_proto.docs[0]["task_id"] == "t2", by_proto
    assert streamed.docs == [{"token": f"t{i}", "index": i} for i in range(3)], streamed
    [description] = described.docs
    services = {s["name"]: s for s in description["services"]}
    assert "agents.v1.AgentService" in services
    methods = {m["name"] for m in services["agents.v1.AgentService"]["methods"]}
    assert {"ExecuteTask", "StreamTokens"} <= methods
    assert_error(unknown, "ERR_CONFIG")
    assert_error(failing, "ERR_REMOTE")
    assert_error(upload, "ERR_CONFIG")
    assert "streams its requests" in upload.stderr


async def test_grpc_bad_method_argument_and_refused() -> None:
    bad, refused = await asyncio.gather(
        run("grpc", "call", "127.0.0.1:1", "NoDot"),
        run("grpc", "describe", f"127.0.0.1:{free_port()}"),
    )
    assert_error(bad, "ERR_CONFIG")
    assert refused.returncode == 1 and refused.stderr.startswith("error ERR_"), refused


# ------------------------------------------------------------------------------ stdio


async def test_stdio_json_line_and_jsonrpc() -> None:
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "agentcomm-tests", "version": "1"},
            },
        }
    )
    session = [
        init,
        '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}',
        '{"jsonrpc": "2.0", "id": 3, "method": "tools/call",'
        ' "params": {"name": "add", "arguments": {"a": 2, "b": 40}}}',
    ]
    as_json, as_line, piped, rpc, no_cmd = await asyncio.gather(
        run("stdio", "--send", '{"a": 1}', "--send", "[1, 2]", "--", *CHILDREN, "echo"),
        run("stdio", "--format", "line", "--send", "hello there", "--", *CHILDREN, "echo"),
        run("stdio", "--", *CHILDREN, "echo", stdin='{"n": 1}\n\n{"n": 2}\n'),
        run("stdio", "--format", "jsonrpc", *(f"--send={m}" for m in session), "--", *MCP),
        run("stdio", "--send", "x"),
    )
    assert as_json.returncode == 0, as_json
    assert as_json.docs == [{"a": 1}, [1, 2]]
    assert as_line.docs == ["hello there"], as_line
    assert piped.docs == [{"n": 1}, {"n": 2}], piped
    assert rpc.returncode == 0, rpc
    initialized, listed, called = rpc.docs
    assert initialized["id"] == 1
    assert initialized["result"]["serverInfo"]["name"] == "agenticaiframework-test", rpc
    assert "add" in {tool["name"] for tool in listed["result"]["tools"]}
    assert called == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": called["result"],
    } and called["result"]["structuredContent"] == {"result": 42}
    assert_error(no_cmd, "ERR_CONFIG")


async def test_stdio_process_exit_is_an_error() -> None:
    result = await run(
        "stdio", "--send", '{"a": 1}', "--send", '{"b": 2}', "--", *CHILDREN, "exit", "3"
    )
    assert result.returncode == 1, result
    assert result.docs == ["bye"]  # what it printed before exiting is still shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error ERR_PROCESS_EXITED: "), result
    verbose = await run(
        "-v", "stdio", "--send", '{"a": 1}', "--send", "{}", "--", *CHILDREN, "exit", "3"
    )
    assert verbose.returncode == 1
    assert "WARNING agenticaiframework.communication.stdio: " in verbose.stderr, verbose


# ------------------------------------------------------------------------------ health


async def test_health_file_healthy_and_unhealthy(http_url: str, tmp_path: Path) -> None:
    async with serve_grpc() as grpc_server, WSServer() as ws:
        good = tmp_path / "good.toml"
        good.write_text(
            f"""
[clients.api]
type = "http"
url = "{http_url}/data"
max_retries = 0

[clients.socket]
type = "websocket"
url = "{ws.url("/echo")}"

[clients.rpc]
type = "grpc"
target = "{grpc_server.target}"

[clients.worker]
type = "stdio"
command = {json.dumps([*CHILDREN, "echo"])}
"""
        )
        bad = tmp_path / "bad.toml"
        bad.write_text(
            f"""
[clients.api]
type = "http"
url = "{http_url}/data"

[clients.down]
type = "http"
url = "http://127.0.0.1:{free_port()}/health"
max_retries = 0
"""
        )
        invalid = tmp_path / "invalid.toml"
        invalid.write_text('[clients.x]\ntype = "carrier-pigeon"\n')
        healthy, unhealthy, broken, pretty, absent = await asyncio.gather(
            run("health", str(good)),
            run("health", str(bad), "--timeout", "3"),
            run("health", str(invalid)),
            run("--pretty", "health", str(bad), "--timeout", "3"),
            run("health", str(tmp_path / "missing.toml")),
        )
    assert healthy.returncode == 0, healthy
    verdicts = {d["name"]: d["healthy"] for d in healthy.docs}
    assert verdicts == {"api": True, "socket": True, "rpc": True, "worker": True}
    assert all(isinstance(d["latency_ms"], float | int) for d in healthy.docs)

    assert unhealthy.returncode == 1, unhealthy
    verdicts = {d["name"]: d["healthy"] for d in unhealthy.docs}
    assert verdicts == {"api": True, "down": False}

    assert pretty.returncode == 1
    header, *rows = pretty.stdout.splitlines()
    assert header.split()[:2] == ["name", "status"]
    assert any(row.split()[:2] == ["down", "UNHEALTHY"] for row in rows), pretty

    assert_error(broken, "ERR_CONFIG")
    assert "clients.x.type" in broken.stderr
    assert_error(absent, "ERR_CONFIG")


# ------------------------------------------------------------------------------ discover


async def test_discover_prints_the_record_or_fails_with_the_aid_code() -> None:
    async with serve_dns() as dns:
        dns.set_txt(
            "_agent.example.test",
            "v=aid1;u=wss://agent.example.test/ws;p=websocket;s=Demo agent",
        )
        dns.set_txt("_agent.broken.test", "v=aid1;p=websocket")
        common = ("--nameserver", "127.0.0.1", "--port", str(dns.port))
        found, missing, malformed = await asyncio.gather(
            run("discover", "example.test", *common),
            run("discover", "nothing.test", *common),
            run("discover", "broken.test", *common),
        )
    assert found.returncode == 0, found
    [record] = found.docs
    assert record["v"] == "aid1"
    assert record["uri"] == "wss://agent.example.test/ws"
    assert record["proto"] == "websocket"
    assert record["desc"] == "Demo agent"
    assert_error(missing, "ERR_NO_RECORD")
    assert missing.returncode == 1 and malformed.returncode == 1, malformed
    assert malformed.stderr.startswith("error ERR_"), malformed


async def test_ws_interactive_on_a_terminal() -> None:
    """With a terminal on stdin, each typed line is sent; Ctrl-D ends the session."""
    master, slave = pty.openpty()
    try:
        async with WSServer() as server:
            proc = await asyncio.create_subprocess_exec(
                *CLI,
                "ws",
                server.url("/echo"),
                stdin=slave,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            os.close(slave)
            slave = -1
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(20):
                    os.write(master, b'{"typed": 1}\n')
                    first = await proc.stdout.readline()
                    os.write(master, b"second line\n")
                    second = await proc.stdout.readline()
                    os.write(master, b"\x04")  # Ctrl-D: end of input
                    rest, err = await proc.communicate()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert json.loads(first) == {"typed": 1}
    assert proc.returncode == 0, err
    assert json.loads(second) == "second line"
    assert rest == b""


# ------------------------------------------------------------------------------ first hour


def test_the_entry_point_is_installed() -> None:
    assert ENTRY_POINT.exists(), f"agentcomm is not installed beside {sys.executable}"


async def test_version_from_the_package_metadata() -> None:
    import importlib.metadata

    import agenticaiframework.communication as package

    result = await run("--version")
    assert result.returncode == 0, result
    expected = importlib.metadata.version("agenticaiframework-communication")
    assert package.__version__ == expected
    assert result.stdout.strip() == f"agentcomm {expected}"


async def test_global_options_work_after_the_subcommand(http_url: str) -> None:
    async with Mosquitto() as broker:
        published, http_after, http_before = await asyncio.gather(
            run("mqtt", "pub", "t/1", "x", "--broker", broker.url, "--pretty"),
            run("http", "GET", f"{http_url}/data", "--jsonl"),
            run("--jsonl", "http", "GET", f"{http_url}/data"),
        )
    assert published.returncode == 0, published
    assert published.stdout.strip() == '{\n  "published": "t/1",\n  "qos": 0\n}', published
    assert http_after.returncode == 0, http_after
    after, before = http_after.docs[0], http_before.docs[0]
    assert (
        (after["status"], after["body"])
        == (before["status"], before["body"])
        == (200, after["body"])
    )


async def test_a_usage_error_shows_the_usage_of_the_typed_subcommand() -> None:
    result = await run("mqtt", "pub", "t", "x", "--bogus")
    assert result.returncode == 2, result
    assert result.stderr.startswith("usage: agentcomm mqtt pub "), result
    assert "agentcomm mqtt pub: error: unrecognized arguments: --bogus" in result.stderr


async def test_urls_without_a_scheme_and_targets_given_as_urls(http_url: str) -> None:
    loopback = http_url.removeprefix("http://")
    assumed, insecure, grpc_url = await asyncio.gather(
        run("http", "GET", f"{loopback}/data"),
        run("http", "GET", "http://10.0.0.1/x"),
        run("grpc", "describe", f"http://127.0.0.1:{free_port()}"),
    )
    assert assumed.returncode == 0 and assumed.docs[0]["status"] == 200, assumed
    assert_error(insecure, "ERR_SECURITY")
    assert "--insecure" in insecure.stderr and "allow_insecure" not in insecure.stderr
    assert_error(grpc_url, "ERR_CONFIG")
    assert "a gRPC target is host:port" in grpc_url.stderr
    assert "did you mean '127.0.0.1:" in grpc_url.stderr
    # The library says what it expected, too.
    from agenticaiframework.communication import ConfigError, HTTPClient

    with pytest.raises(ConfigError, match=r"did you mean 'http://127\.0\.0\.1:8081/x'"):
        HTTPClient("127.0.0.1:8081/x")
    with pytest.raises(ConfigError, match=r"did you mean 'https://api\.example\.com/v1'"):
        HTTPClient("api.example.com/v1")


async def test_sse_pretty_no_reconnect_and_count() -> None:
    app, _state = make_sse_app()
    async with serve_asgi(app) as url:
        finite, counted = await asyncio.gather(
            run("--pretty", "sse", f"{url}/events?count=3", "--no-reconnect", timeout=30),
            run("sse", f"{url}/events?count=3", "--count", "2"),
        )
    assert finite.returncode == 0, finite
    # Each event once (no replay of a finished stream), its JSON data as sent.
    assert finite.stdout.splitlines() == [f'message [{n}]: {{"n": {n}}}' for n in (1, 2, 3)]
    assert [d["id"] for d in counted.docs] == ["1", "2"]


async def test_grpc_describe_is_a_tree_on_a_terminal_and_json_on_request() -> None:
    async with serve_grpc() as server:
        tree, full = await asyncio.gather(
            run("--pretty", "grpc", "describe", server.target),
            run("--pretty", "grpc", "describe", server.target, "--json"),
        )
    assert tree.returncode == 0, tree
    lines = tree.stdout.splitlines()
    assert len(lines) < 40, tree.stdout
    assert "  agents.v1.AgentService" in lines
    assert any(
        "ExecuteTask(agents.v1.TaskRequest) -> agents.v1.TaskResponse" in line for line in lines
    )
    assert any("task_id: string" in line for line in lines)
    assert json.loads(full.stdout)["services"], full


async def test_stdio_jsonrpc_error_from_the_peer_exits_non_zero() -> None:
    # A method the real MCP server does not have: it answers with a JSON-RPC error.
    result = await run(
        "stdio",
        "--format",
        "jsonrpc",
        "--send",
        '{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
        "--",
        *MCP,
    )
    assert result.returncode == 1, result
    [reply] = result.docs
    assert reply["id"] == 1 and "error" in reply


async def test_health_file_errors_name_the_client_and_probes_check_what_they_say(
    http_url: str, tmp_path: Path
) -> None:
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text(f'[clients.api]\ntype = "http"\nurl = "{http_url}"\ntimeout = 3\n')
    ping_without_jsonrpc = tmp_path / "ping.toml"
    ping_without_jsonrpc.write_text(
        f'[clients.worker]\ntype = "stdio"\ncommand = {json.dumps([*CHILDREN, "echo"])}\n'
        'ping_method = "ping"\n'
    )
    not_found = tmp_path / "not_found.toml"
    not_found.write_text(
        f'[clients.api]\ntype = "http"\nurl = "{http_url}/status/404"\nmax_retries = 0\n'
        f'[clients.checked]\ntype = "http"\nurl = "{http_url}"\nhealth_path = "/health"\n'
    )
    unknown, ping, found = await asyncio.gather(
        run("health", str(unknown_key)),
        run("health", str(ping_without_jsonrpc)),
        run("health", str(not_found)),
    )
    assert_error(unknown, "ERR_CONFIG")
    assert "clients.api.timeout: not a field of HTTPConfig" in unknown.stderr, unknown
    assert_error(ping, "ERR_CONFIG")
    assert "clients.worker.ping_method" in ping.stderr and "jsonrpc" in ping.stderr, ping
    verdicts = {d["name"]: (d["healthy"], d["detail"]) for d in found.docs}
    assert verdicts["api"][0] is False and "404" in verdicts["api"][1], found
    assert verdicts["checked"][0] is True, found
    assert found.returncode == 1


async def test_mcp_lists_and_calls_tools_of_a_real_mcp_server() -> None:
    listed, called, failed, no_server = await asyncio.gather(
        run("mcp", "--", *MCP),
        run("mcp", "call", "add", "a=1", "b=41", "--", *MCP),
        run("mcp", "call", "fail", "reason=nope", "--", *MCP),
        run("mcp", "call", "add"),
    )
    assert listed.returncode == 0, listed
    assert {"add", "echo"} <= {tool["name"] for tool in listed.docs}
    assert called.returncode == 0, called
    assert called.docs[0]["structuredContent"] == {"result": 42}
    assert failed.returncode == 1 and failed.docs[0]["isError"] is True, failed
    assert_error(no_server, "ERR_CONFIG")
