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
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def echo() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(line)
        out.flush()


def content_length() -> None:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        length = None
        while True:
            header = inp.readline()
            if not header:
                return
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        assert length is not None
        body = inp.read(length)
        out.write(
            b"Content-Length: %d\r\nContent-Type: application/json\r\n\r\n%b" % (len(body), body)
        )
        out.flush()


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
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
