"""The ``websocket`` call template on :class:`~agenticaiframework.communication.WebSocketClient`.

The UTCP WebSocket exchange: discovery sends ``{"type": "utcp"}`` on the
manual's connection and takes the first message holding ``tools`` as the
manual. A call sends the ``message`` template with every
``UTCP_ARG_<name>_UTCP_ARG`` replaced by the argument (str as is, anything
else as JSON), or the arguments as a JSON object when there is no template,
and returns the next message, shaped by ``response_format`` (``json``
decodes, ``text`` gives a str, ``raw``/None the message as received, JSON
objects and arrays decoded). A streaming call yields the ``result`` of each
``{"type": "tool_response"}`` message (other messages as they are) until
``{"type": "stream_end"}``; ``{"type": "tool_error"}`` raises RemoteError.

One connection per manual and endpoint (URL, headers, auth) is kept open and
reused by every call; calls on it take turns, as the exchange has no request
ids. Deregistering the manual closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core import codecs, errors
from ..core.config import WebSocketConfig
from .base import Discovery, Transport, connect_cached
from .manual import Tool, parse_manual_parts
from .remote import is_remote_url
from .templates import CallTemplate, WebSocketCallTemplate, auth_from_utcp

if TYPE_CHECKING:
    from ..websocket.client import WebSocketClient

__all__ = ["WebSocketTransport", "format_message", "shape_response"]

_DISCOVERY = {"type": "utcp"}


def _fill(template: Any, args: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        result = template
        for name, value in args.items():
            placeholder = f"UTCP_ARG_{name}_UTCP_ARG"
            if placeholder in result:
                result = result.replace(
                    placeholder, value if isinstance(value, str) else codecs.dumps(value)
                )
        return result
    if isinstance(template, Mapping):
        return {k: _fill(v, args) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, args) for v in template]
    return template


def format_message(template: WebSocketCallTemplate, args: Mapping[str, Any]) -> str:
    """Build the text frame of a call (no I/O).

    Args:
        template: The tool's template.
        args: The arguments (``header_fields`` already removed).

    Returns:
        The message text: the filled template (objects as JSON), or the
        arguments as a JSON object.
    """
    if template.message is None:
        return codecs.dumps(dict(args))
    filled = _fill(template.message, args)
    return filled if isinstance(filled, str) else codecs.dumps(filled)


def shape_response(message: Any, response_format: str | None) -> Any:
    """Apply ``response_format`` to a received message (no I/O).

    Args:
        message: As received (dict/list for JSON text, str, bytes).
        response_format: ``json``, ``text``, ``raw`` or None.

    Returns:
        The result.
    """
    if response_format == "json" and isinstance(message, str | bytes):
        try:
            return codecs.loads(message)
        except errors.ProtocolError:
            return message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    if response_format == "text":
        if isinstance(message, dict | list):
            return codecs.dumps(message)
        if isinstance(message, bytes):
            return message.decode("utf-8", "replace")
    return message


class _Conn:
    __slots__ = ("client", "lock")

    def __init__(self, client: WebSocketClient) -> None:
        self.client = client
        self.lock = asyncio.Lock()


class WebSocketTransport(Transport):
    """``websocket`` manuals and tools over one kept-open connection per manual."""

    type_name = "websocket"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conns: dict[str, dict[str, _Conn]] = {}

    async def _conn(
        self,
        manual_name: str,
        template: WebSocketCallTemplate,
        headers: Mapping[str, str],
        *,
        discovering: bool = False,
    ) -> _Conn:
        from ._ws_client import ToolWebSocketClient

        all_headers = {**template.headers, **headers}
        key = codecs.dumps(
            [
                template.url,
                sorted(all_headers.items()),
                sorted((template.auth or {}).items()),
                template.protocol,
            ]
        )
        per_manual = self._conns.setdefault(manual_name, {})
        conn = per_manual.get(key)
        if conn is not None and not conn.client.is_closed:
            return conn
        base = self.context.http_config
        allow = self.context.allow_insecure or base.allow_insecure
        config = WebSocketConfig(
            headers=all_headers,
            auth=auth_from_utcp(template.auth, allow_insecure=allow),
            subprotocols=(template.protocol,) if template.protocol else (),
            ping_interval=20.0 if template.keep_alive else 0.0,
            open_timeout=template.timeout or 10.0,
            allow_insecure=allow,
            verify_ssl=base.verify_ssl,
            ca_certs=base.ca_certs,
            client_cert=base.client_cert,
            client_key=base.client_key,
        )
        client = ToolWebSocketClient(
            template.url,
            config=config,
            manual_name=manual_name,
            remote_manuals=self.context.remote_manuals,
        )
        if discovering and await is_remote_url(template.url):
            # Known before the handshake, so that its redirect hops are checked too.
            self.context.remote_manuals.add(manual_name)
        return await connect_cached(per_manual, key, _Conn(client), client)

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """Send ``{"type": "utcp"}`` and read the manual from the answer."""
        assert isinstance(template, WebSocketCallTemplate)
        conn = await self._conn(manual_name, template, {}, discovering=True)
        timeout = template.timeout or None
        async with conn.lock:
            await conn.client.send(_DISCOVERY)
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        message = await conn.client.receive()
                        if isinstance(message, str | bytes):
                            try:
                                message = codecs.loads(message)
                            except errors.ProtocolError:
                                continue
                        if isinstance(message, Mapping) and "tools" in message:
                            break
            except TimeoutError as exc:
                if isinstance(exc, errors.CommunicationError):
                    raise
                raise errors.TimeoutError(
                    f"manual {manual_name!r}: no UTCP manual from {template.url} "
                    f"within {timeout:g}s"
                ) from exc
        manual, problems, skipped = parse_manual_parts(message, default_template=template.to_dict())
        return Discovery(
            manual=manual,
            problems=tuple(problems),
            skipped=tuple(skipped),
            source_url=template.url,
        )

    async def deregister_manual(self, manual_name: str) -> None:
        """Close the manual's connections."""
        for conn in self._conns.pop(manual_name, {}).values():
            await conn.client.close()

    def _split(
        self, template: WebSocketCallTemplate, args: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        remaining = dict(args)
        headers = {
            field: str(remaining.pop(field))
            for field in template.header_fields
            if field in remaining
        }
        return headers, remaining

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """Send the call message and return the next message received.

        A message that could not be sent because the kept connection had
        ended is sent once more on a new connection. A call that fails after
        sending (lost connection, timeout, cancellation) drops the connection,
        so a late answer is never taken for the next call's.
        """
        assert isinstance(template, WebSocketCallTemplate)
        headers, remaining = self._split(template, args)
        text = format_message(template, remaining)
        for attempt in (1, 2):
            conn = await self._conn(manual_name, template, headers)
            async with conn.lock:
                try:
                    await conn.client.send(text)
                except errors.ConnectionError:
                    await self._discard(manual_name, conn)
                    if attempt == 2:
                        raise
                    continue
                done = False
                try:
                    reply = await conn.client.receive(timeout=template.timeout or None)
                    done = True
                finally:
                    if not done:
                        await self._discard(manual_name, conn)
            return shape_response(reply, template.response_format)
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_tool_streaming(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """Yield ``tool_response`` results until ``stream_end``."""
        assert isinstance(template, WebSocketCallTemplate)
        headers, remaining = self._split(template, args)
        conn = await self._conn(manual_name, template, headers)
        text = format_message(template, remaining)
        finished = False
        async with conn.lock:
            try:
                await conn.client.send(text)
                async for item in self._stream_items(conn, tool, template):
                    yield item
                finished = True
            finally:
                if not finished:
                    # Left early or failed: the rest of this stream would be
                    # read as the answer to the next call, so drop the connection.
                    await self._discard(manual_name, conn)

    async def _discard(self, manual_name: str, conn: _Conn) -> None:
        per_manual = self._conns.get(manual_name, {})
        for key, value in list(per_manual.items()):
            if value is conn:
                del per_manual[key]
        await conn.client.close()

    async def _stream_items(
        self, conn: _Conn, tool: Tool, template: WebSocketCallTemplate
    ) -> AsyncIterator[Any]:
        while True:
            message = await conn.client.receive(timeout=template.timeout or None)
            kind = message.get("type") if isinstance(message, Mapping) else None
            if kind == "stream_end":
                return
            if kind == "tool_error":
                raise errors.RemoteError(
                    f"tool {tool.name!r} failed: {message.get('error', 'unknown error')}",
                    remote_code=message.get("code"),
                    data=message,
                )
            if kind == "tool_response":
                yield message.get("result")
            else:
                yield shape_response(message, template.response_format)

    async def close(self) -> None:
        """Close every connection still open."""
        for name in list(self._conns):
            await self.deregister_manual(name)
