"""The ``picows`` engine: picows' core API (frames parsed in C) behind the engine seam.

picows hands each parsed frame to a listener's ``on_ws_frame`` synchronously,
so :class:`PicowsLink` gives a whole message to the client's sink right there:
no task wakes up between the socket and the consumer. What picows' core API
leaves to its user is done here, the way ``websockets`` does it, so both
engines behave the same for the client above:

* messages assembled from fragments, text checked as UTF-8 (else close 1007),
  ``max_size`` enforced on the whole message (else close 1009);
* permessage-deflate through ``websockets``' own extension (negotiation and
  codec), so the compressed bytes are those ``websockets`` would write;
* the closing handshake (the peer's close code echoed, ``close_timeout``
  bounding ours), pings with a measured round trip, keep-alive pings through
  picows' auto-ping (a missing pong drops the link: close code 1006);
* flow control both ways: a send waits while the socket's write buffer is
  full, and reading pauses while unconsumed messages pile up;
* errors in ``websockets``' vocabulary (``ConnectionClosed``, ``InvalidStatus``
  ...), user-info in the URL sent as Basic auth, the system proxy honoured
  except for loopback hosts; picows never follows a redirect here.

Differences that remain: picows wants the pong timeout no longer than the ping
interval, so ``ping_timeout`` is cut to ``ping_interval`` when longer; proxies
are the ``http://``, ``https://``, ``socks4://`` and ``socks5://`` ones picows
supports.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import urllib.request
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import picows
from picows import WSCloseCode, WSFrame, WSMsgType, WSTransport
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
)
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Close, Frame, Opcode
from websockets.headers import build_authorization_basic, build_extension, parse_extension
from websockets.http11 import Response
from websockets.uri import parse_uri

from ..core.security import install_log_redaction, is_loopback_host
from .engine import DialOptions, Sink

__all__ = ["PicowsLink", "dial_picows"]

_TEXT, _BINARY, _CONT = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
_PING, _PONG, _CLOSE = WSMsgType.PING, WSMsgType.PONG, WSMsgType.CLOSE
_KEEPALIVE = b"agentcomm-keepalive"
_HIGH_WATER = 16  # unconsumed messages before reading pauses (websockets' max_queue)
_LOW_WATER = 4
_OK_CODES = frozenset({1000, 1001})
_LOGGER_NAME = "agenticaiframework.communication.websocket.picows"
_logger = logging.getLogger(_LOGGER_NAME)


class _Fail(Exception):
    """Raised inside on_ws_frame: close with ``code`` and drop the link."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _close_info(info: Any) -> Close | None:
    if info is None:
        return None
    code = int(info.code)
    return Close(1005 if code == 0 else code, info.reason or "")


class PicowsLink(picows.WSListener):  # type: ignore[misc]
    """One picows connection: an engine :class:`~.engine.Link`."""

    sink: Sink | None = None

    def __init__(self, max_size: int, close_timeout: float) -> None:
        super().__init__()
        self._max_size = max_size
        self._close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        self.transport: WSTransport | None = None
        self.subprotocol: str | None = None
        self._deflate: Extension | None = None
        self._queue: collections.deque[str | bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._write_ready: asyncio.Future[None] | None = None
        self._open = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._exc: ConnectionClosed | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._ping_count = 0
        # A fragmented message being received: its frames, type, size, compression.
        self._parts: list[bytes] | None = None
        self._parts_text = False
        self._parts_size = 0
        self._parts_compressed = False

    # -- the Link surface ------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether frames can be sent."""
        return self._open

    @property
    def extension_names(self) -> list[str]:
        """Names of the negotiated extensions."""
        return [] if self._deflate is None else [self._deflate.name]

    @property
    def close_code(self) -> int | None:
        """The close code received (1006 when closed without one), None while open."""
        if self._exc is None:
            return None
        rcvd = self._exc.rcvd
        return 1006 if rcvd is None else int(rcvd.code)

    @property
    def close_reason(self) -> str | None:
        """The close reason received, None while open."""
        if self._exc is None:
            return None
        rcvd = self._exc.rcvd
        return "" if rcvd is None else rcvd.reason

    async def send(self, data: str | bytes, /) -> None:
        """Send one message: str as text, bytes as binary (waits while the buffer is full)."""
        if not self._open:
            raise self._closed_error()
        transport = self.transport
        assert transport is not None
        if self._deflate is None:
            transport.send(_TEXT if type(data) is str else _BINARY, data)
        else:
            if isinstance(data, str):
                frame = Frame(Opcode.TEXT, data.encode())
            else:
                frame = Frame(Opcode.BINARY, data)
            frame = self._deflate.encode(frame)
            transport.send(
                _TEXT if frame.opcode is Opcode.TEXT else _BINARY, frame.data, rsv1=frame.rsv1
            )
        if self._write_ready is not None:
            await asyncio.shield(self._write_ready)

    async def recv(self) -> str | bytes:
        """The next message the sink did not take; ConnectionClosed once none is left."""
        queue = self._queue
        while not queue:
            if self._exc is not None:
                raise self._exc
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        raw = queue.popleft()
        if self._paused and len(queue) <= _LOW_WATER:
            self._paused = False
            if self.transport is not None and self._exc is None:
                self.transport.underlying_transport.resume_reading()
        return raw

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the returned future gives the round trip in seconds."""
        if not self._open:
            raise self._closed_error()
        assert self.transport is not None
        self._ping_count += 1
        payload = f"agentcomm-{self._ping_count}".encode()
        pong: asyncio.Future[float] = self._loop.create_future()
        self._pings[payload] = (pong, time.monotonic())
        self.transport.send_ping(payload)
        return pong

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait for the peer's (at most ``close_timeout``)."""
        transport = self.transport
        if transport is None or self._closed.done():
            return
        self._open = False
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        try:
            async with asyncio.timeout(self._close_timeout or None):
                await asyncio.shield(self._closed)
        except TimeoutError:
            transport.disconnect(False)
            await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self._open = False
        if self.transport is not None:
            self.transport.disconnect(False)

    # -- picows callbacks ------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Keep the transport."""
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Take one frame (the hot path: a whole, uncompressed message goes to the sink)."""
        msg_type = frame.msg_type
        if (
            (msg_type is _TEXT or msg_type is _BINARY)
            and frame.fin
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._parts is None
        ):
            if frame.payload_size > self._max_size:
                self._fail(transport, 1009, "message too big")
                return
            if msg_type is _TEXT:
                try:
                    raw: str | bytes = frame.get_payload_as_utf8_text()
                except UnicodeDecodeError:
                    self._fail(transport, 1007, "invalid UTF-8 text")
                    return
            else:
                raw = frame.get_payload_as_bytes()
            if not self._queue and (sink := self.sink) is not None and sink(raw):
                return
            self._push(transport, raw)
            return
        try:
            if msg_type is _TEXT or msg_type is _BINARY or msg_type is _CONT:
                self._fragment(transport, frame)
            elif msg_type is _PONG:
                self._pong(frame.get_payload_as_bytes())
            elif msg_type is _CLOSE:
                self._open = False
                if not transport.is_close_frame_sent:
                    code = frame.get_close_code()
                    if code == WSCloseCode.NO_INFO:
                        # A close frame without a code is answered with 1000:
                        # picows would write the code 0, which no peer accepts.
                        transport.send_close(WSCloseCode.OK)
                    else:
                        transport.send_close(code, frame.get_close_message())
                transport.disconnect()
        except _Fail as exc:
            self._fail(transport, exc.code, exc.reason)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Make every waiter see the end."""
        self._open = False
        handshake = transport.close_handshake
        if handshake is None:
            exc: ConnectionClosed = ConnectionClosedError(None, None, None)
        else:
            rcvd, sent = _close_info(handshake.recv), _close_info(handshake.sent)
            ok = (rcvd is None or rcvd.code in _OK_CODES) and (
                sent is None or sent.code in _OK_CODES
            )
            if rcvd is None and sent is None:
                ok = False
            kind = ConnectionClosedOK if ok else ConnectionClosedError
            exc = kind(rcvd, sent, handshake.recv_then_sent if rcvd and sent else None)
        self._exc = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_exception(exc)
            self._write_ready.exception()  # retrieved: a sender may not be waiting
        for pong, _ in self._pings.values():
            if not pong.done():
                pong.set_exception(exc)
                pong.exception()
        self._pings.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """The socket's write buffer is full: senders wait."""
        if self._write_ready is None:
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        """The write buffer drained: release the senders."""
        ready, self._write_ready = self._write_ready, None
        if ready is not None and not ready.done():
            ready.set_result(None)

    def send_user_specific_ping(self, transport: WSTransport) -> None:
        """A keep-alive ping with a payload of its own (health pings keep theirs)."""
        transport.send_ping(_KEEPALIVE)

    def is_user_specific_pong(self, frame: WSFrame) -> bool:
        """Only the keep-alive's pong is picows'; the others answer :meth:`ping`."""
        return frame.msg_type is _PONG and frame.get_payload_as_bytes() == _KEEPALIVE

    # -- helpers ---------------------------------------------------------------

    def _push(self, transport: WSTransport, raw: str | bytes) -> None:
        queue = self._queue
        queue.append(raw)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if not self._paused and len(queue) >= _HIGH_WATER:
            self._paused = True
            transport.underlying_transport.pause_reading()

    def _fragment(self, transport: WSTransport, frame: WSFrame) -> None:
        """A frame of a fragmented or compressed message."""
        if frame.rsv2 or frame.rsv3:  # no extension we negotiate uses them
            raise _Fail(1002, "reserved bits set")
        if frame.msg_type is _CONT:
            if self._parts is None:
                raise _Fail(1002, "unexpected continuation frame")
        else:
            if self._parts is not None:
                raise _Fail(1002, "expected a continuation frame")
            if frame.rsv1 and self._deflate is None:
                raise _Fail(1002, "compressed frame without permessage-deflate")
            self._parts = []
            self._parts_text = frame.msg_type is _TEXT
            self._parts_size = 0
            self._parts_compressed = frame.rsv1
        parts = self._parts
        assert parts is not None
        self._parts_size += frame.payload_size
        if self._parts_size > self._max_size and not self._parts_compressed:
            raise _Fail(1009, "message too big")
        parts.append(frame.get_payload_as_bytes())
        if not frame.fin:
            return
        self._parts = None
        data = b"".join(parts)
        opcode = Opcode.TEXT if self._parts_text else Opcode.BINARY
        if self._parts_compressed:
            assert self._deflate is not None
            try:
                data = bytes(
                    self._deflate.decode(
                        Frame(opcode, data, rsv1=True), max_size=self._max_size
                    ).data
                )
            except PayloadTooBig:
                raise _Fail(1009, "message too big") from None
            except Exception:
                raise _Fail(1007, "permessage-deflate: decompression failed") from None
        if self._parts_text:
            try:
                raw: str | bytes = data.decode()
            except UnicodeDecodeError:
                raise _Fail(1007, "invalid UTF-8 text") from None
        else:
            raw = bytes(data)
        if not self._queue and (sink := self.sink) is not None and sink(raw):
            return
        self._push(transport, raw)

    def _pong(self, payload: bytes) -> None:
        entry = self._pings.pop(payload, None)
        if entry is not None:
            pong, sent_at = entry
            if not pong.done():
                pong.set_result(time.monotonic() - sent_at)

    def _fail(self, transport: WSTransport, code: int, reason: str) -> None:
        """Fail the connection as websockets does: our close frame, then drop it."""
        self._open = False
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        transport.disconnect()

    def _closed_error(self) -> ConnectionClosed:
        return self._exc if self._exc is not None else ConnectionClosedError(None, None, None)


def _system_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, as websockets picks it."""
    wsuri = parse_uri(url)
    if is_loopback_host(wsuri.host) or urllib.request.proxy_bypass(f"{wsuri.host}:{wsuri.port}"):
        return None
    proxies = urllib.request.getproxies()
    secure = wsuri.secure
    return proxies.get("wss" if secure else "ws") or proxies.get("https" if secure else "http")


def _status_error(exc: picows.WSInvalidStatusError) -> InvalidStatus:
    response = exc.response
    assert response is not None
    headers = Headers(list(response.headers.items()))
    status = int(response.status)
    return InvalidStatus(
        Response(status, response.status.phrase, headers, bytes(response.body or b""))
    )


def _negotiate(link: PicowsLink, headers: Any, options: DialOptions) -> None:
    """Read the subprotocol and permessage-deflate out of the handshake response."""
    protocols = headers.getall("Sec-WebSocket-Protocol", [])
    if protocols:
        if len(protocols) > 1 or protocols[0] not in options.subprotocols:
            raise NegotiationError(f"unsupported subprotocol: {', '.join(protocols)}")
        link.subprotocol = protocols[0]
    values = headers.getall("Sec-WebSocket-Extensions", [])
    if not values:
        return
    offered = enable_client_permessage_deflate(None) if options.compression else []
    for value in values:
        for name, params in parse_extension(value):
            for factory in offered:
                if factory.name == name and link._deflate is None:
                    link._deflate = factory.process_response_params(params, [])
                    break
            else:
                raise NegotiationError(f"unsupported extension: {name}")


async def dial_picows(url: str, options: DialOptions) -> PicowsLink:
    """One opening handshake with picows (no redirect followed, no deadline of its own).

    Args:
        url: The URL.
        options: The handshake and connection settings.

    Returns:
        The open link.
    """
    install_log_redaction((_LOGGER_NAME,))  # picows' debug lines quote the handshake
    headers: list[tuple[str, str]] = list(options.headers.items())
    wsuri = parse_uri(url)
    if wsuri.user_info is not None and not any(k.lower() == "authorization" for k, _ in headers):
        headers.append(("Authorization", build_authorization_basic(*wsuri.user_info)))
        parts = urlsplit(url)
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if options.subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(options.subprotocols)))
    if options.compression:
        factories = enable_client_permessage_deflate(None)
        headers.append(
            (
                "Sec-WebSocket-Extensions",
                build_extension([(f.name, f.get_request_params()) for f in factories]),
            )
        )
    interval = options.ping_interval
    proxy = _system_proxy(url) if options.proxy else None

    def listener(request: Any, response: Any) -> PicowsLink:
        # Before any frame is parsed, so a compressed first message is understood.
        link = PicowsLink(options.max_size, options.close_timeout)
        _negotiate(link, response.headers, options)
        return link

    try:
        transport, link = await picows.ws_connect(
            listener,
            url,
            ssl_context=options.ssl,
            websocket_handshake_timeout=None,  # the caller's deadline covers every hop
            logger_name=_logger,
            enable_auto_ping=interval > 0,
            auto_ping_idle_timeout=interval or 10,
            auto_ping_reply_timeout=min(options.ping_timeout or interval, interval) or 10,
            enable_auto_pong=True,
            # Compressed frames are checked after inflating; plain ones in on_ws_frame.
            max_frame_size=options.max_size + 1024,
            extra_headers=headers,
            max_redirects=0,
            proxy=proxy,
        )
    except picows.WSInvalidURL as exc:
        raise InvalidURI(url, str(exc)) from exc
    except picows.WSInvalidStatusError as exc:
        raise _status_error(exc) from exc
    except picows.WSHandshakeError as exc:
        if exc.response is None and exc.raw_header is None:
            raise InvalidMessage(str(exc)) from EOFError(str(exc))
        raise InvalidHandshake(str(exc)) from exc
    if link is None:
        # picows 2.3 returns no listener when the peer closes mid-handshake.
        transport.disconnect(False)
        raise InvalidMessage("connection closed during the handshake") from EOFError()
    assert isinstance(link, PicowsLink)
    link._open = True
    return link
