"""The one exception hierarchy every client raises.

Each class carries a stable ``code`` string, so callers (and the ``agentcomm``
command) can branch on it without matching messages::

    CommunicationError                  ERR_COMMUNICATION
    ├── ConfigError (ValueError)        ERR_CONFIG
    ├── SecurityError                   ERR_SECURITY
    ├── ConnectionError                 ERR_CONNECTION
    │   ├── ProcessExitedError          ERR_PROCESS_EXITED
    │   └── StdoutClosedError           ERR_STDOUT_CLOSED
    ├── TimeoutError                    ERR_TIMEOUT
    │   └── PoolTimeoutError            ERR_TIMEOUT
    ├── AuthenticationError             ERR_AUTH
    ├── ProtocolError                   ERR_PROTOCOL
    │   └── MessageTooLargeError        ERR_MESSAGE_TOO_LARGE
    ├── RemoteError                     ERR_REMOTE
    │   └── HTTPStatusError             ERR_HTTP_STATUS
    ├── QueueFullError                  ERR_QUEUE_FULL
    └── ClosedError                     ERR_CLOSED

``ConnectionError`` and ``TimeoutError`` also derive from the built-in
exceptions of the same name, so ``except TimeoutError`` keeps working for code
that does not import ours. Backend exceptions are translated at one boundary
per backend and chained with ``raise ... from exc``.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "AuthenticationError",
    "ClosedError",
    "CommunicationError",
    "ConfigError",
    "ConnectionError",
    "HTTPStatusError",
    "MessageTooLargeError",
    "PoolTimeoutError",
    "ProcessExitedError",
    "ProtocolError",
    "QueueFullError",
    "RemoteError",
    "SecurityError",
    "StdoutClosedError",
    "TimeoutError",
]


class CommunicationError(Exception):
    """Root of every error raised by ``agenticaiframework.communication``.

    Attributes:
        code: A stable machine-readable string such as ``"ERR_TIMEOUT"``.
    """

    code: str = "ERR_COMMUNICATION"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(CommunicationError, ValueError):
    """A configuration value is invalid; the message names the field."""

    code = "ERR_CONFIG"


class SecurityError(CommunicationError):
    """The security policy refused an endpoint, before any connection was tried."""

    code = "ERR_SECURITY"


class ConnectionError(CommunicationError, builtins.ConnectionError):
    """The peer could not be reached, or the connection was lost.

    Attributes:
        close_code: The last close code seen (WebSocket), if any.
        close_reason: The last close reason seen (WebSocket), if any.
    """

    code = "ERR_CONNECTION"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.close_code = close_code
        self.close_reason = close_reason


class ProcessExitedError(ConnectionError):
    """A child process exited; carries its exit code and the tail of its stderr.

    Attributes:
        returncode: The process exit status (negative for a signal).
        stderr_tail: The last bytes the process wrote to stderr, decoded.
    """

    code = "ERR_PROCESS_EXITED"

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class StdoutClosedError(ConnectionError):
    """A child process closed its stdout but is still running: no reply can come."""

    code = "ERR_STDOUT_CLOSED"


class TimeoutError(CommunicationError, builtins.TimeoutError):
    """An operation did not finish before its deadline."""

    code = "ERR_TIMEOUT"


class PoolTimeoutError(TimeoutError):
    """No pooled connection became free before ``connection_timeout``."""


class AuthenticationError(CommunicationError):
    """Credentials were refused, or a token could not be obtained."""

    code = "ERR_AUTH"


class ProtocolError(CommunicationError):
    """The peer broke the protocol: a malformed frame, status or content type."""

    code = "ERR_PROTOCOL"


class MessageTooLargeError(ProtocolError):
    """A message exceeded the configured size limit."""

    code = "ERR_MESSAGE_TOO_LARGE"


class RemoteError(CommunicationError):
    """The remote side answered with an error; its details are kept.

    Attributes:
        remote_code: The remote error code (JSON-RPC code, gRPC status name, ...).
        data: Any extra data the remote sent with the error.
    """

    code = "ERR_REMOTE"

    def __init__(
        self,
        message: str,
        *,
        remote_code: Any = None,
        data: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.remote_code = remote_code
        self.data = data


class HTTPStatusError(RemoteError):
    """An HTTP peer answered with a status the caller asked to treat as an error.

    Attributes:
        status_code: The HTTP status.
        body_preview: The first bytes of the response body, decoded.
    """

    code = "ERR_HTTP_STATUS"

    def __init__(self, message: str, *, status_code: int, body_preview: str = "") -> None:
        super().__init__(message, remote_code=status_code, data=body_preview)
        self.status_code = status_code
        self.body_preview = body_preview


class QueueFullError(CommunicationError):
    """A bounded queue (outgoing sends while reconnecting, ...) is full."""

    code = "ERR_QUEUE_FULL"


class ClosedError(CommunicationError):
    """The client was closed; it cannot be used or reopened."""

    code = "ERR_CLOSED"
