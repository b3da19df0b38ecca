"""JSON-RPC 2.0 without I/O: building messages, classifying them, correlating ids.

:class:`STDIOClient` (and anything else that speaks JSON-RPC) builds its
requests with :func:`request`, keeps its outstanding ids in a
:class:`PendingRequests` table, sorts every incoming message with
:func:`classify`, and turns error responses into
:class:`~agenticaiframework.communication.core.errors.RemoteError` with
:func:`remote_error`. Nothing here awaits or touches a stream, so it is
tested on its own.

A message is a ``dict`` as decoded from JSON. Kinds::

    request        {"jsonrpc": "2.0", "id": 1, "method": "m", "params": ...}
    notification   {"jsonrpc": "2.0", "method": "m", "params": ...}
    response       {"jsonrpc": "2.0", "id": 1, "result": ...}
    error          {"jsonrpc": "2.0", "id": 1, "error": {"code": .., "message": ..}}
    invalid        anything else
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from ..core.errors import RemoteError

__all__ = [
    "DEFAULT_MAX_ABANDONED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "JSONRPC_VERSION",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "MessageKind",
    "PendingRequests",
    "RequestId",
    "classify",
    "error_response",
    "notification",
    "remote_error",
    "request",
    "response",
]

JSONRPC_VERSION = "2.0"
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

RequestId = int | str
T = TypeVar("T")


class MessageKind(enum.Enum):
    """What an incoming JSON-RPC message is."""

    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"
    ERROR = "error"
    INVALID = "invalid"


def _check_params(params: Any) -> None:
    if params is not None and not isinstance(params, dict | list):
        raise TypeError(
            f"JSON-RPC params must be a dict, a list or None, got {type(params).__name__}"
        )


def request(method: str, params: Any = None, *, id: RequestId) -> dict[str, Any]:
    """Build a request.

    Args:
        method: The method name.
        params: A dict (by name) or list (by position); None omits the member.
        id: The request id.

    Returns:
        The message dict.

    Raises:
        TypeError: ``params`` is not a dict, list or None.
    """
    _check_params(params)
    message: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: Any = None) -> dict[str, Any]:
    """Build a notification (a request that gets no reply).

    Args:
        method: The method name.
        params: A dict, a list or None.

    Returns:
        The message dict.

    Raises:
        TypeError: ``params`` is not a dict, list or None.
    """
    _check_params(params)
    message: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params is not None:
        message["params"] = params
    return message


def response(id: RequestId | None, result: Any) -> dict[str, Any]:
    """Build a success response.

    Args:
        id: The id of the request answered.
        result: The result value.

    Returns:
        The message dict.
    """
    return {"jsonrpc": JSONRPC_VERSION, "id": id, "result": result}


def error_response(
    id: RequestId | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    """Build an error response.

    Args:
        id: The id of the request answered (None when it could not be read).
        code: The JSON-RPC error code.
        message: A short description.
        data: Optional extra data; omitted when None.

    Returns:
        The message dict.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": JSONRPC_VERSION, "id": id, "error": error}


def classify(message: Any) -> MessageKind:
    """Sort an incoming message into request, notification, response or error.

    Lenient on purpose where peers commonly are (a missing ``"jsonrpc"``
    member is accepted); strict where correlation depends on it.

    Args:
        message: A decoded JSON value.

    Returns:
        The kind; ``INVALID`` for anything that is not a JSON-RPC message.
    """
    if not isinstance(message, dict):
        return MessageKind.INVALID
    method = message.get("method")
    if method is not None:
        if not isinstance(method, str):
            return MessageKind.INVALID
        if "id" in message:
            return MessageKind.REQUEST
        return MessageKind.NOTIFICATION
    if "id" not in message:
        return MessageKind.INVALID
    if "error" in message:
        return MessageKind.ERROR
    if "result" in message:
        return MessageKind.RESPONSE
    return MessageKind.INVALID


def remote_error(message: dict[str, Any], *, method: str | None = None) -> RemoteError:
    """Turn an error response into a RemoteError carrying code, message and data.

    Args:
        message: The error response.
        method: The method of the request, for the error text.

    Returns:
        The exception (not raised), ``remote_code`` and ``data`` set.
    """
    error = message.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        text = str(error.get("message", ""))
        data = error.get("data")
    else:
        code, text, data = None, str(error), None
    where = f"{method}: " if method else ""
    return RemoteError(f"{where}JSON-RPC error {code}: {text}", remote_code=code, data=data)


DEFAULT_MAX_ABANDONED = 4096
"""How many abandoned request ids :class:`PendingRequests` remembers."""

_MISSING: Any = object()


class PendingRequests(Generic[T]):
    """Outstanding request ids and whatever waits for each reply.

    The waiter type is the caller's (an ``asyncio.Future`` in the clients);
    this table only hands out ids and matches replies to them. Ids are
    increasing integers; ids the caller used on its own (raw sends) can be
    reserved so they are never handed out while in use.

    A request the caller stopped waiting for (timed out, cancelled) is
    :meth:`abandon`-ed: its id is remembered, so that its late reply is
    recognised by :meth:`is_late` and dropped rather than taken for a message
    nobody asked for. Only the ``max_abandoned`` most recent ids are kept, so
    the table stays bounded when replies never come.

    Args:
        first_id: The first id handed out.
        max_abandoned: How many abandoned ids to remember.
    """

    __slots__ = ("_abandoned", "_counter", "_foreign", "_max_abandoned", "_waiters")

    def __init__(self, first_id: int = 1, *, max_abandoned: int = DEFAULT_MAX_ABANDONED) -> None:
        self._counter: Iterator[int] = itertools.count(first_id)
        self._waiters: dict[RequestId, T] = {}
        self._foreign: set[RequestId] = set()
        self._abandoned: dict[RequestId, None] = {}
        self._max_abandoned = max_abandoned

    def __len__(self) -> int:
        return len(self._waiters)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._waiters

    def next_id(self) -> int:
        """Hand out a fresh id, skipping ids in use.

        Returns:
            An id not pending and not reserved.
        """
        request_id = next(self._counter)
        while request_id in self._waiters or request_id in self._foreign:
            request_id = next(self._counter)
        return request_id

    def add(self, request_id: RequestId, waiter: T) -> None:
        """Register the waiter of a request.

        Args:
            request_id: The id sent.
            waiter: What the reply resolves.

        Raises:
            ValueError: The id is already pending.
        """
        if request_id in self._waiters:
            raise ValueError(f"request id {request_id!r} is already pending")
        self._waiters[request_id] = waiter

    def pop(self, request_id: Any) -> T | None:
        """Remove and return the waiter of ``request_id``.

        Args:
            request_id: The id of a reply (any JSON value).

        Returns:
            The waiter, or None when the id is not pending.
        """
        try:
            return self._waiters.pop(request_id)
        except (KeyError, TypeError):  # TypeError: an unhashable id (list/dict)
            return None

    def abandon(self, request_id: RequestId) -> bool:
        """Stop waiting for a request whose reply may still come.

        Args:
            request_id: The id sent.

        Returns:
            True when the request was still pending (and is now abandoned);
            False when its reply already came or the table was drained.
        """
        if self._waiters.pop(request_id, _MISSING) is _MISSING:
            return False
        abandoned = self._abandoned
        abandoned[request_id] = None
        if len(abandoned) > self._max_abandoned:
            del abandoned[next(iter(abandoned))]
        return True

    def is_late(self, request_id: Any) -> bool:
        """Whether a reply belongs to an abandoned request (forgotten once seen).

        Args:
            request_id: The id of a reply nobody waits for.

        Returns:
            True when the id was abandoned.
        """
        try:
            return self._abandoned.pop(request_id, _MISSING) is not _MISSING
        except TypeError:  # an unhashable id (list/dict)
            return False

    def reserve(self, request_id: Any) -> None:
        """Mark an id the caller sent itself, so ``next_id`` avoids it.

        Args:
            request_id: The id of a request sent outside this table.
        """
        if isinstance(request_id, int | str):
            self._foreign.add(request_id)

    def release(self, request_id: Any) -> bool:
        """Forget a reserved id once its reply came.

        Args:
            request_id: The id of a reply.

        Returns:
            True when the id was reserved.
        """
        try:
            if request_id in self._foreign:
                self._foreign.discard(request_id)
                return True
        except TypeError:
            return False
        return False

    def drain(self) -> list[T]:
        """Remove every waiter (the peer is gone).

        Returns:
            The waiters, in the order their requests were sent.
        """
        waiters = list(self._waiters.values())
        self._waiters.clear()
        self._foreign.clear()
        self._abandoned.clear()
        return waiters
