"""URL-mode elicitation (MCP 2025-11-25, SEP-1036): the server asks the user to open a URL.

For what must not pass through the client (a login at a third party, a
payment, an API key typed into the service's own page), the server sends
``elicitation/create`` with ``mode: "url"``, a ``url``, a ``message`` and an
``elicitationId``; the client shows them to the user, who may open the URL,
and answers ``accept``, ``decline`` or ``cancel`` (no content: what the user
does happens out of band). A server may also refuse a request with error
-32042 (:class:`URLElicitationRequiredError`) naming URL elicitations to
complete before retrying, and later send ``notifications/elicitation/complete``.

The client never opens the URL itself. It is checked first: ``https``, or
``http`` only to this machine; anything else (``javascript:``, ``file:``,
plain HTTP to another host) is declined without asking the user.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...core import errors
from ...core.security import check_url, redact_url
from ...stdio import jsonrpc

__all__ = [
    "URL_ELICITATION_REQUIRED",
    "URLElicitationHandler",
    "URLElicitationRequiredError",
    "answer_url_elicitation",
]

URL_ELICITATION_REQUIRED = -32042
"""The JSON-RPC error code of a request refused until URL elicitations are completed."""

URLElicitationHandler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]] | Mapping[str, Any]]
"""Gets ``{"mode": "url", "url", "message", "elicitationId"}``; returns ``{"action": ...}``."""

_ACTIONS = frozenset({"accept", "decline", "cancel"})
_URL_SCHEMES = frozenset({"https", "http"})


class URLElicitationRequiredError(errors.RemoteError):
    """The server refused a request until the user completes URL elicitations (-32042).

    Show each one to the user (its ``message`` and ``url``), then retry the request.

    Attributes:
        elicitations: The URL elicitations the server named (``mode``,
            ``url``, ``message``, ``elicitationId``), those that are objects.
    """

    code = "ERR_URL_ELICITATION_REQUIRED"

    def __init__(self, message: str, *, remote_code: Any = None, data: Any = None) -> None:
        super().__init__(message, remote_code=remote_code, data=data)
        items = data.get("elicitations") if isinstance(data, dict) else None
        self.elicitations: list[dict[str, Any]] = (
            [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
        )

    @classmethod
    def from_remote(cls, error: errors.RemoteError) -> URLElicitationRequiredError:
        """The same error, as this class."""
        return cls(error.message, remote_code=error.remote_code, data=error.data)


async def answer_url_elicitation(
    handler: URLElicitationHandler, params: Mapping[str, Any], logger: logging.Logger
) -> dict[str, str]:
    """The client's answer to a URL-mode ``elicitation/create``.

    Args:
        handler: The user's handler.
        params: The request's params.
        logger: Where a declined URL is reported.

    Returns:
        ``{"action": "accept" | "decline" | "cancel"}``.

    Raises:
        RemoteError: Invalid params (answered to the server as -32602).
        ConfigError: The handler answered something else than an action.
    """
    url, elicitation_id = params.get("url"), params.get("elicitationId")
    if not isinstance(url, str) or not url or not isinstance(elicitation_id, str):
        raise errors.RemoteError(
            "URL elicitation: 'url' and 'elicitationId' must be strings",
            remote_code=jsonrpc.INVALID_PARAMS,
        )
    try:
        check_url(url, schemes=_URL_SCHEMES)
    except errors.CommunicationError:  # SecurityError, or ConfigError for a bad URL
        logger.warning(
            "declined a URL elicitation without asking: %s is not https (or http to this machine)",
            redact_url(url)[:200],
        )
        return {"action": "decline"}
    answer = handler(dict(params))
    if inspect.isawaitable(answer):
        answer = await answer
    action = answer.get("action") if isinstance(answer, Mapping) else None
    if action not in _ACTIONS:
        raise errors.ConfigError(
            "url_elicitation_handler: must return {'action': 'accept' | 'decline' | 'cancel'}, "
            f"got {type(answer).__name__}"
        )
    return {"action": str(action)}
