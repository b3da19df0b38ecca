"""The ``sse`` call template on :class:`~agenticaiframework.communication.SSEClient`.

A call opens one event stream (GET, or POST with the ``body_field`` argument
as JSON), filling ``{name}`` path parameters, ``header_fields`` headers and
query parameters as the ``http`` template does. Each event (of ``event_type``
when given) is yielded with its data decoded (JSON objects and arrays as
dict/list, other data as str). The stream ends when the server ends the
response or, with ``terminal_event``, at that event; then drops before it are
resumed with ``Last-Event-ID`` when ``reconnect`` is on. ``call_tool``
returns the list of all chunks, holding at most the tool client's
``max_result_size`` characters of event data (past it,
:class:`~agenticaiframework.communication.errors.MessageTooLargeError`; a
stream read with ``call_tool_streaming`` has no total limit, each event is
bounded by ``max_event_size``). SSE manuals are not discoverable (UTCP
defines no SSE discovery): register an ``http`` manual that lists ``sse``
tools and allows the type.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from ..core import codecs, errors
from ..core.config import SSEConfig
from .base import Discovery, Transport
from .http_tools import build_request
from .manual import Tool
from .templates import CallTemplate, HttpCallTemplate, SseCallTemplate, auth_from_utcp

__all__ = ["SseTransport"]


class SseTransport(Transport):
    """``sse`` tools: one SSEClient per call, closed when the stream ends."""

    type_name = "sse"

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """SSE has no discovery exchange; refuse with a clear message."""
        raise errors.ConfigError(
            f"manual {manual_name!r}: an sse call template cannot serve a manual; register "
            "an http manual whose tools use sse and list it in allowed_communication_protocols"
        )

    async def deregister_manual(self, manual_name: str) -> None:
        """Nothing is kept per manual: every stream closes with its call."""

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """Read the whole stream and return its chunks as a list (within ``max_result_size``)."""
        limit = self.context.max_result_size
        chunks: list[Any] = []
        total = 0
        async with aclosing(self._events(tool, template, args)) as events:
            async for size, chunk in events:
                total += size
                if limit is not None and total > limit:
                    raise errors.MessageTooLargeError(
                        f"tool {tool.name!r}: the event stream holds more than "
                        f"max_result_size={limit} characters of data; read it with "
                        "call_tool_streaming, or raise the tool client's max_result_size"
                    )
                chunks.append(chunk)
        return chunks

    async def call_tool_streaming(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """Open the stream and yield each (matching) event's decoded data."""
        async with aclosing(self._events(tool, template, args)) as events:
            async for _, chunk in events:
                yield chunk

    async def _events(
        self, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """Open the stream; yield each matching event's data size and decoded data."""
        from ..sse.client import SSEClient

        assert isinstance(template, SseCallTemplate)
        as_http = HttpCallTemplate(
            name=template.name,
            call_template_type="http",
            url=template.url,
            http_method=template.http_method,
            headers=template.headers,
            body_field=template.body_field,
            header_fields=template.header_fields,
        )
        parts = build_request(as_http, args, tool.name)
        body = None
        if parts.content is not None:
            body = codecs.loads(parts.content)
            parts.headers.pop("Content-Type", None)
        base = self.context.http_config
        config = SSEConfig(
            method="POST" if body is not None else template.http_method,
            json=body,
            params=parts.params or None,
            headers=parts.headers,
            auth=auth_from_utcp(template.auth, allow_insecure=self.context.allow_insecure),
            allow_insecure=self.context.allow_insecure or base.allow_insecure,
            verify_ssl=base.verify_ssl,
            ca_certs=base.ca_certs,
            client_cert=base.client_cert,
            client_key=base.client_key,
            connect_timeout=base.connect_timeout,
            auto_reconnect=template.reconnect and template.terminal_event is not None,
            reconnect_delay=template.retry_timeout / 1000.0,
            max_reconnect_delay=max(template.retry_timeout / 1000.0, 30.0),
            terminal_event=template.terminal_event,
        )
        wanted = template.event_type
        async with SSEClient(parts.url, config=config) as stream:
            async for event in stream:
                if wanted is not None and event.event != wanted:
                    continue
                yield len(event.data), codecs.decode(event.data, "auto")
