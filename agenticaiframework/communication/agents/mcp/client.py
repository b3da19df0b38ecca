"""MCPClient: the Model Context Protocol client, over stdio or Streamable HTTP.

::

    async with MCPClient("https://mcp.example.com/mcp") as mcp:      # Streamable HTTP
        tools = await mcp.list_tools()
    async with MCPClient(command=["python", "server.py"]) as mcp:    # stdio
        result = await mcp.call_tool("add", {"a": 1, "b": 2})

Results are the specification's JSON objects, as dicts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ...core import errors
from ...core.events import Handler
from ...core.health import HealthStatus, run_probe
from ...core.lifecycle import BaseClient, ClientState
from ...core.security import check_url, redact_url
from .auth import MCPOAuth
from .session import (
    LATEST_PROTOCOL_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
    ElicitationHandler,
    MCPSession,
    ProgressHandler,
    SamplingHandler,
    Transport,
)
from .stdio import StdioTransport
from .streamable_http import StreamableHTTPTransport
from .tasks import check_task, server_runs_tool_tasks, task_field
from .url_elicitation import URLElicitationHandler

__all__ = ["LOG_LEVELS", "MCPClient"]

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_HTTP_SCHEMES = frozenset({"http", "https"})
# How long giving up on a task's result may spend asking the server to cancel it.
_CANCEL_GRACE = 5.0


def _client_info() -> dict[str, str]:
    from ... import __version__

    return {"name": "agenticaiframework-communication", "version": __version__}


class MCPClient(BaseClient):
    """A client of one MCP server, over stdio (``command=``) or Streamable HTTP (a URL).

    Args:
        url: The MCP endpoint of a Streamable HTTP server.
        command: The program (and arguments) of a stdio server, instead of ``url``.
        timeout: Default seconds to wait for each reply (None: no limit).
        sampling_handler: Answers the server's ``sampling/createMessage``
            (params dict in, ``CreateMessageResult`` dict out; may be async).
        elicitation_handler: Answers ``elicitation/create`` (params in,
            ``{"action": ..., "content": ...}`` out); an accepted answer gets
            the schema's ``default`` for every field it leaves out.
        url_elicitation_handler: Answers URL-mode ``elicitation/create``
            (params with ``url``, ``message``, ``elicitationId`` in,
            ``{"action": "accept" | "decline" | "cancel"}`` out; may be async):
            show the message and URL to the user, who opens it or not. A URL
            that is not ``https`` (or ``http`` to this machine) is declined
            without calling it.
        roots: What ``roots/list`` answers (``[{"uri": "file:///..."}]``).
        client_info: ``clientInfo`` for ``initialize``.
        protocol_version: The revision asked for first (the server may choose
            an older one of :data:`SUPPORTED_PROTOCOL_VERSIONS`).
        max_queued_events: Events waiting for slow handlers beyond which new
            ones are dropped (counted in :attr:`dropped_events`).
        **options: Transport settings: :class:`HTTPConfig` fields for a URL
            (``headers``, ``auth``, ``allow_insecure``, ``verify_ssl`` ...,
            plus ``max_message_size`` and ``legacy_fallback``, see
            :class:`StreamableHTTPTransport`), :class:`STDIOConfig` fields for a
            command (``env``, ``working_dir``, ``terminate_timeout`` ...).

    Raises:
        ConfigError: Neither or both of ``url`` and ``command``; a bad option.
        SecurityError: The URL breaks the security policy (plain HTTP to a
            non-loopback host, another scheme).
    """

    _protocol = "mcp"

    def __init__(
        self,
        url: str | None = None,
        *,
        command: Sequence[str] | None = None,
        timeout: float | None = 60.0,
        sampling_handler: SamplingHandler | None = None,
        elicitation_handler: ElicitationHandler | None = None,
        url_elicitation_handler: URLElicitationHandler | None = None,
        roots: Sequence[Mapping[str, Any]] | None = None,
        client_info: Mapping[str, Any] | None = None,
        protocol_version: str = LATEST_PROTOCOL_VERSION,
        max_queued_events: int = 1024,
        **options: Any,
    ) -> None:
        super().__init__()
        if (url is None) == (command is None):
            raise errors.ConfigError("MCPClient: give either url= or command=, not both or neither")
        if protocol_version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise errors.ConfigError(
                f"protocol_version: {protocol_version!r} is not one of "
                f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}"
            )
        if timeout is not None and (isinstance(timeout, bool) or timeout <= 0):
            raise errors.ConfigError(f"timeout: must be a positive number or None, got {timeout!r}")
        if isinstance(max_queued_events, bool) or max_queued_events < 1:
            raise errors.ConfigError(f"max_queued_events: must be >= 1, got {max_queued_events!r}")
        for name, handler in (
            ("sampling_handler", sampling_handler),
            ("elicitation_handler", elicitation_handler),
            ("url_elicitation_handler", url_elicitation_handler),
        ):
            if handler is not None and not callable(handler):
                raise errors.ConfigError(f"{name}: must be callable, got {handler!r}")
        if roots is not None:
            roots = list(roots)
            for root in roots:
                if not isinstance(root, Mapping) or not isinstance(root.get("uri"), str):
                    raise errors.ConfigError(
                        f"roots: each root must be a dict with a 'uri' string, got {root!r}"
                    )
        transport: Transport
        if url is not None:
            if not isinstance(url, str):
                raise errors.ConfigError(f"url: must be a str, got {type(url).__name__}")
            check_url(
                url, allow_insecure=bool(options.get("allow_insecure")), schemes=_HTTP_SCHEMES
            )
            self._target = redact_url(url)
            # MCP authorization: tie the flow to this server.
            if isinstance(options.get("auth"), MCPOAuth):
                options["auth"].bind(
                    url,
                    allow_insecure=bool(options.get("allow_insecure")),
                    verify=options.get("ca_certs") or options.get("verify_ssl", True),
                )
            transport = StreamableHTTPTransport(url, logger=self.logger, **options)
        else:
            assert command is not None
            if isinstance(command, str):
                raise errors.ConfigError(
                    "command: give a list, e.g. ['python', 'server.py'], not a string"
                )
            if not command:
                raise errors.ConfigError(
                    "command: give the program to run, e.g. ['python', 'x.py']"
                )
            # Only the program's name: arguments may hold secrets (--token=...).
            self._target = os.path.basename(str(command[0]))
            transport = StdioTransport(command, **options)
        self._transport = transport
        # The listed tools whose execution.taskSupport is "required": they run as tasks.
        self._task_only: frozenset[str] = frozenset()
        self._session = MCPSession(
            transport,
            client_info=client_info or _client_info(),
            protocol_version=protocol_version,
            timeout=timeout,
            sampling_handler=sampling_handler,
            elicitation_handler=elicitation_handler,
            url_elicitation_handler=url_elicitation_handler,
            roots=roots,
            max_queued_events=max_queued_events,
            logger=self.logger,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def _open(self) -> None:
        try:
            await self._session.start()
        except BaseException:
            await self._session.close()
            raise

    async def _close(self) -> None:
        await self._session.close()

    # -- properties ------------------------------------------------------------------

    @property
    def protocol_version(self) -> str | None:
        """The revision negotiated in ``initialize``."""
        return self._session.protocol_version

    @property
    def server_info(self) -> dict[str, Any]:
        """The server's ``serverInfo`` (``name``, ``version`` ...)."""
        return self._session.server_info

    @property
    def server_capabilities(self) -> dict[str, Any]:
        """The server's ``capabilities``."""
        return self._session.server_capabilities

    @property
    def instructions(self) -> str | None:
        """The server's ``instructions``, if it gave any."""
        return self._session.instructions

    @property
    def session_id(self) -> str | None:
        """The ``MCP-Session-Id`` (Streamable HTTP with a stateful server), else None."""
        return self._transport.session_id

    @property
    def roots(self) -> list[dict[str, Any]] | None:
        """The roots ``roots/list`` answers with."""
        return self._session.roots

    @property
    def dropped_events(self) -> int:
        """Events dropped because handlers were too slow (see ``max_queued_events``)."""
        return self._session.dropped_events

    @property
    def failure(self) -> errors.CommunicationError | None:
        """The error every request raises once the connection is gone for good, else None.

        ``ProcessExitedError`` for a stdio server that exited.
        """
        return self._session._failure

    # -- events ----------------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler; usable as a decorator (``@mcp.on("log")``).

        Events: ``notification`` (every notification, the message dict),
        ``log`` (``notifications/message`` params), ``progress``,
        ``tools_list_changed``, ``resources_list_changed``,
        ``prompts_list_changed``, ``resource_updated`` (the params dict),
        ``task_status`` (a task's new state, as ``get_task`` returns it),
        ``elicitation_complete`` (``notifications/elicitation/complete``
        params: ``elicitationId``), and ``error`` (a handler that raised, a
        message that is not JSON-RPC).
        Handlers run in order in one task, never on the reader.

        Args:
            event: The event name.
            handler: Sync or async callable; omit it to use ``on`` as a decorator.

        Returns:
            The handler (decorator form).

        Raises:
            ValueError: Unknown event or handler not callable.
        """
        return self._session.events.on(event, handler)

    # -- requests --------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | bool | None = True,
        on_progress: ProgressHandler | None = None,
    ) -> Any:
        """Send any MCP request and return its result.

        Args:
            method: The method, e.g. ``"tools/list"``.
            params: Its params object.
            timeout: Seconds to wait (None: forever; default: the client's).
            on_progress: Called with the params of each progress notification.

        Returns:
            The result object.

        Raises:
            RemoteError: The server answered with an error (``remote_code``
                keeps the JSON-RPC code).
            TimeoutError: No reply in time; ``notifications/cancelled`` was sent.
            ProcessExitedError: The stdio server exited.
            ConnectionError: The server cannot be reached.
            ClosedError: The client was closed.
        """
        await self._ready()
        return await self._session.request(method, params, timeout=timeout, on_progress=on_progress)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send any MCP notification.

        Args:
            method: The method, e.g. ``"notifications/roots/list_changed"``.
            params: Its params object.
        """
        await self._ready()
        await self._session.notify(method, params)

    async def _ready(self) -> None:
        self._ensure_usable()
        if self._state is not ClientState.OPEN:
            await self.connect()

    async def _paginate(self, method: str, key: str, cursor: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            result = await self.request(method, {"cursor": cursor} if cursor else None)
            page = result.get(key) if isinstance(result, dict) else None
            if not isinstance(page, list):
                raise errors.ProtocolError(f"{method}: the result has no {key!r} list")
            items.extend(page)
            cursor = result.get("nextCursor")
            if not cursor:
                return items
            if not isinstance(cursor, str) or cursor in seen:
                raise errors.ProtocolError(
                    f"{method}: the server sent the cursor {cursor!r} again (or not a string)"
                )
            seen.add(cursor)

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool of the server (all pages).

        Returns:
            The ``Tool`` objects.
        """
        tools = await self._paginate("tools/list", "tools", None)
        self._task_only = frozenset(
            tool["name"]
            for tool in tools
            if isinstance(tool, dict)
            and isinstance(tool.get("execution"), dict)
            and tool["execution"].get("taskSupport") == "required"
            and isinstance(tool.get("name"), str)
        )
        return tools

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float | bool | None = True,
        on_progress: ProgressHandler | None = None,
        task: bool | None = None,
        task_ttl: float | None = None,
    ) -> dict[str, Any]:
        """Call a tool.

        A tool that fails answers with ``isError: true`` in the result (not
        an exception); a protocol error (unknown tool ...) raises RemoteError.

        Args:
            name: The tool name.
            arguments: Its arguments.
            timeout: Seconds to wait (default: the client's); on expiry
                ``notifications/cancelled`` is sent and TimeoutError raised.
                For a task: seconds to wait for its result, after which the
                task is cancelled (``tasks/cancel``) and TimeoutError raised.
            on_progress: Called with each ``notifications/progress`` params
                (a direct call's; a task reports its state in ``get_task``).
            task: Run the call as an MCP task (the server answers at once
                with a task; its result is fetched with ``tasks/result``
                when it is done). Default: only for a tool that
                :meth:`list_tools` listed with ``execution.taskSupport``
                ``"required"``.
            task_ttl: Seconds the server should keep the task and its result
                (default: the server's).

        Returns:
            The ``CallToolResult`` (``content``, ``structuredContent``, ``isError``).

        Raises:
            ConfigError: ``task=True`` with a server that does not run tools as tasks.
        """
        if task is None:
            task = name in self._task_only
        if task:
            return await self._call_tool_as_task(name, arguments, timeout, task_ttl)
        params = {"name": name, "arguments": dict(arguments or {})}
        result: dict[str, Any] = await self.request(
            "tools/call", params, timeout=timeout, on_progress=on_progress
        )
        return result

    async def _call_tool_as_task(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        timeout: float | bool | None,
        ttl: float | None,
    ) -> dict[str, Any]:
        started = await self.start_tool_task(name, arguments, ttl=ttl, timeout=timeout)
        task_id = started["taskId"]
        try:
            return await self.task_result(task_id, timeout=timeout)
        except (errors.TimeoutError, asyncio.CancelledError):
            # The caller gave up on the result: the work stops too (tasks/cancel,
            # not notifications/cancelled, is how a task is stopped).
            try:
                await self.cancel_task(task_id, timeout=_CANCEL_GRACE)
            except errors.CommunicationError as exc:
                self.logger.info("tasks/cancel of %r failed: %s", task_id[:64], exc.message)
            raise

    # -- tasks -----------------------------------------------------------------------

    async def start_tool_task(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        ttl: float | None = None,
        timeout: float | bool | None = True,
    ) -> dict[str, Any]:
        """Start a tool call as an MCP task and return the task at once.

        Args:
            name: The tool name.
            arguments: Its arguments.
            ttl: Seconds the server should keep the task and its result.
            timeout: Seconds to wait for the server to create the task.

        Returns:
            The task: ``taskId``, ``status`` (``working`` ...), and as the
            server gives them ``statusMessage``, ``pollInterval`` (ms),
            ``ttl`` (ms), ``createdAt``.

        Raises:
            ConfigError: The server does not run ``tools/call`` as a task
                (no ``tasks.requests.tools.call`` capability).
            ProtocolError: The answer holds no task.
        """
        field = task_field(ttl)
        await self._ready()
        if not server_runs_tool_tasks(self.server_capabilities):
            raise errors.ConfigError(
                f"task: the MCP server {self._target} does not run tools/call as a task "
                "(no tasks.requests.tools.call capability)"
            )
        params = {"name": name, "arguments": dict(arguments or {}), "task": field}
        result = await self.request("tools/call", params, timeout=timeout)
        what = f"tools/call {name[:64]!r} as a task"
        return check_task(result.get("task") if isinstance(result, dict) else None, what)

    async def get_task(
        self, task_id: str, *, timeout: float | bool | None = True
    ) -> dict[str, Any]:
        """A task's current state (``tasks/get``).

        Returns:
            The task (``status``, ``statusMessage`` ...).
        """
        result = await self.request("tasks/get", {"taskId": _task_id(task_id)}, timeout=timeout)
        return check_task(result, "tasks/get")

    async def task_result(
        self, task_id: str, *, timeout: float | bool | None = True
    ) -> dict[str, Any]:
        """Wait until a task is done and return its request's result (``tasks/result``).

        Requests the server sends meanwhile (an ``input_required`` task's
        elicitation, say) go to the client's handlers.

        Args:
            task_id: The task.
            timeout: Seconds to wait (default: the client's; None: no limit).

        Returns:
            The result of the request the task ran (a ``CallToolResult``).

        Raises:
            RemoteError: The server answered with an error (an unknown task,
                or the error the task's request ended with).
        """
        result = await self.request("tasks/result", {"taskId": _task_id(task_id)}, timeout=timeout)
        if not isinstance(result, dict):
            raise errors.ProtocolError(
                f"tasks/result: expected an object, got {type(result).__name__}"
            )
        return result

    async def cancel_task(
        self, task_id: str, *, timeout: float | bool | None = True
    ) -> dict[str, Any]:
        """Ask the server to stop a task (``tasks/cancel``).

        Returns:
            The task as the server left it (``status`` ``cancelled``).
        """
        result = await self.request("tasks/cancel", {"taskId": _task_id(task_id)}, timeout=timeout)
        return check_task(result, "tasks/cancel")

    async def list_tasks(self) -> list[dict[str, Any]]:
        """Every task the server keeps for this client (all pages of ``tasks/list``)."""
        return [
            check_task(task, "tasks/list")
            for task in await self._paginate("tasks/list", "tasks", None)
        ]

    async def list_resources(self) -> list[dict[str, Any]]:
        """Every resource of the server (all pages)."""
        return await self._paginate("resources/list", "resources", None)

    async def list_resource_templates(self) -> list[dict[str, Any]]:
        """Every resource template of the server (all pages)."""
        return await self._paginate("resources/templates/list", "resourceTemplates", None)

    async def read_resource(self, uri: str) -> dict[str, Any]:
        """Read a resource.

        Args:
            uri: Its URI.

        Returns:
            The ``ReadResourceResult`` (``contents``).
        """
        result: dict[str, Any] = await self.request("resources/read", {"uri": uri})
        return result

    async def subscribe_resource(self, uri: str) -> None:
        """Ask for ``resource_updated`` events of a resource.

        Args:
            uri: Its URI.
        """
        await self.request("resources/subscribe", {"uri": uri})

    async def unsubscribe_resource(self, uri: str) -> None:
        """Stop the ``resource_updated`` events of a resource.

        Args:
            uri: Its URI.
        """
        await self.request("resources/unsubscribe", {"uri": uri})

    async def list_prompts(self) -> list[dict[str, Any]]:
        """Every prompt of the server (all pages)."""
        return await self._paginate("prompts/list", "prompts", None)

    async def get_prompt(
        self, name: str, arguments: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Get a prompt.

        Args:
            name: The prompt name.
            arguments: Its arguments (strings).

        Returns:
            The ``GetPromptResult`` (``messages``, ``description``).
        """
        params: dict[str, Any] = {"name": name}
        if arguments:
            params["arguments"] = dict(arguments)
        result: dict[str, Any] = await self.request("prompts/get", params)
        return result

    async def complete(
        self,
        ref: Mapping[str, Any],
        argument: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask for completions of an argument.

        Args:
            ref: ``{"type": "ref/prompt", "name": ...}`` or
                ``{"type": "ref/resource", "uri": ...}``.
            argument: ``{"name": ..., "value": ...}``.
            context: ``{"arguments": {...}}`` already resolved, if any.

        Returns:
            The ``completion`` object (``values``, ``total``, ``hasMore``).
        """
        params: dict[str, Any] = {"ref": dict(ref), "argument": dict(argument)}
        if context is not None:
            params["context"] = dict(context)
        result = await self.request("completion/complete", params)
        completion = result.get("completion") if isinstance(result, dict) else None
        if not isinstance(completion, dict):
            raise errors.ProtocolError("completion/complete: the result has no 'completion'")
        return completion

    async def set_logging_level(self, level: str) -> None:
        """Set the least severe level of the server's ``log`` events.

        Args:
            level: One of :data:`LOG_LEVELS`.

        Raises:
            ConfigError: Not a level of the specification.
        """
        if level not in LOG_LEVELS:
            raise errors.ConfigError(f"level: {level!r} is not one of {', '.join(LOG_LEVELS)}")
        await self.request("logging/setLevel", {"level": level})

    async def ping(self) -> None:
        """Check that the server answers."""
        await self.request("ping")

    async def set_roots(self, roots: Sequence[Mapping[str, Any]]) -> None:
        """Change the roots and tell the server (``notifications/roots/list_changed``).

        Args:
            roots: The new roots (``[{"uri": "file:///..."}]``).
        """
        self._session.roots = [dict(root) for root in roots]
        await self.notify("notifications/roots/list_changed")

    async def health_check(self, *, timeout: float = 5.0) -> HealthStatus:
        """Check that the server answers ``ping`` (the client must be open).

        Args:
            timeout: Seconds the probe may take.

        Returns:
            The verdict with its latency; never raises.
        """

        async def probe() -> str:
            if self._state is not ClientState.OPEN:
                raise errors.ConnectionError(f"client is {self._state.value}")
            await self._session.request("ping", timeout=timeout)
            return f"MCP {self._target}: ping answered"

        return await run_probe(probe, timeout=timeout, what=f"MCP {self._target}")

    def __repr__(self) -> str:
        return (
            f"<MCPClient {self._target!r} protocol={self.protocol_version} "
            f"state={self.state.value}>"
        )


def _task_id(task_id: Any) -> str:
    if not isinstance(task_id, str) or not task_id:
        shown = "an empty string" if task_id == "" else type(task_id).__name__
        raise errors.ConfigError(f"task_id: must be a non-empty string, got {shown}")
    return task_id
