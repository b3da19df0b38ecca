"""The Streamable HTTP transport of MCP (revisions 2025-03-26 to 2025-11-25).

Every message is POSTed to the one MCP endpoint with ``Accept:
application/json, text/event-stream``. A request is answered either by a JSON
body or by an SSE stream that carries the server's requests and
notifications about it and finally its response; notifications and
responses are accepted with 202. After ``initialize`` every request carries
``MCP-Session-Id`` (when the server gave one) and ``MCP-Protocol-Version``.

What this transport does on its own:

* a 404 for a session raises :class:`SessionExpiredError`, on which the
  session starts a new one and sends the request again (once);
* an SSE response stream that ends or breaks before its response came is
  resumed with GET and ``Last-Event-ID`` after the server's ``retry`` (the
  request is never sent twice); with no event id to resume from, the call
  fails with ConnectionError;
* the GET stream for server-initiated messages is opened after the
  handshake and kept open (resumed the same way) unless the server answers
  405;
* ``close()`` DELETEs the session;
* when the first ``initialize`` POST is answered 400, 404 or 405, it speaks
  the deprecated 2024-11-05 HTTP+SSE transport instead (``legacy_sse.py``),
  unless ``legacy_fallback=False``.

Each SSE event is bounded by ``max_message_size``, and so is a JSON body.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from ...core import errors
from ...core.codecs import loads
from ...core.security import redact_text, redact_url
from ...http.client import HTTPClient, HTTPResponse
from ...sse.client import EventStreamDecoder
from ...stdio import jsonrpc
from .faults import as_communication_error
from .legacy_sse import FALLBACK_STATUSES, LegacySSE
from .session import MCPAuthorizationError, SessionExpiredError

if TYPE_CHECKING:
    from .session import MCPSession

__all__ = ["StreamableHTTPTransport"]

_ACCEPT_BOTH = "application/json, text/event-stream"
_DEFAULT_RETRY_MS = 1000
# Resumptions in a row that bring no event before a stream is given up.
_MAX_RESUMES = 5
_DELETE_TIMEOUT = 5.0
_PREVIEW = 300
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class StreamableHTTPTransport:
    """MCP over Streamable HTTP.

    Args:
        url: The MCP endpoint.
        logger: Where events are logged.
        max_message_size: Largest JSON body or SSE event, in bytes/characters.
        legacy_fallback: Fall back to the 2024-11-05 HTTP+SSE transport when
            the first ``initialize`` POST gets 400, 404 or 405.
        **options: :class:`HTTPConfig` fields (``headers``, ``auth``,
            ``allow_insecure``, ``verify_ssl``, ``transport`` ...).

    Raises:
        ConfigError: A bad option (named).
    """

    def __init__(
        self,
        url: str,
        *,
        logger: logging.Logger,
        max_message_size: int = 16 * 1024 * 1024,
        legacy_fallback: bool = True,
        **options: Any,
    ) -> None:
        if not isinstance(legacy_fallback, bool):
            raise errors.ConfigError(f"legacy_fallback: must be a bool, got {legacy_fallback!r}")
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise errors.ConfigError(f"max_message_size: must be an int, got {max_message_size!r}")
        if max_message_size < 1:
            raise errors.ConfigError(f"max_message_size: must be >= 1, got {max_message_size}")
        self._url = url
        self._shown = redact_url(url)
        self._max = max_message_size
        self._http = HTTPClient(**options)
        # Streamed requests: connect, write and pool bounded, read not (an event stream may idle).
        connect = self._http.config.connect_timeout or None
        self._stream_limits: Any = httpx.Timeout(None, connect=connect, write=connect, pool=connect)
        self._logger = logger
        self._session: MCPSession | None = None
        self.session_id: str | None = None
        self._version: str | None = None
        self._streams: dict[Any, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._get_task: asyncio.Task[None] | None = None
        # Settled once the GET stream is open (or refused, or failed): until then
        # a request waits, so what the server sends there about it is not lost.
        self._get_settled: asyncio.Future[None] | None = None
        self._fallback = legacy_fallback
        self._established = False
        self._expired = False
        self._legacy: LegacySSE | None = None

    @property
    def http(self) -> HTTPClient:
        """The underlying HTTPClient (stats)."""
        return self._http

    async def start(self, session: MCPSession) -> None:
        """Remember the session the messages go to (the first POST opens the connection)."""
        self._session = session
        await self._http.connect()

    def _headers(self, accept: str = _ACCEPT_BOTH) -> dict[str, str]:
        headers = {"Accept": accept}
        if self.session_id is not None:
            headers["MCP-Session-Id"] = self.session_id
        if self._version is not None:
            headers["MCP-Protocol-Version"] = self._version
        return headers

    @property
    def legacy(self) -> bool:
        """Whether the server speaks the 2024-11-05 HTTP+SSE transport (the fallback)."""
        return self._legacy is not None

    def initialized(self, protocol_version: str) -> None:
        """Send the version header from now on and open the GET stream."""
        self._version = protocol_version
        self._established = True
        self._expired = False
        if self._legacy is not None:
            return
        if self._get_task is not None:
            self._get_task.cancel()
        self._get_settled = asyncio.get_running_loop().create_future()
        self._get_task = self._spawn(self._listen(), "get-stream")
        self._get_task.add_done_callback(lambda _: self._settle_get())

    def _settle_get(self) -> None:
        if self._get_settled is not None and not self._get_settled.done():
            self._get_settled.set_result(None)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"MCPClient:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- POST ------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """POST one message.

        For a request this returns once the server has accepted it (the
        response arrives through the session); the reply body is read by a
        task of its own.

        Raises:
            SessionExpiredError: 404 for our session id.
            HTTPStatusError: Another error status.
            ProtocolError: A response the specification does not allow.
            ConnectionError: The server cannot be reached.
        """
        if self._legacy is not None:
            await self._legacy.send(message)
            return
        if self._expired and message.get("method") != "initialize":
            # Sent without the lost id it would get 400: renew the session first.
            raise SessionExpiredError(f"{self._shown}: the session was lost; not sent")
        settled = self._get_settled
        if (
            settled is not None
            and not settled.done()
            and message.get("method") != "notifications/initialized"
        ):
            await asyncio.shield(settled)
        if "id" in message and "method" in message:
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            request_id = message["id"]
            task = self._spawn(self._post_request(message, ready), f"post:{message['method']}")
            self._streams[request_id] = task
            task.add_done_callback(lambda _: self._forget(request_id, task))
            try:
                await asyncio.shield(ready)
            except asyncio.CancelledError:
                task.cancel()
                raise
            except errors.HTTPStatusError as exc:
                if not self._may_fall_back(message, exc):
                    raise
                await self._fall_back(message)
            return
        headers = self._headers()
        what = message.get("method") or "a reply"
        async with self._open("POST", headers, what, json=message) as response:
            status = response.status_code
            if status in (200, 202, 204):
                return
            raise await self._status_error(
                response, message.get("method") or "a reply", headers.get("MCP-Session-Id")
            )

    def _may_fall_back(self, message: dict[str, Any], exc: errors.HTTPStatusError) -> bool:
        return (
            self._fallback
            and not self._established
            and message.get("method") == "initialize"
            and exc.status_code in FALLBACK_STATUSES
        )

    async def _fall_back(self, message: dict[str, Any]) -> None:
        """Switch to the 2024-11-05 HTTP+SSE transport and send ``initialize`` there."""
        assert self._session is not None
        self._logger.info("%s: no Streamable HTTP; trying the HTTP+SSE transport", self._shown)
        legacy = LegacySSE(self._http, self._url, self._session, self._logger, self._max)
        await legacy.open()
        self._legacy = legacy
        await legacy.send(message)

    def _forget(self, request_id: Any, task: asyncio.Task[None]) -> None:
        if self._streams.get(request_id) is task:
            del self._streams[request_id]

    async def _status_error(
        self, response: HTTPResponse, what: str, sent_session: str | None
    ) -> errors.CommunicationError:
        """The error for a non-success status; ``sent_session`` is the id the request carried."""
        if response.status_code == 404 and sent_session is not None:
            if self.session_id == sent_session:  # not renewed yet by a concurrent request
                self._logger.info("%s: 404 for MCP session %s", self._shown, sent_session)
                self.session_id = None
                self._version = None
                self._expired = True
                if self._get_task is not None:
                    self._get_task.cancel()
            return SessionExpiredError(f"{self._shown}: the server no longer knows the session")
        if response.status_code in (401, 403):
            return self._auth_error(response, what)
        preview = await self._preview(response)
        return errors.HTTPStatusError(
            f"{what}: {self._shown} answered {response.status_code} {response.reason_phrase}"
            + (f": {preview}" if preview else ""),
            status_code=response.status_code,
            body_preview=preview,
        )

    def _auth_error(self, response: HTTPResponse, what: str) -> MCPAuthorizationError:
        params = parse_bearer_challenge(response.headers.get("www-authenticate", ""))
        status = response.status_code
        metadata = params.get("resource_metadata")
        message = f"{what}: {self._shown} answered {status}"
        if params.get("error"):
            message += f" ({params['error'][:100]}"
            if params.get("error_description"):
                message += f": {params['error_description'][:200]}"
            message += ")"
        if status == 401:
            message += "; the server requires authorization: pass auth= (e.g. a bearer token)"
        if params.get("scope"):
            message += f"; scope asked for: {params['scope'][:200]}"
        if metadata:
            message += f"; resource metadata at {redact_url(metadata)}"
        return MCPAuthorizationError(
            redact_text(message),
            status_code=status,
            error=params.get("error"),
            resource_metadata=metadata,
            scope=params.get("scope"),
        )

    async def _preview(self, response: HTTPResponse) -> str:
        data = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= _PREVIEW:
                    break
        except errors.CommunicationError:
            pass
        return bytes(data[:_PREVIEW]).decode("utf-8", "replace")

    @contextlib.asynccontextmanager
    async def _open(
        self, verb: str, headers: dict[str, str], what: str, *, json: Any = None, bound: bool = True
    ) -> AsyncIterator[HTTPResponse]:
        """Send a request and stream its response; reading the body is never bounded.

        Connecting is bounded by ``connect_timeout`` and, when ``bound``, the
        wait for the response headers by ``timeout_seconds`` (0: no bound).

        Raises:
            TimeoutError: No connection, or no response headers, in time.
        """
        wait = (self._http.config.timeout_seconds or None) if bound else None
        async with contextlib.AsyncExitStack() as stack:
            scope = asyncio.timeout(wait)
            try:
                async with scope:
                    response = await stack.enter_async_context(
                        self._http.stream(
                            verb,
                            self._url,
                            json=json,
                            headers=headers,
                            timeout=self._stream_limits,
                            max_response_size=None,
                        )
                    )
            except TimeoutError as exc:
                if not scope.expired():
                    # Connecting timed out (already ours), or code of the user's (auth).
                    raise as_communication_error(exc, what, self._url) from exc
                raise errors.TimeoutError(
                    f"{what}: {self._shown} sent no response headers within {wait:g}s"
                ) from exc
            except errors.CommunicationError:
                raise
            except Exception as exc:  # an auth or transport of the user's failed
                raise as_communication_error(exc, what, self._url) from exc
            yield response

    async def _post_request(self, message: dict[str, Any], ready: asyncio.Future[None]) -> None:
        session = self._session
        assert session is not None
        request_id = message["id"]
        method = message["method"]
        headers = self._headers()
        try:
            # A JSON-response server sends the headers with the reply: only
            # initialize (answered at once) has them bounded; a call has its deadline.
            async with self._open(
                "POST", headers, method, json=message, bound=method == "initialize"
            ) as response:
                if response.status_code != 200:
                    raise await self._status_error(response, method, headers.get("MCP-Session-Id"))
                if method == "initialize":
                    self._take_session_id(response)
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype == "application/json":
                    body = await self._read_json(response, method)
                    ready.set_result(None)
                    session.handle_message(body)
                    items = body if isinstance(body, list) else [body]
                    if not any(_answers(item, request_id) for item in items):
                        # Nothing else can answer it: fail now rather than at the deadline.
                        raise _not_an_answer(items, method)
                elif ctype == "text/event-stream":
                    ready.set_result(None)
                    await self._read_response_stream(response, request_id, method)
                else:
                    raise errors.ProtocolError(
                        f"{method}: {self._shown} answered 200 with content type {ctype!r} "
                        "(expected application/json or text/event-stream)"
                    )
        except Exception as exc:
            failure = as_communication_error(exc, method, self._url)
            if failure is not exc:
                failure.__cause__ = exc
            if not ready.done():
                ready.set_exception(failure)
            else:
                session.fail_request(request_id, failure)
        finally:
            if not ready.done():  # cancelled (closing): the sender must not wait forever
                ready.set_exception(errors.ClosedError(f"{method}: the client was closed"))
                ready.exception()  # retrieved here too: the sender may be gone

    def _take_session_id(self, response: HTTPResponse) -> None:
        value = response.headers.get("mcp-session-id")
        if value is None:
            self.session_id = None
            return
        if not value or not all(0x21 <= ord(ch) <= 0x7E for ch in value) or len(value) > 1024:
            raise errors.ProtocolError(
                f"initialize: the MCP-Session-Id {value[:80]!r} is not visible ASCII (spec)"
            )
        self.session_id = value

    async def _read_json(self, response: HTTPResponse, method: str) -> Any:
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self._max:
                raise errors.MessageTooLargeError(
                    f"{method}: the JSON response exceeds max_message_size={self._max}"
                )
        try:
            return loads(bytes(data).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise errors.ProtocolError(f"{method}: the JSON response is not UTF-8") from exc

    # -- SSE -------------------------------------------------------------------------

    async def _consume(
        self, response: HTTPResponse, decoder: EventStreamDecoder, request_id: Any
    ) -> tuple[bool, int]:
        """Hand the stream's messages to the session.

        Returns:
            (whether the response to ``request_id`` came, events read). A
            stream that ends or breaks returns; an oversized event raises.
        """
        session = self._session
        assert session is not None
        text = codecs.getincrementaldecoder("utf-8")("replace")
        count = 0
        try:
            async for chunk in response.aiter_bytes():
                for event in decoder.feed(text.decode(chunk)):
                    count += 1
                    if event.event != "message" or not event.data.strip():
                        continue  # a priming event (id only), or another event type
                    try:
                        message = loads(event.data)
                    except errors.ProtocolError as exc:
                        self._logger.warning("%s: skipped an event: %s", self._shown, exc.message)
                        session.report(exc)
                        continue
                    session.handle_message(message)
                    if request_id is not None and _answers(message, request_id):
                        return True, count
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            self._logger.info("%s: the event stream broke: %s", self._shown, exc.message)
        return False, count

    async def _read_response_stream(
        self, response: HTTPResponse, request_id: Any, method: str
    ) -> None:
        decoder = EventStreamDecoder(max_event_size=self._max)
        done, _ = await self._consume(response, decoder, request_id)
        fruitless = 0
        while not done:
            if not decoder.resume_id:
                raise errors.ConnectionError(
                    f"{method}: the event stream from {self._shown} ended before the "
                    "response, with no event id to resume from"
                )
            fruitless += 1
            if fruitless > _MAX_RESUMES:
                raise errors.ConnectionError(
                    f"{method}: gave up resuming the event stream from {self._shown} "
                    f"after {_MAX_RESUMES} attempts without an event"
                )
            await asyncio.sleep((decoder.retry or _DEFAULT_RETRY_MS) / 1000)
            headers = self._headers("text/event-stream")
            headers["Last-Event-ID"] = decoder.resume_id
            self._logger.info(
                "%s: resuming the stream of %s after event %r",
                self._shown,
                method,
                decoder.resume_id,
            )
            try:
                async with self._open("GET", headers, f"{method} (resuming)") as resumed:
                    if resumed.status_code != 200:
                        raise await self._status_error(
                            resumed, f"{method} (resuming)", headers.get("MCP-Session-Id")
                        )
                    _require_sse(resumed, method)
                    decoder.new_stream()
                    done, count = await self._consume(resumed, decoder, request_id)
                    if count:
                        fruitless = 0
            except SessionExpiredError as exc:
                # Never sent again: it may have run. The next request renews the session.
                raise errors.ConnectionError(
                    f"{method}: the server lost the session while the response was "
                    f"streaming (the request may have run): {exc.message}"
                ) from exc
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                self._logger.info("%s: could not resume: %s", self._shown, exc.message)

    async def _listen(self) -> None:
        """The GET stream for server-initiated messages, kept open while the server allows."""
        decoder = EventStreamDecoder(max_event_size=self._max)
        failures = 0
        while True:
            headers = self._headers("text/event-stream")
            if decoder.resume_id:
                headers["Last-Event-ID"] = decoder.resume_id
            try:
                async with self._open("GET", headers, "the GET stream") as response:
                    status = response.status_code
                    self._settle_get()
                    if status == 405:
                        self._logger.debug("%s offers no GET stream (405)", self._shown)
                        return
                    if status != 200:
                        self._logger.info(
                            "%s: the GET stream was refused with %d", self._shown, status
                        )
                        return
                    _require_sse(response, "the GET stream")
                    decoder.new_stream()
                    _, count = await self._consume(response, decoder, None)
                    if count:
                        failures = 0
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                self._logger.info("%s: GET stream: %s", self._shown, exc.message)
            except errors.CommunicationError as exc:
                self._logger.warning("%s: GET stream: %s", self._shown, exc.message)
            self._settle_get()
            failures += 1
            if failures > _MAX_RESUMES:
                self._logger.warning("%s: gave up the GET stream", self._shown)
                return
            await asyncio.sleep((decoder.retry or _DEFAULT_RETRY_MS) / 1000 * failures)

    # -- the rest ----------------------------------------------------------------------

    def abandon(self, request_id: jsonrpc.RequestId) -> None:
        """Stop reading the response stream of a request nobody waits for."""
        task = self._streams.pop(request_id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Stop every stream, DELETE the session, close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._legacy is not None:
            await self._legacy.close()
        try:
            if self.session_id is not None and not self._http.is_closed:
                try:
                    response = await self._http.request(
                        "DELETE",
                        self._url,
                        headers=self._headers(),
                        timeout=_DELETE_TIMEOUT,
                        retry=False,
                    )
                    if response.status_code not in (200, 202, 204, 404, 405):
                        self._logger.info(
                            "%s: DELETE of the session answered %d",
                            self._shown,
                            response.status_code,
                        )
                except Exception as exc:  # an auth of the user's too: closing goes on
                    failure = as_communication_error(exc, "DELETE of the session", self._url)
                    self._logger.info("%s: could not DELETE the session: %s", self._shown, failure)
        finally:
            await self._http.close()


def _answers(message: Any, request_id: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("id") == request_id
        and ("result" in message or "error" in message)
        and "method" not in message
    )


def parse_bearer_challenge(header: str) -> dict[str, str]:
    """The parameters of the ``Bearer`` challenge of a ``WWW-Authenticate`` header.

    Args:
        header: The header value (may hold several challenges).

    Returns:
        Lower-case parameter names to values (``error``, ``scope``,
        ``resource_metadata`` ...); empty when there is no Bearer challenge.
    """
    match = re.search(r"(?:^|,)\s*Bearer\b", header, re.IGNORECASE)
    if match is None:
        return {}
    rest = header[match.end() :]
    # Stop at the next challenge: a scheme name followed by a space, not a parameter.
    following = re.search(r",\s*[A-Za-z][\w-]*\s+[A-Za-z_]+\s*=", rest)
    if following is not None:
        rest = rest[: following.start()]
    params: dict[str, str] = {}
    for name, quoted, token in _AUTH_PARAM.findall(rest):
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted else token
        params.setdefault(name.lower(), value)
    return params


def _not_an_answer(items: list[Any], method: str) -> errors.CommunicationError:
    """The error for a JSON body that holds no response to the request it answers."""
    for item in items:
        if isinstance(item, dict) and item.get("id") is None and "error" in item:
            return jsonrpc.remote_error(item, method=method)
    return errors.ProtocolError(f"{method}: the JSON response holds no reply to the request")


def _require_sse(response: HTTPResponse, what: str) -> None:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "text/event-stream":
        raise errors.ProtocolError(f"{what}: expected text/event-stream, got {ctype!r}")
