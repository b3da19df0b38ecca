"""Small child processes for the STDIO tests; the first argument picks one.

* ``echo``: echoes every stdin line to stdout (bytes as they are).
* ``banner``: prints two banner lines, then ``READY``, then echoes lines.
* ``content-length``: echoes Content-Length framed messages (LSP style).
* ``ignore-term``: ignores SIGTERM and stdin EOF; prints ``ready`` and sleeps.
* ``grandchild``: starts a grandchild that sleeps, prints its pid, then
  echoes lines until stdin closes (leaving the grandchild behind).
* ``garbage``: prints lines that are not JSON, one that is too long, then a
  JSON object, then echoes.
* ``exit``: prints ``bye`` to stdout, ``dying`` to stderr, exits with argv[2].
* ``slow-start``: sleeps argv[2] seconds before printing ``READY``.
* ``hostile-lsp``: a Content-Length framed JSON-RPC peer that answers every
  request with a bad frame of the kind named by the method (see ``HOSTILE``),
  then a valid framed reply whose result is that kind.
* ``deep``: writes a JSON array nested argv[2] deep and ``{"ok": true}`` in
  one write, then echoes.
* ``count``: prints the numbers 0 .. argv[2]-1, one a line, in bursts of 50,
  then waits for stdin to close.
* ``close-stdout``: prints ``last words``, closes its stdout and stays alive
  until stdin closes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any


def echo() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(line)
        out.flush()


def content_length() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (body := read_framed(inp)) is not None:
        out.write(
            b"Content-Length: %d\r\nContent-Type: application/json\r\n\r\n%b" % (len(body), body)
        )
        out.flush()


# Bad frames the hostile LSP peer writes before a valid reply; ID stands for
# the request id (a smuggled body carrying it must never be taken as the reply).
HOSTILE: dict[str, bytes] = {
    "digits": b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "negative": b'Content-Length: -5\r\n\r\n{"jsonrpc":"2.0","id":ID,"result":"smuggled"}',
    "letters": b"Content-Length: twelve\r\n\r\n",
    "huge": b"Content-Length: 99999999999999999999\r\n\r\n" + b"x" * 100,
    "conflicting": b"Content-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg",
    "long-header": b"X-Junk: " + b"a" * 20000 + b"\r\n\r\n",
    "no-length": b'Content-Type: application/json\r\n\r\n{"id":ID,"result":"smuggled"}',
}


def read_framed(inp: Any) -> bytes | None:
    length = None
    while True:
        header = inp.readline()
        if not header:
            return None
        if header in (b"\r\n", b"\n"):
            break
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    assert length is not None
    return bytes(inp.read(length))


def hostile_lsp() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while (body := read_framed(inp)) is not None:
        request = json.loads(body)
        kind = request["method"]
        reply = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": kind}).encode()
        bad = HOSTILE[kind].replace(b"ID", str(request["id"]).encode())
        # One write: the bad frame and the reply reach the client in the same chunk.
        out.write(bad + b"Content-Length: %d\r\n\r\n%b" % (len(reply), reply))
        out.flush()


def wait_for_stdin_eof() -> None:
    for _ in sys.stdin.buffer:
        pass


def main() -> None:
    mode = sys.argv[1]
    if mode == "echo":
        echo()
    elif mode == "banner":
        print("starting up...", flush=True)
        print("loading things", flush=True)
        print("READY", flush=True)
        echo()
    elif mode == "content-length":
        content_length()
    elif mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    elif mode == "grandchild":
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"],
            stdin=subprocess.DEVNULL,
        )
        print(child.pid, flush=True)
        echo()
        # stdin closed: leave without waiting for the grandchild
        os._exit(0)
    elif mode == "garbage":
        out = sys.stdout.buffer
        out.write(b"not json at all\n")
        out.write(b"{broken json\n")
        out.write(b"\xff\xfe invalid utf-8\n")
        out.write(b"[" + b"1," * 5000 + b"1]\n")
        out.write(b'{"ok": true}\n')
        out.flush()
        echo()
    elif mode == "exit":
        print("bye", flush=True)
        print("dying", file=sys.stderr, flush=True)
        sys.exit(int(sys.argv[2]))
    elif mode == "slow-start":
        time.sleep(float(sys.argv[2]))
        print("READY", flush=True)
        echo()
    elif mode == "hostile-lsp":
        hostile_lsp()
    elif mode == "deep":
        depth = int(sys.argv[2])
        sys.stdout.buffer.write(b"[" * depth + b"]" * depth + b'\n{"ok": true}\n')
        sys.stdout.buffer.flush()
        echo()
    elif mode == "count":
        out = sys.stdout.buffer
        for i in range(int(sys.argv[2])):
            out.write(b"%d\n" % i)
            if i % 50 == 49:
                out.flush()
                time.sleep(0.002)
        out.flush()
        wait_for_stdin_eof()
    elif mode == "close-stdout":
        print("last words", flush=True)
        os.close(sys.stdout.fileno())
        wait_for_stdin_eof()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
