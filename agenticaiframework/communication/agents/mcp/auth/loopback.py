"""LoopbackCallback: the user step of a CLI, a browser and a listener on 127.0.0.1.

::

    async with LoopbackCallback(port=8765) as callback:
        oauth = MCPOAuth(authorize=callback, redirect_uri=callback.redirect_uri)
        async with MCPClient(url, auth=oauth) as mcp:
            ...

Calling it opens the authorization URL in the user's browser (or prints it
when there is none) and returns the URL the authorization server redirects
the browser to. The listener accepts loopback connections only, reads at
most one bounded request line and headers per connection, answers anything
that is not the callback with 404 or 400, and hands over one callback per
call (a callback with no call waiting gets 409).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ....core import errors

__all__ = ["LoopbackCallback"]

logger = logging.getLogger("agenticaiframework.communication.mcp.auth")

_PAGE = (
    b"<!doctype html><title>Authorized</title>"
    b"<p>Authorization received. You can close this window.</p>"
)


def _open_in_browser(url: str) -> None:
    """Open ``url`` in the system browser, or print it, from a thread of its own.

    ``webbrowser`` waits for the program ``$BROWSER`` names to exit (a terminal
    browser): on the event loop that would block the listener the browser is
    about to be redirected to. The thread is a daemon: a browser left open
    never keeps the program from exiting.
    """

    def run() -> None:
        try:
            if webbrowser.open(url):
                return
        except Exception as exc:  # no usable browser: the user opens it by hand
            logger.debug("could not start a browser: %s", exc)
        print(f"Open this URL to authorize:\n{url}", file=sys.stderr, flush=True)

    threading.Thread(target=run, name="LoopbackCallback:browser", daemon=True).start()


class LoopbackCallback:
    """Open the authorization URL in a browser; catch the redirect on 127.0.0.1.

    Args:
        port: The port to listen on (0: a free one; a pre-registered client
            needs the port of its registered redirect URI).
        path: The path of the redirect URI.
        open_browser: Called with the authorization URL (sync or async);
            default: the system browser, else the URL printed on stderr.
        max_request: Largest request line plus headers accepted, in bytes.
        read_timeout: Seconds a connection may take to send its request.

    Raises:
        ConfigError: A bad port or path.
    """

    def __init__(
        self,
        port: int = 0,
        path: str = "/callback",
        *,
        open_browser: Callable[[str], Awaitable[Any] | Any] | None = None,
        max_request: int = 16 * 1024,
        read_timeout: float = 10.0,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise errors.ConfigError(f"port: must be 0..65535, got {port!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise errors.ConfigError(f"path: must start with '/', got {path!r}")
        self.port = port
        self.path = path
        self._open = open_browser or _open_in_browser
        self.max_request = max_request
        self.read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._waiting: asyncio.Future[str] | None = None

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:<port><path>`` (the port is known once listening)."""
        if self._server is None and self.port == 0:
            raise errors.ConfigError("redirect_uri: start the listener first (async with ...)")
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        """Listen on 127.0.0.1."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening; a call still waiting fails with ClosedError."""
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(errors.ClosedError("the callback listener was closed"))
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackCallback:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def __call__(self, authorization_url: str) -> str:
        """Open the URL and wait for the redirect (safe to cancel).

        Returns:
            The callback URL, with its query (``code`` and ``state``, or ``error``).
        """
        await self.start()
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting = future
        try:
            opened = self._open(authorization_url)
            if inspect.isawaitable(opened):
                await opened
            return await future
        finally:
            self._waiting = None

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "closed"
        return f"<LoopbackCallback port={self.port} path={self.path!r} {state}>"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader)
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
            head = (
                f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
                f"Content-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\nCache-Control: no-store\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a peer that went away or sent too much: nothing to answer
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        async with asyncio.timeout(self.read_timeout):
            head = bytearray()
            while b"\r\n\r\n" not in head:
                chunk = await reader.read(4096)
                if not chunk:
                    return 400, b"incomplete request"
                head += chunk
                if len(head) > self.max_request:
                    return 431, b"request too large"
        line = bytes(head).split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, b"bad request line"
        method, target, _ = parts
        url = urlsplit(target)
        if url.path != self.path:
            return 404, b"not here"
        if method != "GET":
            return 405, b"GET only"
        query = parse_qs(url.query)
        if not ("code" in query or "error" in query) or "state" not in query:
            return 400, b"not an authorization response"
        waiting = self._waiting
        if waiting is None or waiting.done():
            return 409, b"no authorization is in progress"
        waiting.set_result(self.redirect_uri + ("?" + url.query if url.query else ""))
        return 200, _PAGE
