"""The I/O-free part of the WebSocket client: close policy, ids, auth, headers, redirects.

Nothing here touches a socket, so it is tested on its own. The asyncio code in
:mod:`~agenticaiframework.communication.websocket.client` asks these functions what
a close code means, how to tag a request, what a first-message auth reply
says, whether handshake headers can be sent, and where a redirect leads with
which headers.

Close policy (what the client does when a connection ends):

* ``1000`` from the server, or any close we started: **normal**, iteration
  ends quietly and nothing reconnects.
* no close frame at all (``1006``: reset, keepalive timeout), ``1001`` going
  away, ``1011`` server error, ``1012`` service restart, ``1013`` try again
  later, ``1014`` bad gateway: **reconnect** (when ``auto_reconnect``).
* we closed with ``1009`` because an incoming message was over
  ``max_message_size``: **too big**, reported as ``MessageTooLargeError`` and
  then handled like a reconnectable drop.
* any other code (``1002`` protocol error, ``1008`` policy, ``1009`` sent by
  the server, application codes ``4000``-``4999``...): **fatal**, iteration ends
  with ``ConnectionError`` carrying the code and reason.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from collections.abc import Container, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from ..core.errors import ConfigError
from ..core.security import is_credential_header, origin_of

__all__ = [
    "NORMAL_CLOSE",
    "RECONNECT_CODES",
    "REDIRECT_STATUSES",
    "AuthReply",
    "CloseAction",
    "RequestIds",
    "auth_reply",
    "check_close",
    "classify_close",
    "describe_close",
    "hop_headers",
    "redirect_target",
    "with_query",
]

NORMAL_CLOSE = 1000
ABNORMAL_CLOSE = 1006
MESSAGE_TOO_BIG = 1009
RECONNECT_CODES = frozenset({1001, ABNORMAL_CLOSE, 1011, 1012, 1013, 1014})
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})
REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})
# RFC 9110 token for names; visible ASCII, space and tab for values (no CR,
# LF, NUL or other controls, nothing outside ASCII).

_CLOSE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1006: "connection lost without a close frame",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
}


class CloseAction(enum.Enum):
    """What to do after a connection ended."""

    NORMAL = "normal"
    RECONNECT = "reconnect"
    TOO_BIG = "too_big"
    FATAL = "fatal"


def classify_close(
    code: int | None, *, sent_code: int | None = None, sent_first: bool = False, ours: bool = False
) -> CloseAction:
    """Decide what a connection's end means.

    Args:
        code: The close code received (``1006`` or None when none was).
        sent_code: The close code we sent, if any.
        sent_first: Whether we sent our close frame before receiving one.
        ours: Whether the user asked to close.

    Returns:
        The action (see the module docstring for the policy).
    """
    if ours:
        return CloseAction.NORMAL
    if sent_code == MESSAGE_TOO_BIG and (sent_first or code in (None, ABNORMAL_CLOSE)):
        return CloseAction.TOO_BIG
    if code == NORMAL_CLOSE:
        return CloseAction.NORMAL
    if code is None or code in RECONNECT_CODES:
        return CloseAction.RECONNECT
    return CloseAction.FATAL


def check_close(code: int, reason: str) -> None:
    """Check that a close code and reason may be sent (RFC 6455, section 7.4).

    Args:
        code: 1000-1003, 1007-1014, or 3000-4999.
        reason: At most 123 bytes of UTF-8.

    Raises:
        ConfigError: The code is reserved or out of range, or the reason is too long.
    """
    if (
        isinstance(code, bool)
        or not isinstance(code, int)
        or not (code in _SENDABLE_CODES or 3000 <= code <= 4999)
    ):
        raise ConfigError(f"code: {code!r} cannot be sent in a close frame")
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > 123:
        raise ConfigError("reason: must be a str of at most 123 UTF-8 bytes")


def describe_close(code: int | None, reason: str | None) -> str:
    """Say what a close code and reason mean, for error messages and logs.

    Args:
        code: The close code, or None.
        reason: The close reason, or None.

    Returns:
        For example ``"code 1011 (internal error): db down"``.
    """
    if code is None:
        return "no close code"
    name = _CLOSE_NAMES.get(code, "application code" if 4000 <= code <= 4999 else "close code")
    text = f"code {code} ({name})"
    return f"{text}: {reason}" if reason else text


class RequestIds:
    """Generates request ids unique to one client: ``<random prefix>-<counter>``."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:8]
        self._counter = itertools.count(1)

    def next(self) -> str:
        """The next id.

        Returns:
            A string id never returned before by this generator.
        """
        return f"{self._prefix}-{next(self._counter)}"


class AuthReply(enum.Enum):
    """How a message received during the first-message auth handshake reads."""

    SUCCESS = "success"
    ERROR = "error"
    PROMPT = "prompt"
    OTHER = "other"


def auth_reply(message: Any, success: Container[str], error: Container[str]) -> AuthReply:
    """Classify a message received while waiting for the auth verdict.

    Args:
        message: The decoded message.
        success: ``type`` values meaning success.
        error: ``type`` values meaning refusal.

    Returns:
        SUCCESS, ERROR, PROMPT (``auth_required``, to skip) or OTHER (an
        unrelated message, to deliver once authenticated).
    """
    if not isinstance(message, Mapping):
        return AuthReply.OTHER
    kind = message.get("type")
    if kind in success:
        return AuthReply.SUCCESS
    if kind in error:
        return AuthReply.ERROR
    if kind == "auth_required":
        return AuthReply.PROMPT
    return AuthReply.OTHER


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Append query parameters to a URL (for API keys sent in the query).

    Args:
        url: The URL.
        params: Parameters to add.

    Returns:
        The URL with ``params`` appended to its query.
    """
    if not params:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return parts._replace(query=query).geturl()


def redirect_target(url: str, status: int, location: str | None) -> str | None:
    """Where a handshake response redirects to.

    Args:
        url: The URL the handshake was sent to.
        status: The response status.
        location: The ``Location`` header, if any.

    Returns:
        The absolute URL of the next hop, or None when the response is not a
        redirect (not 300-303/307/308, or no ``Location``).
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    return urljoin(url, location)


def hop_headers(
    headers: Mapping[str, str], old_url: str, new_url: str, credentials: Iterable[str]
) -> dict[str, str]:
    """The handshake headers to send on a redirect hop.

    Same origin (scheme, host, port): all of them. Another origin: every
    credential header is dropped, those that look like one (``Authorization``,
    ``Cookie``, ``X-API-Key``, ``Private-Token``... see
    :func:`~agenticaiframework.communication.core.security.is_credential_header`)
    and those named in ``credentials``.

    Args:
        headers: The headers sent to ``old_url``.
        old_url: The URL that answered with the redirect.
        new_url: The next hop.
        credentials: More header names to treat as credentials (the auth
            object's headers, ``credential_headers`` from the config).

    Returns:
        A new dict of headers for ``new_url``.
    """
    if origin_of(old_url) == origin_of(new_url):
        return dict(headers)
    extra = tuple(credentials)
    return {k: v for k, v in headers.items() if not is_credential_header(k, extra)}
