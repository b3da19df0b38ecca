"""``agentcomm connect`` and ``agentcomm a2a``, through a subprocess, against real loopback servers.

``connect`` says what an address resolves to (client, protocol, redacted URL);
``a2a`` streams a task of an agent served by the official Python ``a2a-sdk``
(tests/agents/a2a/sdk_agent.py): JSON lines when piped, readable lines on a
terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
from collections.abc import AsyncIterator

import pytest

from tests.agents.a2a.sdk_agent import RunningAgent, serve_agent
from tests.servers.dns_server import serve_dns
from tests.test_cli import CLI, Result, assert_error, run

TOKEN = "cli-test-token"


@pytest.fixture
async def agent() -> AsyncIterator[RunningAgent]:
    async with serve_agent() as running:
        yield running


async def run_on_a_terminal(*args: str, timeout: float = 30) -> Result:
    """Run ``agentcomm ARGS`` with stdout on a pseudo-terminal; stderr piped."""
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read_all() -> None:
        with contextlib.suppress(OSError):  # EIO once the child closed its side
            while chunk := os.read(master, 65536):
                chunks.append(chunk)

    try:
        async with asyncio.timeout(timeout):
            reader = asyncio.create_task(asyncio.to_thread(read_all))
            assert proc.stderr is not None
            err = await proc.stderr.read()
            await proc.wait()
            await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
    assert proc.returncode is not None
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return Result(proc.returncode, text, err.decode())


# ------------------------------------------------------------------ connect


async def test_help_of_the_new_commands() -> None:
    results = await asyncio.gather(run("connect", "--help"), run("a2a", "--help"))
    for name, result in zip(("connect", "a2a"), results, strict=True):
        assert result.returncode == 0, result
        assert result.stdout.startswith(f"usage: agentcomm {name}"), result


async def test_connect_says_which_client_each_address_gives() -> None:
    # Every scheme is covered in-process by tests/test_connect.py; here, what is printed.
    cases = {
        "mqtts://broker.example.com": ("MQTTClient", "mqtt"),
        "a2a+https://agent.example.com": ("A2AClient", "a2a"),
        "https://agent.example.com/.well-known/agent-card.json": ("A2AClient", "a2a"),
    }
    results = await asyncio.gather(*(run("connect", address) for address in cases))
    for (address, (client, protocol)), result in zip(cases.items(), results, strict=True):
        assert result.returncode == 0, result
        [doc] = result.docs
        assert doc["client"] == client and doc["protocol"] == protocol, (address, doc)
        assert doc["url"] == address.split("+", 1)[-1]


async def test_connect_redacts_credentials_and_prints_only_the_program() -> None:
    url = "https://bob:PW-SECRET@api.example.com/x?token=TOK-SECRET&page=2"
    plain, command, mcp, pretty = await asyncio.gather(
        run("connect", url),
        run("connect", "--", "python", "server.py", "--token=ARG-SECRET"),
        run("connect", "--protocol", "mcp", "--", "python", "server.py"),
        run("--pretty", "connect", url),
    )
    for result in (plain, command, pretty):
        assert result.returncode == 0, result
        for secret in ("PW-SECRET", "TOK-SECRET", "ARG-SECRET"):
            assert secret not in result.stdout + result.stderr
    [doc] = plain.docs
    assert "bob:***@" in doc["url"] and "page=2" in doc["url"]
    assert command.docs == [{"client": "STDIOClient", "protocol": "stdio", "command": "python"}]
    assert mcp.docs[0]["client"] == "MCPClient"
    assert pretty.stdout.startswith("HTTPClient (http) https://bob:***@api.example.com/x?")


async def test_connect_refuses_what_the_clients_refuse() -> None:
    unknown, insecure, allowed, neither = await asyncio.gather(
        run("connect", "ftp://files.example.com"),
        run("connect", "http://agents.example.com/v1"),
        run("connect", "--insecure", "http://agents.example.com/v1"),
        run("connect", "localhost:8080"),
    )
    assert_error(unknown, "ERR_CONFIG")
    assert "a2a+https://" in unknown.stderr and "mqtts://" in unknown.stderr
    assert_error(insecure, "ERR_SECURITY")
    assert allowed.returncode == 0 and allowed.docs[0]["client"] == "HTTPClient", allowed
    assert_error(neither, "ERR_CONFIG")


async def test_connect_a_bare_domain_through_aid_discovery() -> None:
    async with serve_dns() as dns:
        dns.set_txt("_agent.tools.test", "v=aid1;p=mcp;u=https://mcp.tools.test/mcp")
        dns.set_txt("_agent.team.test", "v=aid1;p=a2a;u=https://agents.team.test/a2a")
        common = ("--nameserver", "127.0.0.1", "--port", str(dns.port))
        mcp, a2a, missing = await asyncio.gather(
            run("connect", *common, "tools.test"),
            run("connect", *common, "team.test"),
            run("connect", *common, "nothing.test"),
        )
        late_options = await run("connect", "tools.test", *common)
    assert mcp.docs == [
        {
            "client": "MCPClient",
            "protocol": "mcp",
            "url": "https://mcp.tools.test/mcp",
            "record": "_agent.tools.test",
        }
    ], mcp
    assert a2a.docs[0]["client"] == "A2AClient", a2a
    assert_error(missing, "ERR_NO_RECORD")
    assert_error(late_options, "ERR_CONFIG")
    assert "options go before ADDRESS" in late_options.stderr


# ------------------------------------------------------------------ a2a


async def test_a2a_direct_reply_and_task_as_json_lines(agent: RunningAgent) -> None:
    reply, task = await asyncio.gather(
        run("a2a", agent.url, "hello there"),
        run("a2a", agent.url, "chunks 3"),
    )
    assert reply.returncode == 0, reply
    [message] = reply.docs
    assert message["message"]["parts"][0]["text"] == "Hello! You said: hello there"

    assert task.returncode == 0, task
    docs = task.docs
    assert list(docs[0]) == ["task"] and list(docs[-1]) == ["statusUpdate"]
    assert docs[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    chunks = [
        d["artifactUpdate"]["artifact"]["parts"][0]["text"] for d in docs if "artifactUpdate" in d
    ]
    assert chunks == ["chunk 0;", "chunk 1;", "chunk 2;"]


async def test_a2a_on_a_terminal_prints_readable_lines(agent: RunningAgent) -> None:
    result = await run_on_a_terminal("a2a", agent.url, "task")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("task ") and lines[0].endswith(": submitted"), lines
    assert "status: working: working on it" in lines
    assert "artifact result: the result" in lines
    assert lines[-1] == "status: completed"


async def test_a2a_failed_task_exits_1_and_input_required_says_how_to_answer(
    agent: RunningAgent,
) -> None:
    failed = await run("a2a", agent.url, "fail")
    assert failed.returncode == 1, failed
    assert failed.docs[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_FAILED"

    asked = await run("--pretty", "a2a", agent.url, "ask")
    assert asked.returncode == 0, asked
    assert asked.stdout.splitlines()[-1] == "status: input-required: what is your name?"
    hint = asked.stderr.strip()
    assert "--task-id" in hint and "--context-id" in hint, asked
    words = hint.split()
    task_id = words[words.index("--task-id") + 1]
    context_id = words[words.index("--context-id") + 1]

    answered = await run("a2a", agent.url, "Ada", "--task-id", task_id, "--context-id", context_id)
    assert answered.returncode == 0, answered
    assert answered.docs[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    texts = [
        d["artifactUpdate"]["artifact"]["parts"][0]["text"]
        for d in answered.docs
        if "artifactUpdate" in d
    ]
    assert texts == ["answer: Ada"]


async def test_a2a_bearer_token_and_refusals() -> None:
    async with serve_agent(token=TOKEN) as secured:
        anonymous, with_token = await asyncio.gather(
            run("a2a", secured.url, "hello"),
            run("a2a", secured.url, "hello", "--token", TOKEN),
        )
        requests_before = len(secured.state.headers)
        remote = await run("a2a", "http://agents.example.com", "hello")
        unknown = await run("a2a", secured.url, "hello", "--binding", "carrier-pigeon")
        assert len(secured.state.headers) == requests_before
    assert_error(anonymous, "ERR_AUTH")
    assert TOKEN not in anonymous.stderr
    assert with_token.returncode == 0, with_token
    assert with_token.docs[0]["message"]["parts"][0]["text"] == "Hello! You said: hello"
    assert_error(remote, "ERR_SECURITY")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
