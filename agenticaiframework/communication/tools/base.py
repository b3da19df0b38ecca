"""What every call-template transport implements, and what it is given.

A transport turns call templates of one type into manuals (discovery) and
tool calls, on top of one of our protocol clients. It owns the connections it
opens per manual and closes them in :meth:`Transport.deregister_manual`.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from ..core.config import HTTPConfig
from ..core.errors import CommunicationError
from .manual import Manual, SkippedTool, Tool
from .openapi import DEFAULT_MAX_EXPANDED_NODES
from .templates import CallTemplate

__all__ = [
    "DEFAULT_MAX_MANUAL_SIZE",
    "DEFAULT_MAX_RESULT_SIZE",
    "Discovery",
    "ToolNotFoundError",
    "Transport",
    "TransportContext",
    "connect_cached",
]


V = TypeVar("V")

DEFAULT_MAX_MANUAL_SIZE = 32 * 1024 * 1024
"""Largest manual (UTCP manual or OpenAPI document) read by default: 32 MiB after decompression."""

DEFAULT_MAX_RESULT_SIZE = 16 * 1024 * 1024
"""Largest HTTP tool result read by default: 16 MiB after decompression."""


class _Connectable(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...


async def connect_cached(cache: dict[Any, V], key: Any, value: V, client: _Connectable) -> V:
    """Cache ``value`` under ``key`` and connect ``client``; on failure undo both.

    The entry goes in before connecting so concurrent callers reuse it; if the
    connect fails (or is cancelled) the entry is removed and the client closed.

    Args:
        cache: A transport's per-manual connection cache.
        key: The cache key.
        value: What to cache (the client, or a wrapper around it).
        client: The client to connect.

    Returns:
        ``value``, connected.
    """
    cache[key] = value
    try:
        await client.connect()
    except BaseException:
        cache.pop(key, None)
        await client.close()
        raise
    return value


class ToolNotFoundError(CommunicationError, LookupError):
    """No registered tool has this name; ``suggestions`` holds close matches.

    Attributes:
        tool_name: The name asked for.
        suggestions: Registered names that look like it.
    """

    code = "ERR_TOOL_NOT_FOUND"

    def __init__(self, tool_name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(map(repr, suggestions))}?" if suggestions else ""
        super().__init__(f"unknown tool {tool_name!r}{hint}")
        self.tool_name = tool_name
        self.suggestions = suggestions


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransportContext:
    """Settings a :class:`~agenticaiframework.communication.tools.ToolClient` hands its transports.

    Attributes:
        allow_insecure: Allow plain-text transports to non-loopback hosts.
        http_config: Base config of the HTTP (and SSE) clients for tools.
        logger: The tool client's logger.
        max_manual_size: Largest manual body read, in bytes after
            decompression (None: no limit).
        max_result_size: Largest HTTP tool result read, likewise.
        max_expanded_nodes: Budget of objects and arrays a document's
            ``$ref``/alias expansion may produce.
        remote_manuals: Names of the manuals served from outside this machine
            and its private networks (see :mod:`.remote`); kept up to date by
            the tool client, read by the transports for redirect hops.
    """

    allow_insecure: bool
    http_config: HTTPConfig
    logger: logging.Logger
    max_manual_size: int | None = DEFAULT_MAX_MANUAL_SIZE
    max_result_size: int | None = DEFAULT_MAX_RESULT_SIZE
    max_expanded_nodes: int = DEFAULT_MAX_EXPANDED_NODES
    remote_manuals: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Discovery:
    """What a transport found for a manual.

    Attributes:
        manual: The manual (tool names not yet prefixed).
        problems: Failures: tools that could not be parsed, one line each
            (they become the result's ``errors``).
        skipped: Tools left out on purpose (not errors), with the reason.
        warnings: Parts of registered tools that were left out, one line each.
        source_url: Where the manual came from (for the loopback rule).
    """

    manual: Manual
    problems: tuple[str, ...] = ()
    skipped: tuple[SkippedTool, ...] = ()
    warnings: tuple[str, ...] = ()
    source_url: str = ""


class Transport(abc.ABC):
    """One call-template type: discovery, calls, and the connections they need.

    Args:
        context: Settings from the tool client.
    """

    type_name: ClassVar[str] = ""

    def __init__(self, context: TransportContext) -> None:
        self.context = context

    @abc.abstractmethod
    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """Discover the tools of a manual.

        Args:
            manual_name: The (sanitized) name the manual is registered under.
            template: Its call template, variables already substituted.

        Returns:
            The discovered manual.

        Raises:
            CommunicationError: The provider could not be reached or answered badly.
        """

    @abc.abstractmethod
    async def deregister_manual(self, manual_name: str) -> None:
        """Close whatever this transport keeps open for the manual (idempotent).

        Args:
            manual_name: The manual's name.
        """

    @abc.abstractmethod
    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """Call a tool and return its result.

        Args:
            manual_name: The manual the tool belongs to (owner of connections).
            tool: The tool.
            template: Its call template, variables substituted.
            args: The arguments.

        Returns:
            The decoded result.
        """

    async def call_tool_streaming(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """Call a tool and yield its results as they come (default: one result).

        Args:
            manual_name: The manual the tool belongs to.
            tool: The tool.
            template: Its call template, variables substituted.
            args: The arguments.

        Yields:
            Decoded results.
        """
        yield await self.call_tool(manual_name, tool, template, args)

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release anything not tied to a manual (default: nothing)."""
