"""The MCP session, apart from any transport: JSON-RPC correlation and the lifecycle.

:class:`MCPSession` sends requests and notifications through a
:class:`Transport` and is handed every message the transport receives
(:meth:`MCPSession.handle_message`). It owns what the specification puts on
the session whatever carries it: the ``initialize`` handshake and version
negotiation, request ids, timeouts and ``notifications/cancelled``, progress
tokens, the server's requests (``ping``, ``roots/list``,
``sampling/createMessage``, ``elicitation/create``) and its notifications.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from ...core import errors
from ...core.events import EventEmitter
from ...core.security import redact_url
from ...core.telemetry import (
    DISABLED,
    NO_TELEMETRY,
    Instrumentation,
    OperationTelemetry,
    extract_meta,
    instrumentation_for,
    monotonic,
)
from ...stdio import jsonrpc
from .url_elicitation import (
    URL_ELICITATION_REQUIRED,
    URLElicitationHandler,
    URLElicitationRequiredError,
    answer_url_elicitation,
)

__all__ = [
    "EVENTS",
    "LATEST_PROTOCOL_VERSION",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "ElicitationHandler",
    "MCPAuthorizationError",
    "MCPSession",
    "ProgressHandler",
    "SamplingHandler",
    "SessionExpiredError",
    "Transport",
]

LATEST_PROTOCOL_VERSION = "2025-11-25"
SUPPORTED_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
"""The revisions this client speaks, newest first (it negotiates down to any of them;
2024-11-05 for servers on its HTTP+SSE transport or stdio)."""

EVENTS = (
    "notification",
    "log",
    "progress",
    "tools_list_changed",
    "resources_list_changed",
    "prompts_list_changed",
    "resource_updated",
    "task_status",
    "elicitation_complete",
    "error",
)
# notification method -> the named event it is also delivered to
_NAMED_EVENTS = {
    "notifications/message": "log",
    "notifications/progress": "progress",
    "notifications/tools/list_changed": "tools_list_changed",
    "notifications/resources/list_changed": "resources_list_changed",
    "notifications/prompts/list_changed": "prompts_list_changed",
    "notifications/resources/updated": "resource_updated",
    "notifications/tasks/status": "task_status",
    "notifications/elicitation/complete": "elicitation_complete",
}
# How long a best-effort notifications/cancelled may take to go out.
_CANCEL_SEND_TIMEOUT = 5.0

ProgressHandler = Callable[[dict[str, Any]], Any]
SamplingHandler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]] | Mapping[str, Any]]
ElicitationHandler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]] | Mapping[str, Any]]

_logger = logging.getLogger("agenticaiframework.communication.mcp")


class SessionExpiredError(errors.ConnectionError):
    """The server no longer knows the session (HTTP 404 for ``MCP-Session-Id``)."""

    code = "ERR_SESSION_EXPIRED"


class MCPAuthorizationError(errors.AuthenticationError):
    """A Streamable HTTP server refused the credentials (401) or their scope (403).

    Attributes:
        status_code: 401 or 403.
        error: The ``error`` of ``WWW-Authenticate`` (``invalid_token``,
            ``insufficient_scope`` ...), if given.
        resource_metadata: The Protected Resource Metadata URL the server
            named (``resource_metadata``), if any.
        scope: The scope the server asked for, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error: str | None = None,
        resource_metadata: str | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.resource_metadata = resource_metadata
        self.scope = scope


class Transport(Protocol):
    """What the session needs from a transport (stdio, Streamable HTTP).

    The transport hands every message it receives to
    :meth:`MCPSession.handle_message`, and a failure that ends it for good to
    :meth:`MCPSession.transport_failed`.
    """

    session_id: str | None

    async def start(self, session: MCPSession) -> None:
        """Open the connection (start the process)."""

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message.

        Raises:
            SessionExpiredError: The server forgot the session (HTTP only).
        """

    def initialized(self, protocol_version: str) -> None:
        """The handshake is done: later messages carry the negotiated version."""

    def abandon(self, request_id: jsonrpc.RequestId) -> None:
        """The caller stopped waiting for ``request_id`` (release what is tied to it)."""

    async def close(self) -> None:
        """Close the connection (end the process, delete the session)."""


class _Call:
    """One outstanding request."""

    __slots__ = ("future", "method", "on_progress")

    def __init__(
        self, future: asyncio.Future[Any], method: str, on_progress: ProgressHandler | None
    ) -> None:
        self.future = future
        self.method = method
        self.on_progress = on_progress


def apply_elicitation_defaults(result: Mapping[str, Any], requested_schema: Any) -> dict[str, Any]:
    """Give an accepted elicitation answer the schema's default for each omitted field.

    Args:
        result: The handler's answer (``action``, ``content``).
        requested_schema: The ``requestedSchema`` of the request.

    Returns:
        The answer, with ``content`` completed when ``action`` is ``accept``.
    """
    answer = dict(result)
    if answer.get("action") != "accept" or not isinstance(requested_schema, Mapping):
        return answer
    properties = requested_schema.get("properties")
    if not isinstance(properties, Mapping):
        return answer
    content = dict(answer.get("content") or {})
    for name, schema in properties.items():
        if name not in content and isinstance(schema, Mapping) and "default" in schema:
            content[name] = schema["default"]
    answer["content"] = content
    return answer


class MCPSession:
    """The client side of one MCP session over a :class:`Transport`.

    Args:
        transport: The transport carrying the messages.
        client_info: ``clientInfo`` sent in ``initialize`` (``name``, ``version``).
        protocol_version: The revision asked for first.
        timeout: Default seconds to wait for a reply (None: no limit).
        sampling_handler: Answers ``sampling/createMessage``.
        elicitation_handler: Answers ``elicitation/create`` in form mode.
        url_elicitation_handler: Answers ``elicitation/create`` in URL mode
            (see :mod:`.url_elicitation`).
        roots: What ``roots/list`` answers (None: the capability is not declared).
        max_queued_events: Events waiting for their handlers beyond which
            new ones are dropped (counted in ``dropped_events`` and logged);
            also the most server requests handled at once (more are answered
            with an error at once).
        logger: Where problems are logged.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        client_info: Mapping[str, Any],
        protocol_version: str = LATEST_PROTOCOL_VERSION,
        timeout: float | None = 60.0,
        sampling_handler: SamplingHandler | None = None,
        elicitation_handler: ElicitationHandler | None = None,
        url_elicitation_handler: URLElicitationHandler | None = None,
        roots: Sequence[Mapping[str, Any]] | None = None,
        max_queued_events: int = 1024,
        logger: logging.Logger = _logger,
    ) -> None:
        self._transport = transport
        self._client_info = dict(client_info)
        self._asked_version = protocol_version
        self.timeout = timeout
        self._sampling = sampling_handler
        self._elicitation = elicitation_handler
        self._url_elicitation = url_elicitation_handler
        self.roots: list[dict[str, Any]] | None = (
            None if roots is None else [dict(root) for root in roots]
        )
        self.logger = logger
        self.events = EventEmitter(EVENTS, logger)
        self._ids = itertools.count(1)
        self._calls: dict[jsonrpc.RequestId, _Call] = {}
        self._served: dict[Any, asyncio.Task[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(max_queued_events)
        self._max_served = max_queued_events
        self._dispatcher: asyncio.Task[None] | None = None
        self._failure: errors.CommunicationError | None = None
        self._generation = 0
        self._reinit_lock = asyncio.Lock()
        self.dropped_events = 0
        self.late_replies = 0
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] = {}
        self.server_capabilities: dict[str, Any] = {}
        self.instructions: str | None = None
        self._otel: Instrumentation = DISABLED

    # -- lifecycle -------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """The client capabilities declared in ``initialize`` (from the configured handlers)."""
        caps: dict[str, Any] = {}
        if self.roots is not None:
            caps["roots"] = {"listChanged": True}
        if self._sampling is not None:
            caps["sampling"] = {}
        elicitation: dict[str, Any] = {}
        if self._elicitation is not None:
            elicitation["form"] = {}
        if self._url_elicitation is not None:
            elicitation["url"] = {}
        if elicitation:
            caps["elicitation"] = elicitation
        return caps

    async def start(self) -> None:
        """Open the transport and run the ``initialize`` handshake.

        Raises:
            ProtocolError: The server chose a revision this client does not speak.
            TimeoutError: No answer to ``initialize`` in time.
        """
        self._dispatcher = asyncio.get_running_loop().create_task(
            self._dispatch_loop(), name="MCPClient:dispatch"
        )
        # Telemetry follows the config of the transport's client (tracer_provider= ...).
        inner = getattr(self._transport, "client", None) or getattr(self._transport, "http", None)
        self._otel = instrumentation_for(getattr(inner, "config", None), "mcp")
        await self._transport.start(self)
        await self._handshake()

    async def _handshake(self) -> None:
        params = {
            "protocolVersion": self._asked_version,
            "capabilities": self.capabilities(),
            "clientInfo": self._client_info,
        }
        result = await self._request("initialize", params, timeout=self.timeout)
        if not isinstance(result, dict):
            raise errors.ProtocolError(f"initialize: the result is not an object: {result!r:.200}")
        version = result.get("protocolVersion")
        if version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise errors.ProtocolError(
                f"initialize: the server speaks MCP {version!r}; this client speaks "
                f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}"
            )
        self.protocol_version = version
        server_info = result.get("serverInfo")
        self.server_info = server_info if isinstance(server_info, dict) else {}
        capabilities = result.get("capabilities")
        self.server_capabilities = capabilities if isinstance(capabilities, dict) else {}
        instructions = result.get("instructions")
        self.instructions = instructions if isinstance(instructions, str) else None
        self._transport.initialized(version)
        await self._transport.send(jsonrpc.notification("notifications/initialized"))
        self._generation += 1

    async def close(self) -> None:
        """Fail what still waits, stop the handlers, close the transport."""
        self._fail_all(errors.ClosedError("MCPClient was closed"))
        tasks = [*self._tasks, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        try:
            await self._transport.close()
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- outgoing --------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | bool | None = True,
        on_progress: ProgressHandler | None = None,
    ) -> Any:
        """Send a request and return its result.

        A request the server forgot the session of (HTTP 404) is sent again
        once, on a new session started transparently.

        Args:
            method: The method name.
            params: The params object.
            timeout: Seconds to wait; None waits forever; True (default) uses
                the session's default.
            on_progress: Called with each ``notifications/progress`` params
                of this request (a progress token is sent with it).

        Returns:
            The ``result`` member of the reply.

        Raises:
            RemoteError: The server answered with an error (``remote_code``
                is the JSON-RPC code).
            TimeoutError: No reply in time (``notifications/cancelled`` sent).
            ConnectionError: The transport failed (``ProcessExitedError``
                for a stdio server that exited).
        """
        seconds = self.timeout if timeout is True else timeout
        # One body with telemetry on or off: no coroutine frame of its own per request.
        with _RequestTelemetry(self, method, params) if self._otel.enabled else NO_TELEMETRY:
            generation = self._generation
            try:
                return await self._request(method, params, timeout=seconds, on_progress=on_progress)
            except SessionExpiredError:
                await self._reinitialize(generation)
                return await self._request(method, params, timeout=seconds, on_progress=on_progress)

    async def _reinitialize(self, generation: int) -> None:
        """Start a new session, once for every request that saw the old one expire."""
        async with self._reinit_lock:
            if self._generation != generation:
                return  # another request already did
            self.logger.info("the server lost MCP session; starting a new one")
            await self._handshake()

    async def _request(
        self,
        method: str,
        params: dict[str, Any] | None,
        *,
        timeout: float | bool | None,
        on_progress: ProgressHandler | None = None,
    ) -> Any:
        if self._failure is not None:
            raise self._failure
        request_id = next(self._ids)
        if on_progress is not None:
            params = dict(params or {})
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = request_id
            params["_meta"] = meta
        if self._otel.tracing:  # the request's span is the current one
            params = self._otel.inject_meta(params)
            self._otel.annotate("jsonrpc.request.id", str(request_id))
        message = jsonrpc.request(method, params, id=request_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[request_id] = _Call(future, method, on_progress)
        seconds = None if timeout is True or timeout is False else timeout
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                await self._transport.send(message)
                return await future
        except builtins.TimeoutError as exc:
            if not scope.expired():
                raise  # a transport's own timeout (connecting ...), not this deadline
            if future.done() and not future.cancelled() and future.exception() is None:
                return future.result()
            self._cancel_remote(request_id, method, f"timed out after {seconds:g}s")
            raise errors.TimeoutError(f"{method}: no reply within {seconds:g}s") from exc
        except asyncio.CancelledError:
            self._cancel_remote(request_id, method, "cancelled by the client")
            raise
        finally:
            self._calls.pop(request_id, None)
            if not future.done() or future.cancelled():
                # Timed out or cancelled: release what the transport ties to it.
                self._transport.abandon(request_id)

    def _cancel_remote(self, request_id: int, method: str, reason: str) -> None:
        """Tell the server to stop working on a request (never for initialize)."""
        if method == "initialize" or request_id not in self._calls or self._failure is not None:
            return
        self._spawn(
            self._send_quietly(
                jsonrpc.notification(
                    "notifications/cancelled", {"requestId": request_id, "reason": reason}
                )
            ),
            "cancel",
        )

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(_CANCEL_SEND_TIMEOUT):
                await self._transport.send(message)
        except (errors.CommunicationError, builtins.TimeoutError) as exc:
            self.logger.debug("could not send %s: %s", message.get("method", "a reply"), exc)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification.

        Args:
            method: The method name.
            params: The params object.
        """
        if self._failure is not None:
            raise self._failure
        message = jsonrpc.notification(method, params)
        generation = self._generation
        try:
            await self._transport.send(message)
        except SessionExpiredError:
            await self._reinitialize(generation)
            await self._transport.send(message)

    # -- incoming --------------------------------------------------------------------

    def handle_message(self, message: Any) -> None:
        """Take one message from the transport (responses resolve at once).

        Args:
            message: A decoded JSON-RPC message (or a batch: a list of them).
        """
        if isinstance(message, list):
            for item in message:
                self.handle_message(item)
            return
        kind = jsonrpc.classify(message)
        if kind is jsonrpc.MessageKind.RESPONSE or kind is jsonrpc.MessageKind.ERROR:
            call = self._calls.get(message["id"]) if _hashable(message["id"]) else None
            if call is None or call.future.done():
                self.late_replies += 1
                self.logger.debug("dropped a reply nobody waits for (id %r)", message["id"])
                return
            if kind is jsonrpc.MessageKind.RESPONSE:
                call.future.set_result(message["result"])
            else:
                error = jsonrpc.remote_error(message, method=call.method)
                if error.remote_code == URL_ELICITATION_REQUIRED:
                    error = URLElicitationRequiredError.from_remote(error)
                call.future.set_exception(error)
            return
        if kind is jsonrpc.MessageKind.NOTIFICATION:
            self._on_notification(message)
        elif kind is jsonrpc.MessageKind.REQUEST:
            if not _hashable(message["id"]):
                self.logger.warning("server request with an invalid id dropped")
                return
            if len(self._served) >= self._max_served:
                self.dropped_events += 1
                self.logger.warning(
                    "%d server requests in progress; refused one", len(self._served)
                )
                busy = jsonrpc.error_response(
                    message["id"], jsonrpc.INTERNAL_ERROR, "client busy: too many requests at once"
                )
                self._spawn(self._send_quietly(busy), "busy")
                return
            self._served[message["id"]] = self._spawn(self._answer(message), "answer")
        else:
            self.logger.warning("dropped a message that is not JSON-RPC: %.200r", message)
            self.report(errors.ProtocolError(f"not a JSON-RPC message: {message!r:.200}"))

    def fail_request(self, request_id: Any, exc: errors.CommunicationError) -> None:
        """Fail one outstanding request (its HTTP exchange failed).

        Args:
            request_id: The id of the request.
            exc: The error its caller gets.
        """
        call = self._calls.get(request_id)
        if call is not None and not call.future.done():
            call.future.set_exception(exc)

    def transport_failed(self, exc: errors.CommunicationError) -> None:
        """The transport is gone for good: every pending and later request fails with ``exc``.

        Args:
            exc: The error (``ProcessExitedError`` for an exited stdio server).
        """
        if self._failure is None:
            self._failure = exc
        self._fail_all(exc)

    def _fail_all(self, exc: errors.CommunicationError) -> None:
        for call in list(self._calls.values()):
            if not call.future.done():
                call.future.set_exception(exc)

    def _on_notification(self, message: dict[str, Any]) -> None:
        method = message["method"]
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "notifications/progress":
            call = self._calls.get(params.get("progressToken"))  # type: ignore[arg-type]
            if call is not None and call.on_progress is not None:
                self._enqueue("on_progress", (call.on_progress, params))
        elif method == "notifications/cancelled":
            task = self._served.get(params.get("requestId"))
            if task is not None:
                task.cancel()
        named = _NAMED_EVENTS.get(method)
        if named is not None and self.events.has(named):
            self._enqueue(named, params)
        if self.events.has("notification"):
            self._enqueue("notification", message)

    def _enqueue(self, event: str, arg: Any) -> None:
        try:
            self._queue.put_nowait((event, arg))
        except asyncio.QueueFull:
            self.dropped_events += 1
            self.logger.warning(
                "%d events wait for their handlers; dropped a %r event", self._queue.qsize(), event
            )

    async def _dispatch_loop(self) -> None:
        """Run the event handlers in order, away from the readers."""
        queue = self._queue
        while True:
            event, arg = await queue.get()
            if event == "on_progress":
                handler, params = arg
                try:
                    result = handler(params)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self.logger.exception("on_progress handler raised")
                    self.report(exc)
            else:
                await self.events.emit(event, arg)

    def report(self, exc: Exception) -> None:
        """Put a problem on the ``error`` event (a skipped message, a failing handler).

        Args:
            exc: What went wrong.
        """
        if self.events.has("error"):
            self._enqueue("error", exc)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"MCPClient:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _answer(self, message: dict[str, Any]) -> None:
        request_id = message["id"]
        method = message["method"]
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        reply: dict[str, Any]
        try:
            if self._otel.tracing:  # the server's trace continues here (params._meta)
                with self._otel.span(
                    method, "server", {"mcp.method.name": method}, context=extract_meta(params)
                ):
                    result = await self._serve(method, params)
            else:
                result = await self._serve(method, params)
            reply = jsonrpc.response(request_id, result)
        except errors.RemoteError as exc:
            code = exc.remote_code if isinstance(exc.remote_code, int) else jsonrpc.INTERNAL_ERROR
            reply = jsonrpc.error_response(request_id, code, exc.message, exc.data)
        except asyncio.CancelledError:
            # The server cancelled its request (or we are closing): no answer, per the spec.
            self._served.pop(request_id, None)
            raise
        except Exception as exc:
            self.logger.exception("handler for the server's %r raised", method)
            self.report(exc)
            reply = jsonrpc.error_response(
                request_id, jsonrpc.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"
            )
        self._served.pop(request_id, None)
        await self._send_quietly(reply)

    async def _serve(self, method: str, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "roots/list" and self.roots is not None:
            return {"roots": self.roots}
        if method == "sampling/createMessage" and self._sampling is not None:
            return dict(await _maybe_await(self._sampling(params)))
        if method == "elicitation/create":
            if params.get("mode") == "url":
                if self._url_elicitation is None:
                    raise errors.RemoteError(
                        "URL-mode elicitation is not supported by this client",
                        remote_code=jsonrpc.INVALID_PARAMS,
                    )
                return await answer_url_elicitation(self._url_elicitation, params, self.logger)
            if self._elicitation is not None:
                answer = await _maybe_await(self._elicitation(params))
                return apply_elicitation_defaults(answer, params.get("requestedSchema"))
        raise errors.RemoteError(
            f"Method not found: {method}", remote_code=jsonrpc.METHOD_NOT_FOUND
        )


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _hashable(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


class _RequestTelemetry(OperationTelemetry):
    """A request's MCP CLIENT span (``tools/call <tool>``) and duration, for a ``with`` block."""

    __slots__ = ("_attributes", "_started")

    def __init__(self, session: MCPSession, method: str, params: dict[str, Any] | None) -> None:
        otel = session._otel
        self._started = monotonic()
        attributes: dict[str, Any] = {
            "mcp.method.name": method,
            "network.transport": "tcp" if hasattr(session._transport, "http") else "pipe",
        }
        if session.protocol_version:
            attributes["mcp.protocol.version"] = session.protocol_version
        session_id = getattr(session._transport, "session_id", None)
        if session_id:
            attributes["mcp.session.id"] = session_id
        name = method
        target = (params or {}).get("name")
        if method == "tools/call" and isinstance(target, str):
            attributes["gen_ai.tool.name"] = target
            attributes["gen_ai.operation.name"] = "execute_tool"
            name = f"{method} {target}"
        elif method == "prompts/get" and isinstance(target, str):
            attributes["gen_ai.prompt.name"] = target
            name = f"{method} {target}"
        elif method.startswith("resources/") and isinstance((params or {}).get("uri"), str):
            attributes["mcp.resource.uri"] = redact_url((params or {})["uri"])
        self._attributes = attributes
        super().__init__(otel, otel.span(name, "client", attributes) if otel.tracing else None)

    def finish(self, exc: BaseException | None) -> None:
        """Record ``mcp.client.operation.duration``."""
        self.measure("mcp.client.operation.duration", self._started, self._attributes, exc)
