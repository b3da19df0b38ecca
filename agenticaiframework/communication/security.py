"""The one URL security policy every client applies before connecting.

TLS schemes (https, wss, mqtts, grpcs / secure gRPC) are allowed to any host.
Plain-text schemes are allowed only to literal loopback hosts: ``localhost``,
``127.0.0.0/8`` and ``::1``. ``localhost.evil.com`` is *not* loopback. Anything
else raises :class:`SecurityError` (``ERR_SECURITY``) unless the caller's config
says ``allow_insecure=True``. Also here: origin comparison for redirects and
the names of headers that carry credentials.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from urllib.parse import urlsplit

from .errors import SecurityError

__all__ = [
    "PLAIN_SCHEMES",
    "SECURE_SCHEMES",
    "SENSITIVE_HEADERS",
    "check_endpoint",
    "check_url",
    "is_loopback_host",
    "origin_of",
    "strip_credentials",
]

SECURE_SCHEMES = frozenset({"https", "wss", "mqtts", "grpcs"})
PLAIN_SCHEMES = frozenset({"http", "ws", "mqtt", "grpc", "tcp"})
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
    }
)
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443, "mqtt": 1883, "mqtts": 8883}


@lru_cache(maxsize=1024)
def is_loopback_host(host: str) -> bool:
    """Tell whether ``host`` is literally a loopback name or address.

    Args:
        host: A host name or IP literal (brackets around IPv6 allowed).

    Returns:
        True for ``localhost``, ``127.0.0.0/8`` and ``::1``; False otherwise,
        including for names that merely start with ``localhost``.
    """
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_endpoint(*, secure: bool, host: str, allow_insecure: bool, what: str) -> None:
    """Refuse a plain-text endpoint on a non-loopback host.

    Args:
        secure: Whether the transport uses TLS.
        host: The host that would be contacted.
        allow_insecure: The config's explicit opt-out.
        what: How to name the endpoint in the error (a URL or target).

    Raises:
        SecurityError: Plain text to a non-loopback host without opt-out.
    """
    if secure or allow_insecure or is_loopback_host(host):
        return
    raise SecurityError(
        f"refusing plain-text connection to non-loopback host {host!r} ({what}): "
        "use a TLS scheme, or set allow_insecure=True to opt out"
    )


def check_url(
    url: str, *, allow_insecure: bool = False, schemes: frozenset[str] | None = None
) -> None:
    """Apply the policy to a URL.

    Args:
        url: An absolute URL.
        allow_insecure: The config's explicit opt-out.
        schemes: The schemes this client speaks; others are refused.

    Raises:
        SecurityError: Unknown scheme, no host, or plain text to a
            non-loopback host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if schemes is not None and scheme not in schemes:
        raise SecurityError(
            f"unsupported URL scheme {scheme!r} in {_safe(url)}; expected one of "
            f"{', '.join(sorted(schemes))}"
        )
    host = parts.hostname
    if not host:
        raise SecurityError(f"URL has no host: {_safe(url)}")
    check_endpoint(
        secure=scheme in SECURE_SCHEMES,
        host=host,
        allow_insecure=allow_insecure,
        what=_safe(url),
    )


def origin_of(url: str) -> tuple[str, str, int | None]:
    """The (scheme, host, port) origin of a URL, default ports filled in.

    Args:
        url: An absolute URL.

    Returns:
        The origin triple, lower-cased.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def strip_credentials(headers: MutableMapping[str, str], extra: Iterable[str] = ()) -> None:
    """Remove every header that carries credentials, in place.

    Args:
        headers: Headers to clean (case-insensitive names are compared lower-cased).
        extra: More header names to treat as credentials (e.g. a custom API-key header).
    """
    sensitive = SENSITIVE_HEADERS.union(name.lower() for name in extra)
    for name in [n for n in headers if n.lower() in sensitive]:
        del headers[name]


def _safe(url: str) -> str:
    """The URL without userinfo, so passwords never reach messages or logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()
