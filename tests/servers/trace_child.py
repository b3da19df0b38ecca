"""A JSON-RPC / minimal MCP child on stdin/stdout that reports the trace context it got.

- ``initialize``: a minimal MCP answer; ``notifications/*``: ignored.
- ``tools/call``: the result's text is the JSON of the request's ``params._meta``;
  the tool ``sample`` first asks the client ``sampling/createMessage`` with a
  ``_meta.traceparent`` of its own (``SERVER_TRACEPARENT``) and waits for the answer.
- ``echo``: returns its params (``_meta`` included).
- anything else: error -32601.
"""

from __future__ import annotations

import json
import sys

SERVER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def send(message: dict) -> None:  # type: ignore[type-arg]
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        method, params, rid = message.get("method"), message.get("params") or {}, message.get("id")
        if method is None or rid is None:
            continue
        if method == "initialize":
            result = {
                "protocolVersion": params["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "trace-child", "version": "1"},
            }
        elif method == "tools/call":
            if params.get("name") == "sample":
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": "s1",
                        "method": "sampling/createMessage",
                        "params": {"messages": [], "_meta": {"traceparent": SERVER_TRACEPARENT}},
                    }
                )
                json.loads(sys.stdin.readline())  # the client's answer
            text = json.dumps(params.get("_meta"))
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        elif method == "echo":
            result = params
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
            continue
        send({"jsonrpc": "2.0", "id": rid, "result": result})


if __name__ == "__main__":
    main()
