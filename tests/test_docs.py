"""Every Python block in docs/ is run against local servers or marked illustrative.

A block is preceded by one marker comment:

* ``<!-- run: http -->``: run with ``http://127.0.0.1:8000`` replaced by the
  test HTTP server's URL (its app is ``tests/servers/http_app.py``);
* ``<!-- run: sse -->``: ``http://127.0.0.1:8000`` replaced by the SSE test
  app's URL (``tests/servers/sse_app.py``);
* ``<!-- run: ws -->``: ``ws://127.0.0.1:8765`` replaced by the WebSocket test
  server's URL (``tests/servers/ws_server.py``; paths such as ``/ws`` kept);
* ``<!-- run: mqtt -->``: ``mqtt://127.0.0.1:1883`` replaced by a Mosquitto
  broker started for the block (``tests/servers/mosquitto.py``);
* ``<!-- run: grpc -->``: ``127.0.0.1:50051`` replaced by the gRPC test
  server's target and ``protos/agent_service.proto`` by the test proto
  (``tests/servers/grpc_server.py``);
* ``<!-- run: stdio -->``: ``"python"`` replaced by this interpreter, and
  ``worker.py`` / ``jsonrpc_server.py`` by the test children in
  ``tests/servers/``;
* ``<!-- run: a2a -->``: ``http://127.0.0.1:9999`` replaced by the URL of an
  A2A agent served by the a2a-sdk (``tests/agents/a2a/sdk_agent.py``);
* ``<!-- run: none -->``: run as is, no server needed;
* ``<!-- run: pytest -->``: the block is a test module: it is run by pytest in
  a child process, in a folder of its own outside the repository (the
  ``agentcomm_*`` fixtures come from the installed plugin), and must pass;
* ``<!-- illustrative -->``: shown, not run (it talks to example hosts, or
  needs a server the docs page names but the test does not start).

A block without a marker fails the test, so the docs cannot drift silently.
Each configuration table of a protocol page is also checked against the
config dataclass: every field must have a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import sys
import textwrap
from pathlib import Path

import pytest

from agenticaiframework.communication.core import config as config_module
from tests.child_env import child_env
from tests.conftest import HTTPServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
SERVERS = Path(__file__).resolve().parent / "servers"
BLOCK = re.compile(r"(?:<!--\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.S)
KINDS = ("http", "sse", "ws", "mqtt", "grpc", "stdio", "a2a", "none", "pytest")


def _blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((str(page.relative_to(DOCS)), line, match["marker"] or "", match["code"]))
    return found


BLOCKS = _blocks()


def test_every_block_is_marked() -> None:
    unmarked = [f"{page}:{line}" for page, line, marker, _ in BLOCKS if not marker]
    assert not unmarked, f"python blocks without a run/illustrative marker: {unmarked}"
    for page, line, marker, _ in BLOCKS:
        if marker == "illustrative":
            continue
        assert marker.startswith("run: "), f"{page}:{line}: {marker!r}"
        assert marker.removeprefix("run: ").strip() in KINDS, f"{page}:{line}: {marker!r}"


@pytest.mark.parametrize(
    ("page", "cls"),
    [
        ("protocols/http.md", config_module.HTTPConfig),
        ("protocols/websocket.md", config_module.WebSocketConfig),
        ("protocols/sse.md", config_module.SSEConfig),
        ("protocols/mqtt.md", config_module.MQTTConfig),
        ("protocols/grpc.md", config_module.GRPCConfig),
        ("protocols/stdio.md", config_module.STDIOConfig),
    ],
)
def test_config_table_names_every_field(page: str, cls: type) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    rows = "\n".join(line for line in text.splitlines() if line.startswith("| "))
    missing = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in rows]
    assert not missing, f"{page}: configuration table lacks {missing}"


async def _run(code: str) -> None:
    source = "async def __doc_block__():\n" + textwrap.indent(code, "    ") + "\n    return None\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<docs>", "exec"), namespace)
    await namespace["__doc_block__"]()  # type: ignore[operator]


async def _prepare(server: str, code: str, http_url: str, stack: contextlib.AsyncExitStack) -> str:
    """Start the server a block needs and point the block's URLs at it."""
    if server == "http":
        return code.replace("http://127.0.0.1:8000", http_url)
    if server == "sse":
        from tests.servers.sse_app import make_app
        from tests.servers.uvicorn_server import serve_asgi

        app, _ = make_app()
        url = await stack.enter_async_context(serve_asgi(app))
        return code.replace("http://127.0.0.1:8000", url)
    if server == "ws":
        from tests.servers.ws_server import WSServer

        ws = await stack.enter_async_context(WSServer())
        return code.replace("ws://127.0.0.1:8765", ws.url(""))
    if server == "mqtt":
        from tests.servers.mosquitto import Mosquitto

        broker = await stack.enter_async_context(Mosquitto())
        return code.replace("mqtt://127.0.0.1:1883", broker.url)
    if server == "grpc":
        from tests.servers.grpc_server import PROTO_FILE, serve_grpc

        grpc_server = await stack.enter_async_context(serve_grpc())
        code = code.replace("127.0.0.1:50051", grpc_server.target)
        return code.replace('"protos/agent_service.proto"', repr(str(PROTO_FILE)))
    if server == "a2a":
        from tests.agents.a2a.sdk_agent import serve_agent

        agent = await stack.enter_async_context(serve_agent())
        return code.replace("http://127.0.0.1:9999", agent.url)
    if server == "stdio":
        code = code.replace('"python"', repr(sys.executable))
        code = code.replace('"worker.py"', repr(str(SERVERS / "workers" / "worker.py")))
        return code.replace('"jsonrpc_server.py"', repr(str(SERVERS / "jsonrpc_child.py")))
    return code


RUNNABLE = [b for b in BLOCKS if b[2].startswith("run: ")]


@pytest.mark.parametrize(
    ("page", "line", "marker", "code"), RUNNABLE, ids=[f"{b[0]}:{b[1]}" for b in RUNNABLE]
)
async def test_doc_block_runs(
    page: str, line: int, marker: str, code: str, http_server: HTTPServer
) -> None:
    server = marker.removeprefix("run: ").strip()
    if server not in KINDS:
        pytest.fail(f"{page}:{line}: unknown server {server!r}")
    if server == "pytest":
        await _run_pytest(code)
        return
    async with contextlib.AsyncExitStack() as stack:
        code = await _prepare(server, code, http_server.url, stack)
        await _run(code)


async def _run_pytest(code: str) -> None:
    """Run a block that is a test module with pytest, outside the repository."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="agentcomm-docs-") as folder:
        Path(folder, "test_doc_block.py").write_text(code)
        Path(folder, "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
        )
        env = child_env()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=folder, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
    report = out.decode(errors="replace")
    assert proc.returncode == 0 and " passed" in report, report[-4000:]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_mqtt_handler_example_says_what_runs_it() -> None:
    # on_message handlers run only while something consumes messages: an example that
    # registers one and never starts start_listening() (or iterates) teaches a handler
    # that never fires.
    root = Path(__file__).resolve().parent.parent
    sources = {p: _python_blocks(p.read_text()) for p in [root / "README.md", *DOCS.rglob("*.md")]}
    sources.update({p: [p.read_text()] for p in (root / "examples").glob("*.py")})
    checked = 0
    for path, blocks in sources.items():
        for block in blocks:
            if ".on_message(" not in block:
                continue
            checked += 1
            after = block[block.index(".on_message(") :]
            consumers = ("start_listening()", "async for ", ".receive(")
            assert any(c in after for c in consumers), f"{path.name}: {after[:200]}"
    assert checked >= 3
