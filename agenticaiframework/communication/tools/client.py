"""ToolClient: one tool registry over HTTP, SSE, WebSocket, MCP and gRPC.

::

    async with ToolClient(variables={"weather_API_KEY": "..."}) as tools:
        result = await tools.register_manual(
            {"name": "weather", "call_template_type": "http",
             "url": "https://api.example.com/utcp"}
        )
        print([t.name for t in tools.search_tools("forecast")])
        forecast = await tools.call_tool("weather.get_forecast", {"city": "Oslo"})
        async for chunk in tools.call_tool_streaming("weather.live", {"city": "Oslo"}):
            ...

Security (UTCP's rules, secure by default): every manual and tool URL passes
the shared policy (https/wss, or plain text to loopback only, unless
``allow_insecure=True``); a manual registers only tools of its own call
template type unless it lists ``allowed_communication_protocols``; a manual
served from a remote host may not point tools at this machine or a private
network, by any URL it makes us touch (tool URL, redirect hop, OAuth2 token
URL, gRPC target; see :mod:`.remote`); credentials of a template go only to
the origin that template names; a manual's variables never resolve to
another manual's. Manuals and tool results are read up to a size limit, and
documents expand their ``$ref`` within a budget.
"""

from __future__ import annotations

import dataclasses
import importlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from typing import Any

from ..core.config import HTTPConfig, check_size_limit
from ..core.errors import CommunicationError, ConfigError, SecurityError
from ..core.lifecycle import BaseClient
from .base import (
    DEFAULT_MAX_MANUAL_SIZE,
    DEFAULT_MAX_RESULT_SIZE,
    Discovery,
    ToolNotFoundError,
    Transport,
    TransportContext,
)
from .manual import (
    Manual,
    RegisterManualResult,
    SkippedTool,
    Tool,
    close_matches,
    crossing_variables,
    find_variables,
    sanitize_name,
    search,
    substitute,
)
from .openapi import DEFAULT_MAX_EXPANDED_NODES
from .remote import check_tool_template, is_remote_url
from .templates import CallTemplate, parse_template

__all__ = ["ToolClient"]

_TRANSPORTS = {
    "http": ("http_tools", "HttpTransport"),
    "sse": ("sse_tools", "SseTransport"),
    "websocket": ("ws_tools", "WebSocketTransport"),
    "mcp": ("mcp_tools", "McpTransport"),
    "grpc": ("grpc_tools", "GrpcTransport"),
}


@dataclasses.dataclass
class _Registered:
    template: CallTemplate
    manual: Manual
    transport: Transport
    tools: dict[str, Tool]
    remote: bool = False
    resolved: dict[str, CallTemplate] = dataclasses.field(default_factory=dict)
    used: dict[str, Transport] = dataclasses.field(default_factory=dict)


class ToolClient(BaseClient):
    """A registry of tools from UTCP manuals, OpenAPI documents, MCP and gRPC servers.

    Args:
        variables: Values for ``${VAR}`` in call templates, namespaced as
            UTCP does: ``<manual name, _ doubled>_VAR`` (the manual call
            template you pass may also use plain ``VAR``; tool templates a
            provider sent may not).
        use_environment: Also look variables up in the process environment.
        allow_insecure: Allow plain-text transports to non-loopback hosts.
        http_config: Base :class:`HTTPConfig` for HTTP and SSE tools
            (timeouts, retries, TLS); each manual's auth is merged in.
        max_manual_size: Largest manual (UTCP manual or OpenAPI document)
            read over HTTP, in bytes after decompression; None: no limit.
        max_result_size: Largest HTTP tool result read, likewise.
        max_expanded_nodes: Budget of objects and arrays the ``$ref`` (or
            YAML alias) expansion of one document may produce.

    Raises:
        ConfigError: ``variables`` is not a mapping of strings, or a limit is
            not a positive integer.
    """

    _protocol = "tools"

    def __init__(
        self,
        *,
        variables: Mapping[str, str] | None = None,
        use_environment: bool = False,
        allow_insecure: bool = False,
        http_config: HTTPConfig | None = None,
        max_manual_size: int | None = DEFAULT_MAX_MANUAL_SIZE,
        max_result_size: int | None = DEFAULT_MAX_RESULT_SIZE,
        max_expanded_nodes: int = DEFAULT_MAX_EXPANDED_NODES,
    ) -> None:
        super().__init__()
        check_size_limit("max_manual_size", max_manual_size)
        check_size_limit("max_result_size", max_result_size)
        if max_expanded_nodes is None:
            raise ConfigError("max_expanded_nodes: must be a positive integer, got None")
        check_size_limit("max_expanded_nodes", max_expanded_nodes)
        if variables is not None and not isinstance(variables, Mapping):
            raise ConfigError(f"variables: must be a mapping, got {type(variables).__name__}")
        for key, value in (variables or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigError(f"variables.{key}: names and values must be strings")
        self._variables = dict(variables or {})
        self._use_environment = use_environment
        self._context = TransportContext(
            allow_insecure=allow_insecure,
            http_config=http_config or HTTPConfig(),
            logger=self.logger,
            max_manual_size=max_manual_size,
            max_result_size=max_result_size,
            max_expanded_nodes=max_expanded_nodes,
        )
        self._transports: dict[str, Transport] = {}
        self._manuals: dict[str, _Registered] = {}
        self._pending: set[str] = set()
        self._tool_index: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def _open(self) -> None:
        """Nothing to open up front: connections are made per manual."""

    async def _close(self) -> None:
        errors: list[BaseException] = []
        for name in list(self._manuals):
            try:
                await self._drop(name)
            except Exception as exc:  # close the rest, then report the first
                errors.append(exc)
        for transport in list(self._transports.values()):
            try:
                await transport.close()
            except Exception as exc:
                errors.append(exc)
        self._transports.clear()
        for extra in errors[1:]:
            self.logger.warning("another error while closing the tool client: %r", extra)
        if errors:
            raise errors[0]

    def _transport(self, kind: str) -> Transport:
        transport = self._transports.get(kind)
        if transport is None:
            module_name, class_name = _TRANSPORTS[kind]
            module = importlib.import_module(f"{__package__}.{module_name}")
            transport = getattr(module, class_name)(self._context)
            self._transports[kind] = transport
        return transport

    # -- manuals -----------------------------------------------------------------

    async def register_manual(
        self, call_template: Mapping[str, Any] | CallTemplate
    ) -> RegisterManualResult:
        """Discover a manual's tools and register them as ``<manual>.<tool>``.

        Args:
            call_template: A UTCP call template dict (``name``,
                ``call_template_type`` and the type's fields) or a parsed template.

        Returns:
            The template, the manual with the registered tools, and what was
            left out. ``success`` is False when the provider could not be
            reached or served no usable manual (nothing is registered then,
            the reason in ``errors``). Tools that are invalid or refused by
            the security rules are left out and listed in ``errors``; tools
            left out by policy (a call template type not in
            ``allowed_communication_protocols``, a duplicate name) are listed
            in ``skipped`` and logged, not in ``errors``, as with the
            reference UTCP client.

        Raises:
            ConfigError: Invalid template, a missing variable, or a manual of
                that name is registered already.
            SecurityError: The manual URL breaks the URL policy, or a remote
                manual's request was redirected to this machine or a private
                network.
            ClosedError: The client was closed.
        """
        await self.connect()
        raw = call_template.to_dict() if isinstance(call_template, CallTemplate) else call_template
        if not isinstance(raw, Mapping):
            raise ConfigError(f"call_template: must be an object, got {type(raw).__name__}")
        name = sanitize_name(str(raw.get("name") or uuid.uuid4().hex))
        if name in self._manuals or name in self._pending:
            raise ConfigError(
                f"name: a manual named {name!r} is registered already; deregister it first"
            )
        resolved = substitute(
            {**raw, "name": name},
            self._variables,
            namespace=name,
            use_environment=self._use_environment,
            where=f"manual {name!r}",
        )
        template = parse_template(resolved, f"manual {name!r}")
        transport = self._transport(template.call_template_type)
        remote_set = self._context.remote_manuals
        self._pending.add(name)
        try:
            try:
                # A transport that knows before discovery (HTTP) adds the name
                # itself, so that the manual request's redirect hops are checked.
                found = await transport.register_manual(name, template)
                if found.source_url and await is_remote_url(found.source_url):
                    remote_set.add(name)
                tools, problems, skipped = await self._admit(
                    name, template, found, name in remote_set
                )
            except (ConfigError, SecurityError):
                remote_set.discard(name)
                await transport.deregister_manual(name)
                raise
            except CommunicationError as exc:
                remote_set.discard(name)
                await transport.deregister_manual(name)
                self.logger.warning("manual %r could not be registered: %s", name, exc)
                return RegisterManualResult(
                    manual_call_template=template,
                    manual=Manual(manual_version="0.0.0"),
                    success=False,
                    errors=(f"manual {name!r}: {exc}",),
                )
            except BaseException:
                remote_set.discard(name)
                await transport.deregister_manual(name)
                raise
            manual = dataclasses.replace(found.manual, tools=tuple(tools.values()))
            self._manuals[name] = _Registered(
                template, manual, transport, tools, remote=name in remote_set
            )
            for full in tools:
                self._tool_index[full] = name
        finally:
            self._pending.discard(name)
        for problem in problems:
            self.logger.warning("manual %r: %s", name, problem)
        for entry in skipped:
            self.logger.warning("manual %r: %s", name, entry)
        for warning in found.warnings:
            self.logger.warning("manual %r: %s", name, warning)
        return RegisterManualResult(
            manual_call_template=template,
            manual=manual,
            success=True,
            errors=tuple(problems),
            skipped=tuple(skipped),
            warnings=found.warnings,
        )

    async def _admit(
        self, name: str, template: CallTemplate, found: Discovery, remote: bool
    ) -> tuple[dict[str, Tool], list[str], list[SkippedTool]]:
        allowed = template.allowed_types()
        problems = [f"manual {name!r}: {p}" for p in found.problems]
        skipped = list(found.skipped)
        tools: dict[str, Tool] = {}
        for tool in found.manual.tools:
            kind = tool.call_template_type
            if kind not in allowed:
                skipped.append(
                    SkippedTool(
                        tool.name,
                        f"its call template type {kind!r} is not allowed for manual {name!r} "
                        f"(allowed: {', '.join(allowed)}; list more in "
                        "allowed_communication_protocols)",
                    )
                )
                continue
            crossing = crossing_variables(tool.tool_call_template)
            if crossing:
                problems.append(
                    f"tool {tool.name!r} uses the variable(s) {', '.join(map(repr, crossing))}: "
                    f"a name starting with '_' could reach another manual's variables "
                    f"(manual {name!r} looks up {name.replace('_', '__')}_{crossing[0]}); left out"
                )
                continue
            if remote:
                try:
                    await check_tool_template(
                        tool.tool_call_template, tool.name, skip_unresolved=True
                    )
                except (SecurityError, ConfigError) as exc:
                    problems.append(f"{exc.message}; left out")
                    continue
            full = tool.name if tool.name.startswith(name + ".") else f"{name}.{tool.name}"
            tools[full] = dataclasses.replace(tool, name=full)
        return tools, problems, skipped

    async def register_manuals(
        self, call_templates: Iterable[Mapping[str, Any] | CallTemplate]
    ) -> list[RegisterManualResult]:
        """Register several manuals one after the other.

        Args:
            call_templates: Call templates as for :meth:`register_manual`.

        Returns:
            One result per template, in order.
        """
        return [await self.register_manual(t) for t in call_templates]

    async def deregister_manual(self, name: str) -> bool:
        """Remove a manual and its tools, closing its connections.

        Args:
            name: The manual's name.

        Returns:
            True if it was registered.
        """
        name = sanitize_name(name)
        if name not in self._manuals:
            return False
        await self._drop(name)
        return True

    async def _drop(self, name: str) -> None:
        entry = self._manuals.pop(name)
        self._context.remote_manuals.discard(name)
        for full in entry.tools:
            self._tool_index.pop(full, None)
        await entry.transport.deregister_manual(name)
        for transport in entry.used.values():
            if transport is not entry.transport:
                await transport.deregister_manual(name)

    def manuals(self) -> list[str]:
        """Names of the registered manuals, in registration order."""
        return list(self._manuals)

    def get_manual(self, name: str) -> Manual | None:
        """The registered manual of that name, or None."""
        entry = self._manuals.get(sanitize_name(name))
        return entry.manual if entry else None

    def required_variables(self, name: str) -> list[str]:
        """Variables the manual's tools need (namespaced names as looked up first).

        Args:
            name: The manual's name.

        Returns:
            Sorted variable names.

        Raises:
            ConfigError: No such manual.
        """
        entry = self._manuals.get(sanitize_name(name))
        if entry is None:
            raise ConfigError(f"name: no manual named {name!r}")
        templates = [t.tool_call_template for t in entry.tools.values()]
        return find_variables(templates, entry.template.name)

    # -- tools -------------------------------------------------------------------

    def list_tools(self) -> list[Tool]:
        """Every registered tool, in registration order."""
        return [tool for entry in self._manuals.values() for tool in entry.tools.values()]

    def get_tool(self, name: str) -> Tool:
        """The tool of that full name.

        Args:
            name: ``<manual>.<tool>``.

        Returns:
            The tool.

        Raises:
            ToolNotFoundError: No such tool; the error lists close matches.
        """
        manual = self._tool_index.get(name)
        if manual is None:
            raise ToolNotFoundError(name, close_matches(name, self._tool_index))
        return self._manuals[manual].tools[name]

    def search_tools(
        self, query: str, limit: int = 10, *, tags: Iterable[str] | None = None
    ) -> list[Tool]:
        """Find tools by name, tags and description words.

        Args:
            query: Free text.
            limit: At most this many results.
            tags: If given, only tools carrying one of these tags.

        Returns:
            Matching tools, best first.
        """
        return search(self.list_tools(), query, limit=limit, tags=tags)

    def _prepare(
        self, name: str, args: Mapping[str, Any] | None
    ) -> tuple[Transport, _Registered, Tool, CallTemplate, dict[str, Any]]:
        self._ensure_usable()
        tool = self.get_tool(name)
        entry = self._manuals[self._tool_index[name]]
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ConfigError(
                f"tool {name!r}: arguments must be an object, got {type(args).__name__}"
            )
        missing = [r for r in tool.inputs.get("required") or () if r not in args]
        if missing:
            raise ConfigError(
                f"tool {name!r}: missing required argument(s) {', '.join(map(repr, missing))}"
            )
        template = entry.resolved.get(name)
        if template is None:
            resolved = substitute(
                tool.tool_call_template,
                self._variables,
                namespace=entry.template.name,
                use_environment=self._use_environment,
                plain_names=False,
                where=f"tool {name!r}",
            )
            template = parse_template(resolved, f"tool {name!r}.tool_call_template")
            if template.call_template_type not in entry.template.allowed_types():
                raise SecurityError(
                    f"tool {name!r} uses call template type {template.call_template_type!r}, "
                    f"not allowed by manual {entry.template.name!r}"
                )
            entry.resolved[name] = template
        kind = template.call_template_type
        transport = entry.used.get(kind)
        if transport is None:
            transport = entry.used[kind] = self._transport(kind)
        return transport, entry, tool, template, dict(args)

    async def call_tool(self, name: str, args: Mapping[str, Any] | None = None) -> Any:
        """Call a tool and return its result.

        Args:
            name: ``<manual>.<tool>``.
            args: The arguments (checked against the tool's required inputs).

        Returns:
            The tool's result: decoded JSON, text, or bytes, as the protocol gives.

        Raises:
            ToolNotFoundError: Unknown tool (close matches listed).
            ConfigError: Bad arguments or a missing variable.
            SecurityError: The tool's endpoint breaks the URL policy, or the
                tool of a remote manual touches this machine or a private
                network (its URL, a redirect hop, its token URL, its gRPC target).
            MessageTooLargeError: An HTTP result exceeds ``max_result_size``.
            RemoteError: The tool itself failed (HTTPStatusError for HTTP,
                with status and body kept; MCP ``isError``; gRPC status).
            ConnectionError: The provider cannot be reached.
            TimeoutError: No answer in time.
        """
        await self.connect()
        transport, entry, tool, template, arguments = self._prepare(name, args)
        if entry.remote:
            await check_tool_template(template.raw, name)
        self.stats.sent += 1
        try:
            result = await transport.call_tool(entry.template.name, tool, template, arguments)
        except CommunicationError:
            self.stats.errors += 1
            raise
        self.stats.received += 1
        return result

    async def call_tool_streaming(
        self, name: str, args: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """Call a tool and yield its results as they arrive.

        Protocols without streaming yield the one result. Leaving the loop
        early closes the stream (SSE response, gRPC call) at once.

        Args:
            name: ``<manual>.<tool>``.
            args: The arguments.

        Yields:
            Each result chunk, decoded.

        Raises:
            CommunicationError: The same errors as :meth:`call_tool`.
        """
        await self.connect()
        transport, entry, tool, template, arguments = self._prepare(name, args)
        if entry.remote:
            await check_tool_template(template.raw, name)
        stream = transport.call_tool_streaming(entry.template.name, tool, template, arguments)
        self.stats.sent += 1
        async with aclosing(stream) as chunks:  # type: ignore[type-var]
            try:
                async for chunk in chunks:
                    self.stats.received += 1
                    yield chunk
            except CommunicationError:
                self.stats.errors += 1
                raise

    def __repr__(self) -> str:
        return (
            f"<ToolClient manuals={len(self._manuals)} tools={len(self._tool_index)} "
            f"state={self.state.value}>"
        )
