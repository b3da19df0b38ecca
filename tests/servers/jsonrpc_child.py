"""A JSON-RPC 2.0 server on stdin/stdout (one compact JSON object per line).

Run as a child process by the STDIO tests and benchmark. Methods:

* ``echo`` returns its params; ``add`` {a, b} returns a + b; ``ping`` returns {}.
* ``fail`` answers error -32000 "boom" with data.
* ``sleep`` {seconds, value} answers after a delay (in a thread, so replies
  to later requests may overtake it).
* ``notify`` {count} sends ``count`` ``progress`` notifications, then answers.
* ``ask`` {method, params} sends a request to the client, waits for the
  client's reply and answers with its result (or error).
* ``crash`` {code} writes to stderr and exits at once without answering.
* ``big`` {size} answers with a string of ``size`` characters.
* ``garbage`` writes lines that are not JSON-RPC, then answers "ok".
* ``stderr`` {mb} writes that many MiB to stderr, then answers.
* ``exit`` answers, then exits with status 0.
* ``deep`` {depth} writes a JSON array nested ``depth`` deep and its reply
  ("ok") in one write.
* ``flood`` {count, pad} sends ``count`` ``flood`` notifications of about
  ``pad`` bytes each, writing after each one its number to stderr (so the
  client can see how far ahead of it the child got), then answers (and
  exits at once with ``then_exit``).
* ``close_stdout`` closes stdout without answering and stays alive until
  stdin closes.

Unknown methods get -32601.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

_out = sys.stdout.buffer
_lock = threading.Lock()
_asked: dict[str, Any] = {}


def write(message: Any) -> None:
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    with _lock:
        _out.write(data)
        _out.flush()


def write_raw(data: bytes) -> None:
    with _lock:
        _out.write(data)
        _out.flush()


def reply(request_id: Any, result: Any) -> None:
    write({"jsonrpc": "2.0", "id": request_id, "result": result})


def handle(message: dict[str, Any]) -> None:
    method = message.get("method")
    request_id = message.get("id")
    params = message.get("params") or {}
    if method is None:  # a reply to one of our own requests
        original = _asked.pop(str(request_id), None)
        if original is not None:
            if "error" in message:
                write({"jsonrpc": "2.0", "id": original, "error": message["error"]})
            else:
                reply(original, message.get("result"))
        return
    if request_id is None:  # a notification: echo it back as one
        write({"jsonrpc": "2.0", "method": "notified", "params": {"method": method}})
        return
    if method == "echo":
        reply(request_id, params)
    elif method == "add":
        reply(request_id, params["a"] + params["b"])
    elif method == "ping":
        reply(request_id, {})
    elif method == "fail":
        write(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32000, "message": "boom", "data": {"why": "asked to"}},
            }
        )
    elif method == "sleep":

        def later() -> None:
            time.sleep(float(params["seconds"]))
            reply(request_id, params.get("value"))

        threading.Thread(target=later, daemon=True).start()
    elif method == "notify":
        for i in range(int(params.get("count", 1))):
            write({"jsonrpc": "2.0", "method": "progress", "params": {"i": i}})
        reply(request_id, "done")
    elif method == "ask":
        server_id = f"srv-{request_id}"
        _asked[server_id] = request_id
        write(
            {
                "jsonrpc": "2.0",
                "id": server_id,
                "method": params["method"],
                "params": params.get("params", {}),
            }
        )
    elif method == "crash":
        sys.stderr.write("fatal: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(int(params.get("code", 3)))
    elif method == "big":
        reply(request_id, "x" * int(params["size"]))
    elif method == "garbage":
        write_raw(b'this is not json\n\xff\xfe\xfd\n{"broken": \n')
        reply(request_id, "ok")
    elif method == "stderr":
        chunk = b"e" * 65535 + b"\n"
        for _ in range(int(params["mb"]) * 16):
            sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        reply(request_id, "flooded")
    elif method == "deep":
        depth = int(params["depth"])
        answer = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": "ok"}).encode()
        write_raw(b"[" * depth + b"]" * depth + b"\n" + answer + b"\n")
    elif method == "flood":
        pad = "x" * int(params.get("pad", 0))
        for i in range(int(params["count"])):
            write({"jsonrpc": "2.0", "method": "flood", "params": {"i": i, "pad": pad}})
            sys.stderr.write(f"{i}\n")
            sys.stderr.flush()
        reply(request_id, "flooded")
        if params.get("then_exit"):
            os._exit(0)
    elif method == "close_stdout":
        os.close(sys.stdout.fileno())
        for _ in sys.stdin.buffer:
            pass
        os._exit(0)
    elif method == "exit":
        reply(request_id, "bye")
        sys.exit(0)
    else:
        write(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32601, "message": f"Method not found: {method}"},
            }
        )


def main() -> None:
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        handle(json.loads(line))


if __name__ == "__main__":
    main()
