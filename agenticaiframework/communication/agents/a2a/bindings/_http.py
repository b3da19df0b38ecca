"""What the two HTTP bindings (JSON-RPC and HTTP+JSON) share: one HTTPClient and SSE reading.

Request bodies are encoded once with the shared codec; JSON bodies and stream
events are bounded by ``max_message_size``; event streams are decoded by the
SSE package's :class:`EventStreamDecoder` (no second parser). An event whose
data is not JSON is skipped and logged; :data:`MAX_BAD_EVENTS` of them in a
row end the stream with ``ProtocolError`` (a peer that sends only garbage
cannot keep a caller waiting forever).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any

from ....core import errors
from ....core.codecs import dumps, loads
from ....core.security import check_not_local, redact_url
from ....http.client import HTTPClient, HTTPResponse
from ....sse.client import EventStreamDecoder
from ..errors import A2AAuthError
from .base import BindingContext

__all__ = ["MAX_BAD_EVENTS", "GuardedHTTPClient", "HTTPBinding"]

MAX_BAD_EVENTS = 32
_PREVIEW = 4096
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_SSE_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Cache-Control": "no-store",
}
_SSE_GET_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
_GET_HEADERS = {"Accept": "application/json"}


def content_type(response: HTTPResponse) -> str:
    """The media type of a response, lower case, without parameters."""
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


class GuardedHTTPClient(HTTPClient):
    """An HTTPClient whose redirect hops may not lead to this machine or a private network.

    For URLs a card from another machine gave us (and that card's own URL):
    the first URL is checked by the client before use, each hop here.

    Args:
        refuse_local: Apply the check (False: a plain HTTPClient).
        **options: :class:`HTTPConfig` fields.
    """

    def __init__(self, *, refuse_local: bool, **options: Any) -> None:
        super().__init__(**options)
        self._refuse_local = refuse_local

    async def _check_redirect(self, url: str) -> None:
        if self._refuse_local:
            await check_not_local(url, what="a redirect from a remote agent")


class HTTPBinding:
    """Base of the HTTP bindings: the client, bounded JSON bodies, SSE events.

    Args:
        context: The interface and options.
    """

    def __init__(self, context: BindingContext) -> None:
        self.context = context
        options = dict(context.options)
        service = dict(context.service_params)
        taken = {name.lower() for name in service}
        headers = {
            name: value
            for name, value in dict(options.pop("headers", None) or {}).items()
            if name.lower() not in taken
        }
        headers.update(service)
        self.http: HTTPClient = GuardedHTTPClient(
            refuse_local=context.refuse_local, headers=headers, **options
        )
        self.url = context.url
        self.shown = redact_url(context.url)
        self.max = context.max_message_size
        self.logger = context.logger
        self.bad_events = 0

    async def open(self) -> None:
        """Open the HTTP client (no request is sent)."""
        await self.http.connect()

    async def close(self) -> None:
        """Close the HTTP client; safe twice."""
        await self.http.close()

    # -- unary ----------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        what: str,
    ) -> tuple[int, Any]:
        """Send one request; return its status and decoded JSON body (None if empty).

        Raises:
            A2AAuthError: 401 or 403.
            HTTPStatusError: An error status with a body that is not JSON.
            MessageTooLargeError: The body exceeds ``max_message_size``.
            ProtocolError: A success status with a body that is not JSON.
        """
        if body is None:
            response = await self.http.request(
                method,
                url,
                params=params,
                headers=_GET_HEADERS,
                timeout=self.context.timeout,
                max_response_size=self.max,
            )
        else:
            response = await self.http.request(
                method,
                url,
                params=params,
                content=dumps(body),
                headers=_JSON_HEADERS,
                timeout=self.context.timeout,
                max_response_size=self.max,
            )
        status = response.status_code
        if status in (401, 403):
            raise self.auth_error(status, response.headers.get("www-authenticate", ""), what)
        content = response.content
        if not content:
            return status, None
        try:
            return status, loads(content)
        except errors.ProtocolError as exc:
            if status >= 300:
                raise errors.HTTPStatusError(
                    f"{what}: {self.shown} answered {status} {response.reason_phrase}",
                    status_code=status,
                    body_preview=content[:300].decode("utf-8", "replace"),
                ) from exc
            raise errors.ProtocolError(
                f"{what}: {self.shown} answered {status} with a body that is not JSON "
                f"({exc.message}); it starts {content[:200]!r}"
            ) from exc

    def auth_error(self, status: int, challenge: str, what: str) -> A2AAuthError:
        """The error for a 401/403, saying what the agent card asks for."""
        verb = "refused our credentials" if status == 403 else "requires authentication"
        message = f"{what}: {self.shown} answered {status}: the agent {verb}"
        if challenge:
            message += f" (WWW-Authenticate: {challenge[:200]})"
        if self.context.auth_hint:
            message += f"; {self.context.auth_hint}"
        return A2AAuthError(message, status_code=status)

    # -- streams --------------------------------------------------------------------

    async def stream_json(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        what: str,
        on_error_status: Any,
        event: Callable[[Any], dict[str, Any]],
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Open an SSE stream and yield each event's data, decoded and passed through ``event``.

        A response with a JSON body instead of a stream (an error answered at
        once) yields that body (through ``event``) and ends. The events are
        decoded here, in this one generator (no inner one per stream layer).

        Args:
            method: HTTP method.
            url: The URL.
            body: The JSON body, if any.
            what: The operation, for messages.
            on_error_status: ``(status, decoded body or None) -> exception`` for non-2xx.
            event: The binding's unwrapping of one decoded value into a
                ``StreamResponse`` dict (raises for an error or a malformed one).

        Raises:
            ConnectionError, TimeoutError: The stream dropped.
            MessageTooLargeError: An event larger than ``max_message_size``.
            ProtocolError: Not an event stream, or garbage only.
        """
        if body is None:
            cm = self.http.stream(
                method,
                url,
                headers=_SSE_GET_HEADERS,
                timeout=self.context.stream_timeout,
                max_response_size=None,
            )
        else:
            cm = self.http.stream(
                method,
                url,
                content=dumps(body),
                headers=_SSE_HEADERS,
                timeout=self.context.stream_timeout,
                max_response_size=None,
            )
        async with cm as response:
            status = response.status_code
            ctype = content_type(response)
            if status in (401, 403):
                raise self.auth_error(status, response.headers.get("www-authenticate", ""), what)
            if status < 200 or status >= 300:
                raise on_error_status(status, await self._read_error_body(response))
            if ctype == "application/json":
                yield event(await self._read_json(response, what))
                return
            if ctype != "text/event-stream":
                raise errors.ProtocolError(
                    f"{what}: {self.shown} answered {status} with content type {ctype!r} "
                    "(expected text/event-stream)"
                )
            decoder = EventStreamDecoder(max_event_size=self.max)
            feed = decoder.feed
            text = codecs.getincrementaldecoder("utf-8")("replace").decode
            bad = 0
            async with aclosing(response.aiter_bytes()) as chunks:
                async for chunk in chunks:
                    for sse in feed(text(chunk)):
                        data = sse.data
                        if not data:
                            continue
                        try:
                            value = loads(data)
                        except errors.ProtocolError as exc:
                            bad += 1
                            self._bad_event(what, bad, exc)
                            continue
                        bad = 0
                        yield event(value)

    def _bad_event(self, what: str, bad: int, exc: errors.ProtocolError) -> None:
        """Count and log an event that is not JSON; raise once too many came in a row."""
        self.bad_events += 1
        self.logger.warning(
            "%s: %s: skipped an event that is not JSON: %s", self.shown, what, exc.message
        )
        if bad >= MAX_BAD_EVENTS:
            raise errors.ProtocolError(
                f"{what}: {self.shown} sent {bad} events in a row that are not JSON"
            ) from exc

    async def _read_json(self, response: HTTPResponse, what: str) -> Any:
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self.max:
                raise errors.MessageTooLargeError(
                    f"{what}: the JSON body from {self.shown} exceeds max_message_size={self.max}"
                )
        try:
            return loads(bytes(data))
        except errors.ProtocolError as exc:
            raise errors.ProtocolError(
                f"{what}: {self.shown} answered a body that is not JSON ({exc.message})"
            ) from exc

    async def _read_error_body(self, response: HTTPResponse) -> Any:
        data = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= _PREVIEW:
                    return None
        except (errors.ConnectionError, errors.TimeoutError):
            return None
        try:
            return loads(bytes(data)) if data else None
        except errors.ProtocolError:
            return None
