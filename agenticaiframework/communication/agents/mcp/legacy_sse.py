"""The deprecated HTTP+SSE transport of MCP 2024-11-05, as a fallback.

The specification's backwards-compatibility rule: when the first POST of
``initialize`` to the URL is answered 400, 404 or 405, GET the URL as an SSE
stream; its first event, ``endpoint``, names where to POST every message, and
every message from the server arrives on that one stream.
:class:`~agenticaiframework.communication.agents.mcp.streamable_http.StreamableHTTPTransport`
switches to this when that happens. The endpoint must be on the origin of the
URL (a server cannot send our messages elsewhere); the stream is not resumed
(2024-11-05 defines no resumption), so when it ends every pending and later
call fails with ConnectionError.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ...core import errors
from ...core.codecs import loads
from ...core.security import origin_of, redact_url
from ...http.client import HTTPClient, HTTPResponse
from ...sse.client import EventStreamDecoder
from .faults import as_communication_error

if TYPE_CHECKING:
    from .session import MCPSession

__all__ = ["FALLBACK_STATUSES", "LegacySSE"]

FALLBACK_STATUSES = frozenset({400, 404, 405})
"""Statuses of the first POST that mean "try the 2024-11-05 HTTP+SSE transport"."""
_ENDPOINT_TIMEOUT = 30.0


class LegacySSE:
    """One HTTP+SSE connection: the GET stream and the endpoint messages go to.

    Args:
        http: The HTTPClient (security policy, auth, headers) to use.
        url: The URL the stream is opened at.
        session: Where the messages of the stream go.
        logger: Where events are logged.
        max_message_size: Largest SSE event.
    """

    def __init__(
        self,
        http: HTTPClient,
        url: str,
        session: MCPSession,
        logger: logging.Logger,
        max_message_size: int,
    ) -> None:
        self._http = http
        self._url = url
        self._shown = redact_url(url)
        self._session = session
        self._logger = logger
        self._max = max_message_size
        self.endpoint: str | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """GET the stream and wait for its ``endpoint`` event.

        Raises:
            ProtocolError: No ``endpoint`` event first, or not an event stream.
            SecurityError: The endpoint is on another origin.
            HTTPStatusError: The GET was refused.
            TimeoutError: No endpoint in time.
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[str] = loop.create_future()
        self._reader = loop.create_task(self._read(ready), name="MCPClient:legacy-sse")
        try:
            async with asyncio.timeout(_ENDPOINT_TIMEOUT):
                self.endpoint = await asyncio.shield(ready)
        except TimeoutError as exc:
            await self.close()
            raise errors.TimeoutError(
                f"{self._shown}: no 'endpoint' event within {_ENDPOINT_TIMEOUT:g}s"
            ) from exc
        except BaseException:
            await self.close()
            raise
        self._logger.info(
            "%s: speaking the 2024-11-05 HTTP+SSE transport (endpoint %s)",
            self._shown,
            redact_url(self.endpoint),
        )

    def _endpoint_from(self, data: str) -> str:
        endpoint = urljoin(self._url, data.strip())
        if origin_of(endpoint) != origin_of(self._url):
            raise errors.SecurityError(
                f"{self._shown}: the server named an endpoint on another origin "
                f"({redact_url(endpoint)}); refused"
            )
        return endpoint

    async def _read(self, ready: asyncio.Future[str]) -> None:
        try:
            async with self._http.stream(
                "GET",
                self._url,
                headers={"Accept": "text/event-stream"},
                timeout=None,
                max_response_size=None,
            ) as response:
                await self._consume(response, ready)
            failure: errors.CommunicationError = errors.ConnectionError(
                f"{self._shown}: the HTTP+SSE stream ended"
            )
        except Exception as exc:  # ours, or an auth of the user's: never a silent end
            failure = as_communication_error(exc, "the HTTP+SSE stream", self._url)
            if failure is not exc:
                failure.__cause__ = exc
        if not ready.done():
            ready.set_exception(failure)
        else:
            self._session.transport_failed(failure)

    async def _consume(self, response: HTTPResponse, ready: asyncio.Future[str]) -> None:
        if response.status_code != 200:
            raise errors.HTTPStatusError(
                f"{self._shown}: GET for the HTTP+SSE stream answered {response.status_code}",
                status_code=response.status_code,
            )
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "text/event-stream":
            raise errors.ProtocolError(
                f"{self._shown}: neither Streamable HTTP nor HTTP+SSE (GET gave {ctype!r})"
            )
        decoder = EventStreamDecoder(max_event_size=self._max)
        text = codecs.getincrementaldecoder("utf-8")("replace")
        session = self._session
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(text.decode(chunk)):
                if not ready.done():
                    if event.event != "endpoint":
                        raise errors.ProtocolError(
                            f"{self._shown}: the first event is {event.event!r}, not 'endpoint'"
                        )
                    ready.set_result(self._endpoint_from(event.data))
                    continue
                if event.event != "message" or not event.data.strip():
                    continue
                try:
                    message = loads(event.data)
                except errors.ProtocolError as exc:
                    self._logger.warning("%s: skipped an event: %s", self._shown, exc.message)
                    session.report(exc)
                    continue
                session.handle_message(message)

    async def send(self, message: dict[str, Any]) -> None:
        """POST one message to the endpoint (answers come on the stream).

        Raises:
            HTTPStatusError: The server refused it.
        """
        assert self.endpoint is not None
        try:
            response = await self._http.request(
                "POST", self.endpoint, json=message, retry=False, max_response_size=self._max
            )
        except errors.CommunicationError:
            raise
        except Exception as exc:  # an auth of the user's
            what = message.get("method") or "a reply"
            raise as_communication_error(exc, what, self.endpoint) from exc
        if not 200 <= response.status_code < 300:
            raise errors.HTTPStatusError(
                f"{message.get('method') or 'a reply'}: {redact_url(self.endpoint)} answered "
                f"{response.status_code}",
                status_code=response.status_code,
                body_preview=response.text[:300],
            )

    async def close(self) -> None:
        """Stop reading the stream."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
