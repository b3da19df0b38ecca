"""The stdio transport of MCP: newline-delimited JSON-RPC to a child process.

Built on :class:`~agenticaiframework.communication.stdio.STDIOClient` in
``jsonrpc`` mode: the child runs in its own process group, its stderr is kept
(the tail goes into the exit error) and logged at debug level, and ``close()``
closes its stdin, then sends SIGTERM, then SIGKILL to the group. The session
numbers its own requests; a reader task hands every message the child prints
to the session, and when the child exits every pending call fails at once
with :class:`~agenticaiframework.communication.core.errors.ProcessExitedError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...core import errors
from ...stdio.client import STDIOClient
from ...stdio.jsonrpc import RequestId
from .faults import as_communication_error

if TYPE_CHECKING:
    from .session import MCPSession

__all__ = ["StdioTransport"]


class StdioTransport:
    """MCP over a child's stdin and stdout.

    Args:
        command: The program and its arguments.
        **options: More :class:`STDIOConfig` fields (``env``, ``working_dir``,
            ``max_line_length``, ``terminate_timeout`` ...).

    Raises:
        ConfigError: An invalid option (named), or no command.
    """

    session_id: str | None = None

    def __init__(self, command: Sequence[str], **options: Any) -> None:
        options.setdefault("response_timeout", 0)
        self._stdio = STDIOClient(command=list(command), message_format="jsonrpc", **options)
        self._reader: asyncio.Task[None] | None = None

    @property
    def client(self) -> STDIOClient:
        """The underlying STDIOClient (pid, stderr_tail, stats)."""
        return self._stdio

    async def start(self, session: MCPSession) -> None:
        """Start the child and the reader handing its messages to ``session``."""
        await self._stdio.connect()
        self._reader = asyncio.get_running_loop().create_task(
            self._read(session), name="MCPClient:stdio-reader"
        )

    async def _read(self, session: MCPSession) -> None:
        stdio = self._stdio
        while True:
            try:
                message = await stdio.receive(timeout=None)
            except errors.MessageTooLargeError as exc:
                session.logger.warning("%s", exc.message)
                continue
            except errors.ClosedError:
                return
            except errors.CommunicationError as exc:
                # ProcessExitedError / StdoutClosedError: nothing more can come.
                session.transport_failed(exc)
                return
            except Exception as exc:  # not ours: still every pending call fails, with it
                failure = as_communication_error(exc, "reading from the server", "")
                failure.__cause__ = exc
                session.transport_failed(failure)
                return
            if isinstance(message, dict | list):
                session.handle_message(message)
            else:
                session.logger.debug("skipped a stdout line that is not JSON: %.200r", message)

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message as a line."""
        await self._stdio.send(message)

    def initialized(self, protocol_version: str) -> None:
        """Nothing to do: stdio messages carry no version header."""

    def abandon(self, request_id: RequestId) -> None:
        """Nothing to release: a late reply is dropped by the session."""

    async def close(self) -> None:
        """End the child (stdin closed, SIGTERM, SIGKILL to its group) and the reader."""
        try:
            await self._stdio.close()
        finally:
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
