"""The guide's STDIO snippets, as written, with only the commands pointed at local scripts.

``python`` becomes ``sys.executable`` and the guide's ``worker.py`` /
MCP server become the scripts in tests/servers/. Names a snippet assumes
(``input_data``) are defined right before it; assertions after a snippet
check what its user would see.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVERS = Path(__file__).parent / "servers"


async def test_stdio_basic_usage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)
    input_data = "hello agents"
    workers = str(SERVERS / "workers")

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import STDIOClient

    # Communicate with subprocess
    async with STDIOClient(
        command=[sys.executable, "worker.py"],
        working_dir=workers
    ) as stdio:
        # Send input
        await stdio.send({"task": "process", "data": input_data})

        # Receive output
        response = await stdio.receive()
        logger.info(response)

    assert response == {"status": "done", "task": "process", "result": "HELLO AGENTS"}
    assert "'result': 'HELLO AGENTS'" in caplog.text


async def test_stdio_configuration() -> None:
    from agenticaiframework.communication import STDIOClient, STDIOConfig

    config = STDIOConfig(
        # Process settings
        command=["node", "agent.js"],
        working_dir="./agents",
        env={"NODE_ENV": "production"},

        # I/O settings
        encoding="utf-8",
        line_buffered=True,

        # Timeouts
        startup_timeout=10,
        response_timeout=60,

        # Message format
        message_format="json", # Options: json, line, raw
        delimiter="\n"
    )

    stdio = STDIOClient(config=config)

    # Building the client starts nothing: the process starts on connect.
    assert stdio.config is config
    assert stdio.pid is None
    assert stdio.config.command == ("node", "agent.js")
    await stdio.close()


async def test_stdio_interactive_mode(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)
    from agenticaiframework.communication import STDIOClient

    import logging

    logger = logging.getLogger(__name__)

    async with STDIOClient(command=[sys.executable, "-i"]) as stdio:
        # Interactive Python session
        await stdio.send("x = 42")
        await stdio.send("print(x * 2)")

        response = await stdio.receive()
        logger.info(response) # "84"

    assert response == "84"
    assert ">>> " in stdio.stderr_tail  # python -i prompts on stderr, not stdout


async def test_stdio_mcp_server_communication(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(20)
    mcp_server = str(SERVERS / "mcp_server.py")

    import logging

    logger = logging.getLogger(__name__)

    from agenticaiframework.communication import STDIOClient

    # Connect to MCP server
    async with STDIOClient(
        command=[sys.executable, mcp_server],
        message_format="jsonrpc"
    ) as mcp:
        # Initialize MCP session
        await mcp.send({
            "jsonrpc": "2.0",
            "method": "initialize",
            "params": {"capabilities": {}},
            "id": 1
        })

        init_response = await mcp.receive()
        logger.info(f"MCP initialized: {init_response}")

        # List tools
        await mcp.send({
            "jsonrpc": "2.0",
            "method": "tools/list",
            "id": 2
        })

        tools = await mcp.receive()
        logger.info(f"Available tools: {tools}")

    # The snippet runs as written, but a real MCP server (mcp 2.3) refuses an
    # initialize without protocolVersion and clientInfo, and then refuses
    # tools/list on the uninitialised session: the user sees two JSON-RPC
    # error replies, delivered by receive() as plain dicts.
    assert init_response == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32602, "message": "Invalid request parameters", "data": ""},
    }
    assert tools["id"] == 2
    assert tools["error"]["code"] == -32602
    assert "MCP initialized: {'jsonrpc': '2.0', 'id': 1, 'error'" in caplog.text
