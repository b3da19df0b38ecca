"""The A2A errors, as members of our one hierarchy.

Every error an A2A agent can answer (specification section 3.3.2, mapped per
binding in section 5.4) becomes one class here, each with a stable ``code``;
the remote side's own code is kept in ``remote_code`` (the JSON-RPC number,
the HTTP status, or the gRPC status name), its ``google.rpc.ErrorInfo``
reason in ``reason`` and any details in ``data``::

    RemoteError                                   ERR_REMOTE
    └── A2AError                                  ERR_A2A
        ├── TaskNotFoundError                     ERR_A2A_TASK_NOT_FOUND
        ├── TaskNotCancelableError                ERR_A2A_TASK_NOT_CANCELABLE
        ├── PushNotificationNotSupportedError     ERR_A2A_PUSH_NOT_SUPPORTED
        ├── UnsupportedOperationError             ERR_A2A_UNSUPPORTED_OPERATION
        ├── ContentTypeNotSupportedError          ERR_A2A_CONTENT_TYPE_NOT_SUPPORTED
        ├── InvalidAgentResponseError             ERR_A2A_INVALID_AGENT_RESPONSE
        ├── ExtendedAgentCardNotConfiguredError   ERR_A2A_EXTENDED_CARD_NOT_CONFIGURED
        ├── ExtensionSupportRequiredError         ERR_A2A_EXTENSION_SUPPORT_REQUIRED
        ├── VersionNotSupportedError              ERR_A2A_VERSION_NOT_SUPPORTED
        ├── InvalidParamsError                    ERR_A2A_INVALID_PARAMS
        ├── InvalidRequestError                   ERR_A2A_INVALID_REQUEST
        ├── MethodNotFoundError                   ERR_A2A_METHOD_NOT_FOUND
        ├── InternalAgentError                    ERR_A2A_INTERNAL
        └── ParseError                            ERR_A2A_PARSE_ERROR

    AuthenticationError                           ERR_AUTH
    └── A2AAuthError                              ERR_AUTH

The helpers at the bottom turn each binding's error shape into these classes:
:func:`from_jsonrpc_error`, :func:`from_rest_error` and :func:`from_reason`
(for the gRPC binding: the ``ErrorInfo.reason`` of the status details, else
the status name through :func:`from_grpc_status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import AuthenticationError, RemoteError
from ...core.security import redact_text

__all__ = [
    "A2AAuthError",
    "A2AError",
    "ContentTypeNotSupportedError",
    "ExtendedAgentCardNotConfiguredError",
    "ExtensionSupportRequiredError",
    "InternalAgentError",
    "InvalidAgentResponseError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "ParseError",
    "PushNotificationNotSupportedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "UnsupportedOperationError",
    "VersionNotSupportedError",
    "from_grpc_status",
    "from_jsonrpc_error",
    "from_reason",
    "from_rest_error",
]

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_MAX_MESSAGE = 500


class A2AError(RemoteError):
    """An error answered by an A2A agent.

    Attributes:
        remote_code: The agent's own code: a JSON-RPC error number, an HTTP
            status, or a gRPC status name.
        reason: The ``google.rpc.ErrorInfo`` reason (``TASK_NOT_FOUND`` ...), if sent.
        data: The error's details or ErrorInfo metadata, if any.
    """

    code = "ERR_A2A"
    reason_name = ""
    jsonrpc_code: int | None = None

    def __init__(
        self,
        message: str,
        *,
        remote_code: Any = None,
        reason: str | None = None,
        data: Any = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, remote_code=remote_code, data=data, code=code)
        self.reason = reason or self.reason_name or None


class TaskNotFoundError(A2AError):
    """The task id does not exist (or is not accessible, or was purged)."""

    code = "ERR_A2A_TASK_NOT_FOUND"
    reason_name = "TASK_NOT_FOUND"
    jsonrpc_code = -32001


class TaskNotCancelableError(A2AError):
    """The task cannot be canceled (it already reached a terminal state)."""

    code = "ERR_A2A_TASK_NOT_CANCELABLE"
    reason_name = "TASK_NOT_CANCELABLE"
    jsonrpc_code = -32002


class PushNotificationNotSupportedError(A2AError):
    """The agent does not support push notifications."""

    code = "ERR_A2A_PUSH_NOT_SUPPORTED"
    reason_name = "PUSH_NOTIFICATION_NOT_SUPPORTED"
    jsonrpc_code = -32003


class UnsupportedOperationError(A2AError):
    """The agent does not support the operation (or not on a task in this state)."""

    code = "ERR_A2A_UNSUPPORTED_OPERATION"
    reason_name = "UNSUPPORTED_OPERATION"
    jsonrpc_code = -32004


class ContentTypeNotSupportedError(A2AError):
    """A media type in the message is not supported by the agent."""

    code = "ERR_A2A_CONTENT_TYPE_NOT_SUPPORTED"
    reason_name = "CONTENT_TYPE_NOT_SUPPORTED"
    jsonrpc_code = -32005


class InvalidAgentResponseError(A2AError):
    """The agent produced a response that breaks the specification."""

    code = "ERR_A2A_INVALID_AGENT_RESPONSE"
    reason_name = "INVALID_AGENT_RESPONSE"
    jsonrpc_code = -32006


class ExtendedAgentCardNotConfiguredError(A2AError):
    """The agent has no extended agent card."""

    code = "ERR_A2A_EXTENDED_CARD_NOT_CONFIGURED"
    reason_name = "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    jsonrpc_code = -32007


class ExtensionSupportRequiredError(A2AError):
    """The agent requires an extension the request did not declare (``extensions=``)."""

    code = "ERR_A2A_EXTENSION_SUPPORT_REQUIRED"
    reason_name = "EXTENSION_SUPPORT_REQUIRED"
    jsonrpc_code = -32008


class VersionNotSupportedError(A2AError):
    """The agent does not speak the A2A version we do (1.0)."""

    code = "ERR_A2A_VERSION_NOT_SUPPORTED"
    reason_name = "VERSION_NOT_SUPPORTED"
    jsonrpc_code = -32009


class InvalidParamsError(A2AError):
    """The agent refused the request's parameters."""

    code = "ERR_A2A_INVALID_PARAMS"
    reason_name = "INVALID_PARAMS"
    jsonrpc_code = -32602


class InvalidRequestError(A2AError):
    """The agent found the request malformed."""

    code = "ERR_A2A_INVALID_REQUEST"
    reason_name = "INVALID_REQUEST"
    jsonrpc_code = -32600


class MethodNotFoundError(A2AError):
    """The agent does not know the method (or the REST path)."""

    code = "ERR_A2A_METHOD_NOT_FOUND"
    reason_name = "METHOD_NOT_FOUND"
    jsonrpc_code = -32601


class InternalAgentError(A2AError):
    """The agent failed internally."""

    code = "ERR_A2A_INTERNAL"
    reason_name = "INTERNAL_ERROR"
    jsonrpc_code = -32603


class ParseError(A2AError):
    """The agent could not parse the request's JSON."""

    code = "ERR_A2A_PARSE_ERROR"
    reason_name = "PARSE_ERROR"
    jsonrpc_code = -32700


class A2AAuthError(AuthenticationError):
    """The agent refused our credentials (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED).

    Attributes:
        status_code: The HTTP status (or gRPC status name).
        schemes: The security schemes the agent card declares, by name.
    """

    def __init__(self, message: str, *, status_code: Any, schemes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.schemes = schemes


_CLASSES: tuple[type[A2AError], ...] = (
    TaskNotFoundError,
    TaskNotCancelableError,
    PushNotificationNotSupportedError,
    UnsupportedOperationError,
    ContentTypeNotSupportedError,
    InvalidAgentResponseError,
    ExtendedAgentCardNotConfiguredError,
    ExtensionSupportRequiredError,
    VersionNotSupportedError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    InternalAgentError,
    ParseError,
)
BY_JSONRPC_CODE: dict[int, type[A2AError]] = {
    cls.jsonrpc_code: cls for cls in _CLASSES if cls.jsonrpc_code is not None
}
BY_REASON: dict[str, type[A2AError]] = {cls.reason_name: cls for cls in _CLASSES}
# gRPC status names that mean one A2A error each (others need the ErrorInfo reason).
_BY_GRPC_STATUS: dict[str, type[A2AError]] = {
    "NOT_FOUND": TaskNotFoundError,
    "UNIMPLEMENTED": UnsupportedOperationError,
    "INTERNAL": InternalAgentError,
    "INVALID_ARGUMENT": InvalidParamsError,
}


def _text(value: Any, fallback: str) -> str:
    text = value if isinstance(value, str) and value else fallback
    return redact_text(text[:_MAX_MESSAGE])


def _error_info(details: Any) -> tuple[str | None, Any]:
    """The reason and metadata of the first ``google.rpc.ErrorInfo`` in ``details``."""
    if isinstance(details, list):
        for item in details:
            if isinstance(item, Mapping) and item.get("@type") == _ERROR_INFO:
                reason = item.get("reason")
                return (reason if isinstance(reason, str) else None), item.get("metadata")
    return None, None


def from_reason(
    reason: str | None,
    message: str,
    *,
    remote_code: Any = None,
    data: Any = None,
    default: type[A2AError] = A2AError,
) -> A2AError:
    """The error for an ``ErrorInfo`` reason (``TASK_NOT_FOUND`` ...).

    Args:
        reason: The reason string, or None.
        message: The agent's message.
        remote_code: The agent's own code, kept on the error.
        data: Details to keep.
        default: The class when the reason is unknown.

    Returns:
        The error (not raised).
    """
    cls = BY_REASON.get(reason or "", default)
    return cls(message, remote_code=remote_code, reason=reason, data=data)


def from_jsonrpc_error(error: Any, *, what: str) -> A2AError:
    """The error for a JSON-RPC ``error`` member.

    Args:
        error: The ``error`` object of the response.
        what: The method, for the message.

    Returns:
        The error (not raised); an unknown code gives :class:`A2AError`.
    """
    if not isinstance(error, Mapping):
        return InvalidAgentResponseError(
            f"{what}: the agent answered a malformed JSON-RPC error {str(error)[:200]!r}"
        )
    code = error.get("code")
    message = _text(error.get("message"), "no message")
    data = error.get("data")
    reason, metadata = _error_info(data)
    cls: type[A2AError] = A2AError
    if isinstance(code, int) and not isinstance(code, bool):
        cls = BY_JSONRPC_CODE.get(code, A2AError)
    if reason in BY_REASON and cls is A2AError:
        cls = BY_REASON[reason]
    return cls(
        f"{what}: {message} (JSON-RPC error {code})",
        remote_code=code,
        reason=reason,
        data=metadata if metadata is not None else data,
    )


def from_rest_error(status: int, body: Any, *, what: str) -> A2AError:
    """The error for an HTTP+JSON error response (``{"error": {code, status, message, details}}``).

    Args:
        status: The HTTP status.
        body: The decoded body (anything; a non-conforming body still maps by status).
        what: The operation, for the message.

    Returns:
        The error (not raised).
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    message = _text(error.get("message"), f"HTTP {status}")
    reason, metadata = _error_info(error.get("details"))
    if reason in BY_REASON:
        cls = BY_REASON[reason]
    elif status == 404:
        cls = MethodNotFoundError if not error else TaskNotFoundError
    elif status >= 500:
        cls = InternalAgentError
    else:
        cls = A2AError
    return cls(
        f"{what}: {message} (HTTP {status})",
        remote_code=status,
        reason=reason,
        data=metadata if metadata is not None else error.get("details"),
    )


def from_grpc_status(
    status: str, message: str, *, reason: str | None = None, data: Any = None, what: str
) -> A2AError:
    """The error for a gRPC status (for the gRPC binding).

    Args:
        status: The status name (``NOT_FOUND`` ...).
        message: The status details.
        reason: The ``ErrorInfo`` reason from the status details, if any.
        data: Its metadata.
        what: The operation, for the message.

    Returns:
        The error (not raised).
    """
    cls = BY_REASON.get(reason or "") or _BY_GRPC_STATUS.get(status, A2AError)
    return cls(
        f"{what}: {_text(message, status)} (gRPC {status})",
        remote_code=status,
        reason=reason,
        data=data,
    )
