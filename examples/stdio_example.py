"""STDIOClient: JSON lines, JSON-RPC with notifications, and a process exit.

The child processes are small Python programs embedded below and run with
this interpreter; nothing is left running. Run: ``python examples/stdio_example.py``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from agenticaiframework.communication import ProcessExitedError, RemoteError, STDIOClient

WORKER = r"""
import json, sys
for line in sys.stdin:
    task = json.loads(line)
    print(json.dumps({"status": "done", "result": task["data"].upper()}), flush=True)
"""

JSONRPC_SERVER = r"""
import json, sys
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    method, params, rid = req.get("method"), req.get("params") or {}, req.get("id")
    if method == "add":
        send({"jsonrpc": "2.0", "id": rid, "result": params["a"] + params["b"]})
    elif method == "work":
        for step in range(params["steps"]):
            send({"jsonrpc": "2.0", "method": "progress", "params": {"step": step}})
        send({"jsonrpc": "2.0", "id": rid, "result": "finished"})
    elif method == "crash":
        sys.stderr.write("fatal: asked to crash\n"); sys.stderr.flush()
        sys.exit(3)
    elif rid is not None:
        error = {"code": -32601, "message": "method not found"}
        send({"jsonrpc": "2.0", "id": rid, "error": error})
"""


async def json_lines() -> None:
    """Send one JSON task per line and read the answer."""
    async with STDIOClient(command=[sys.executable, "-u", "-c", WORKER]) as stdio:
        await stdio.send({"task": "process", "data": "hello"})
        print(f"json lines: {await stdio.receive(timeout=10)}")


async def json_rpc() -> None:
    """Requests, notifications through a handler, a remote error and an exit."""
    stdio = STDIOClient(
        command=[sys.executable, "-u", "-c", JSONRPC_SERVER], message_format="jsonrpc"
    )

    def on_progress(message: Any) -> None:
        print(f"  notification {message['method']} {message['params']}")

    stdio.on("notification", on_progress)

    async with stdio:
        print(f"add -> {await stdio.request('add', {'a': 2, 'b': 3}, timeout=10)}")
        print(f"work -> {await stdio.request('work', {'steps': 2}, timeout=10)}")
        try:
            await stdio.request("nope", timeout=10)
        except RemoteError as exc:
            print(f"nope -> RemoteError {exc.remote_code}")
        status = await stdio.health_check()
        print(f"healthy={status.is_healthy} ({status.detail})")
        try:
            await stdio.request("crash", timeout=10)
        except ProcessExitedError as exc:
            print(f"crash -> exit {exc.returncode}, stderr {exc.stderr_tail.strip()!r}")


async def main() -> None:
    """Run both tours."""
    await json_lines()
    await json_rpc()


if __name__ == "__main__":
    asyncio.run(main())
