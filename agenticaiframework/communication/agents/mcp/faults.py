"""What a failure that is not one of our errors becomes, for the MCP transports.

The wire already raises our errors; what else can fail under a transport is
code of the user's (an ``Auth`` subclass that asks a token agent, a custom
httpx transport) or a plain OS failure. The caller gets the matching error of
ours with the original chained as ``__cause__`` and named in the message,
never a stand-in ("the client was closed") and never a hang.
"""

from __future__ import annotations

import builtins

import httpx

from ...core import errors
from ...core.security import redact_text
from ...http.engine import translate_error

__all__ = ["as_communication_error"]


def as_communication_error(exc: BaseException, what: str, url: str) -> errors.CommunicationError:
    """The error of our hierarchy for ``exc``, raised while doing ``what``.

    Args:
        exc: The failure (ours is returned as it is).
        what: What was being done (``"tools/call"``, ``"the GET stream"`` ...);
            the message starts with it.
        url: The URL involved (printed redacted).

    Returns:
        ``exc`` itself when it is ours; otherwise TimeoutError for a timeout,
        ConnectionError for an OS or stream failure (refused, reset, closed
        early), the mapped error for an httpx one, else CommunicationError;
        raise it ``from exc``.
    """
    if isinstance(exc, errors.CommunicationError):
        return exc
    if isinstance(exc, httpx.HTTPError | httpx.InvalidURL):
        mapped = translate_error(exc, url)
        return type(mapped)(f"{what}: {mapped.message}")
    text = redact_text(str(exc))[:300]
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, builtins.TimeoutError):
        return errors.TimeoutError(f"{what}: timed out ({detail})")
    if isinstance(exc, OSError | EOFError):
        return errors.ConnectionError(f"{what}: connection failed ({detail})")
    return errors.CommunicationError(f"{what}: failed ({detail})")
