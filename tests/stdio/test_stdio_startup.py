"""What a child writes the moment it starts reaches the handlers: nothing is dropped."""

from __future__ import annotations

import sys

from agenticaiframework.communication import STDIOClient

# Writes its ready line, a notification and a request in one go, then echoes to
# stderr the answer it gets, so the test sees that the request was answered.
CHILD = r"""
import sys
sys.stdout.write(
    'READY\n'
    '{"jsonrpc": "2.0", "method": "hello", "params": {"n": 1}}\n'
    '{"jsonrpc": "2.0", "id": 7, "method": "ask", "params": {}}\n'
)
sys.stdout.flush()
answer = sys.stdin.readline()
sys.stdout.write(answer)
sys.stdout.flush()
sys.stdin.readline()
"""


async def test_messages_written_with_the_ready_line_reach_the_handlers() -> None:
    stdio = STDIOClient([sys.executable, "-c", CHILD], ready_line="READY", message_format="jsonrpc")
    notifications: list[dict[str, object]] = []
    stdio.on("notification", notifications.append)
    stdio.on("request", lambda message: {"answered": message["method"]})
    async with stdio:
        # receive() sees every message; the child then sends our answer back: it
        # got one, so the request was not lost.
        seen = [await stdio.receive(timeout=10) for _ in range(3)]
    assert seen[2] == {"jsonrpc": "2.0", "id": 7, "result": {"answered": "ask"}}
    assert notifications == [{"jsonrpc": "2.0", "method": "hello", "params": {"n": 1}}]
