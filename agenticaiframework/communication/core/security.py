"""The one URL security policy every client applies before connecting.

TLS schemes (https, wss, mqtts, grpcs / secure gRPC) are allowed to any host.
Plain-text schemes are allowed only to literal loopback hosts: ``localhost``,
``127.0.0.0/8`` and ``::1``. ``localhost.evil.com`` is *not* loopback. Anything
else raises :class:`SecurityError` (``ERR_SECURITY``) unless the caller's config
says ``allow_insecure=True``. Also here: origin comparison for redirects and
the names of headers that carry credentials, the classification of local
addresses (every spelling of loopback, unspecified, link-local and private),
and :func:`redact_url` / :func:`redact_text` / :func:`redact_headers`: the one
redaction every repr, error message and log line goes through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable, Mapping, MutableMapping
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from .errors import ConfigError, SecurityError

__all__ = [
    "PLAIN_SCHEMES",
    "REDACTED",
    "SECURE_SCHEMES",
    "SENSITIVE_HEADERS",
    "RedactingFilter",
    "check_endpoint",
    "check_not_local",
    "check_url",
    "grpc_target_hosts",
    "install_log_redaction",
    "is_credential_header",
    "is_local_address",
    "is_loopback_host",
    "is_secret_name",
    "origin_of",
    "parse_ip",
    "redact_headers",
    "redact_text",
    "redact_url",
    "resolves_to_local",
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
REDACTED = "***"
"""What a secret is replaced with wherever we print it."""

# A header or query parameter whose name contains one of these words is treated
# as a credential: "Private-Token", "X-Goog-Api-Key", "X-Amz-Signature", "sig".
_SECRET_NAME = re.compile(
    r"auth|token|secret|passw|pwd|api[-_]?key|apikey|(^|[-_.])key($|[-_.])|sig($|nature|[-_.])"
    r"|credential|session|cookie|bearer|jwt|assertion|^code$|private",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")
_BEARER_IN_TEXT = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}")
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
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"invalid URL {redact_url(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if "://" not in url:
        wanted = sorted(schemes) if schemes else ["https", "http"]
        plain = next((s for s in wanted if s in PLAIN_SCHEMES), wanted[0])
        secure = next((s for s in wanted if s in SECURE_SCHEMES), wanted[0])
        typed = url.lstrip("/").split("/", 1)[0].rsplit("@", 1)[-1]
        typed = typed[1:].split("]", 1)[0] if typed.startswith("[") else typed.rsplit(":", 1)[0]
        guess = f"{plain if is_loopback_host(typed) else secure}://{url.lstrip('/')}"
        raise ConfigError(
            f"URL {redact_url(url)!r} has no scheme: did you mean {redact_url(guess)!r}?"
        )
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
    extra_names = frozenset(name.lower() for name in extra)
    for name in [n for n in headers if is_credential_header(n, extra_names)]:
        del headers[name]


def is_secret_name(name: str) -> bool:
    """Tell whether a header or query-parameter name looks like it carries a secret.

    Args:
        name: The name, any case.

    Returns:
        True for names such as ``Authorization``, ``X-Goog-Api-Key``,
        ``Private-Token``, ``api_key``, ``sig`` or ``X-Amz-Signature``.
    """
    return name.lower() in SENSITIVE_HEADERS or _SECRET_NAME.search(name) is not None


def is_credential_header(name: str, extra: Iterable[str] = ()) -> bool:
    """Tell whether a header must be dropped on a cross-origin hop and redacted in output.

    Args:
        name: The header name, any case.
        extra: More names (lower or any case) the user declared as credentials.

    Returns:
        True when the name is a known credential header, looks like one
        (see :func:`is_secret_name`), or is in ``extra``.
    """
    lowered = name.lower()
    if lowered in SENSITIVE_HEADERS or is_secret_name(lowered):
        return True
    return any(lowered == other.lower() for other in extra)


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], extra: Iterable[str] = ()
) -> dict[str, str]:
    """A copy of ``headers`` with every credential value replaced by ``***``.

    Args:
        headers: A mapping or pairs of header names and values.
        extra: More header names to treat as credentials.

    Returns:
        A new dict, safe to print.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    extra_names = tuple(extra)
    return {
        str(name): (REDACTED if is_credential_header(str(name), extra_names) else str(value))
        for name, value in items
    }


def redact_url(url: object) -> str:
    """The URL with its password and every secret-looking query value replaced by ``***``.

    The one redaction function for URLs: every repr, error message and log line
    of the package prints URLs through it. It never raises: a URL that cannot
    be parsed is redacted as text.

    Args:
        url: A URL (str, ``httpx.URL`` or anything whose ``str()`` is a URL).

    Returns:
        The printable URL.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return _redact_unparsed(text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            netloc = f"{user}:{REDACTED}@{hostport}"
        elif user:
            # A lone userinfo part (``https://TOKEN@host``) is how many services
            # take a token: it is redacted as well.
            netloc = f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        query = _redact_query(query)
    fragment = parts.fragment
    if fragment and "=" in fragment:
        fragment = _redact_query(fragment)
    if netloc == parts.netloc and query == parts.query and fragment == parts.fragment:
        return text
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: object) -> str:
    """Redact every URL and every ``Bearer``/``Basic`` credential inside free text.

    Args:
        text: A message, e.g. a backend's exception text that quotes a URL.

    Returns:
        The text with :func:`redact_url` applied to each URL in it.
    """
    value = str(text)
    if "://" in value:
        value = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), value)
    return _BEARER_IN_TEXT.sub(lambda m: f"{m.group(1)} {REDACTED}", value)


def _redact_query(query: str) -> str:
    pairs = []
    changed = False
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        if eq and value and is_secret_name(_unquote_name(name)):
            pairs.append(f"{name}={REDACTED}")
            changed = True
        else:
            pairs.append(piece)
    return "&".join(pairs) if changed else query


def _unquote_name(name: str) -> str:
    try:
        return parse_qsl(f"{name}=x", keep_blank_values=True)[0][0]
    except (IndexError, ValueError):
        return name


def _redact_unparsed(text: str) -> str:
    # userinfo up to the last "@" before the path, then query values by name.
    text = re.sub(r"(://[^/@\s:]*):[^/@\s]*@", rf"\1:{REDACTED}@", text)
    return re.sub(
        r"([?&;])([^=&#\s]+)=([^&#\s]*)",
        lambda m: (
            f"{m.group(1)}{m.group(2)}={REDACTED if is_secret_name(m.group(2)) else m.group(3)}"
        ),
        text,
    )


def _safe(url: str) -> str:
    """Backward-compatible alias of :func:`redact_url`."""
    return redact_url(url)


# --- local addresses -------------------------------------------------------------


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse ``host`` as an IP address in any spelling a resolver accepts.

    Besides the dotted quad this accepts what ``inet_aton`` accepts and what
    browsers and C libraries resolve: ``127.1``, ``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``; IPv6 with or without brackets and zone id; IPv4-mapped IPv6
    (``::ffff:127.0.0.1``) is returned as the IPv4 address it maps.

    Args:
        host: A host name or address literal.

    Returns:
        The address, or None when ``host`` is a name.
    """
    h = host.strip().lower().rstrip(".")
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.split("%", 1)[0]
    if not h:
        return None
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(h)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", h) or not h[0].isdigit():
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def is_local_address(host: str) -> bool:
    """Tell whether ``host`` names this machine or a non-public network, in any spelling.

    Local: ``localhost`` and ``*.localhost``, loopback, the unspecified address
    (``0.0.0.0``, ``::``), link-local (``169.254.0.0/16`` cloud metadata,
    ``fe80::/10``), private, shared, reserved and multicast ranges, whatever the
    spelling (``127.1``, ``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``).
    A name is not resolved here: see :func:`resolves_to_local`.

    Args:
        host: A host name or address literal.

    Returns:
        True when the host is local by its spelling alone.
    """
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = parse_ip(name)
    if address is None:
        return False
    return not address.is_global or address.is_multicast


async def resolves_to_local(host: str, port: int | None = None) -> bool:
    """Tell whether ``host`` is local by spelling or after DNS resolution.

    A name that resolves to any local address counts as local. Resolution uses
    the event loop's resolver, so it does not block. A name that does not
    resolve is not local (the connection will fail on its own).

    Args:
        host: A host name or address literal.
        port: The port, passed to the resolver.

    Returns:
        True when any address the host stands for is local.
    """
    if is_local_address(host):
        return True
    if parse_ip(host) is not None:
        return False
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return False
    return any(is_local_address(str(info[4][0])) for info in infos)


async def check_not_local(url: str, *, what: str = "URL") -> None:
    """Refuse a URL whose host is this machine or a non-public network.

    Used for every URL a remote document (a tool manual, an OpenAPI document,
    an agent card) makes us touch.

    Args:
        url: The URL to check.
        what: How to name the URL in the error.

    Raises:
        SecurityError: The host is local by spelling or resolves to a local address.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise SecurityError(f"invalid {what} {redact_url(url)!r}: {exc}") from exc
    if not host or await resolves_to_local(host, port):
        raise SecurityError(
            f"{what} {redact_url(url)!r} points at this machine or a private network, "
            "which a remote document may not do"
        )


# --- log redaction ---------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URLs and credentials in every record it sees.

    Installed on the ``httpx``, ``httpcore`` and ``websockets`` loggers (see
    :func:`install_log_redaction`), whose lines quote URLs and headers we
    cannot change at the source.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = _redact_header_lines(redact_text(message))
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_REDACTED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.connection",
    "httpcore.proxy",
    "websockets",
    "websockets.client",
    "websockets.server",
)
_redacting_filter = RedactingFilter()
_HEADER_LINE = re.compile(r"(?im)^([>< ]*)([A-Za-z0-9-]+)(:\s*)(.+)$")
# A request line as websockets logs it: "> GET /ws?token=... HTTP/1.1".
_REQUEST_LINE = re.compile(r"(?m)^([>< ]*[A-Z]+ [^?\s]*\?)(\S+)( HTTP/\d(?:\.\d)?)$")


def _redact_header_lines(text: str) -> str:
    if "?" in text:
        text = _REQUEST_LINE.sub(
            lambda m: f"{m.group(1)}{_redact_query(m.group(2))}{m.group(3)}", text
        )
    if ":" not in text:
        return text
    return _HEADER_LINE.sub(
        lambda m: (
            f"{m.group(1)}{m.group(2)}{m.group(3)}{REDACTED}"
            if is_credential_header(m.group(2))
            else m.group(0)
        ),
        text,
    )


def install_log_redaction(names: Iterable[str] = _REDACTED_LOGGERS) -> None:
    """Install :class:`RedactingFilter` on third-party loggers that print URLs or headers.

    Idempotent. The package calls it when a client is first created, so that
    ``httpx``'s INFO request lines and ``websockets``' DEBUG header dumps never
    carry a password, token or API key; call it yourself to cover more loggers.

    Args:
        names: Logger names to protect.
    """
    for name in names:
        logger = logging.getLogger(name)
        if _redacting_filter not in logger.filters:
            logger.addFilter(_redacting_filter)


# --- gRPC targets ----------------------------------------------------------------

_GRPC_DEFAULT_PORT = 443
_GRPC_LOCAL_SCHEMES = frozenset({"unix", "unix-abstract"})
_GRPC_READ_SCHEMES = frozenset({"dns", "ipv4", "ipv6"}) | _GRPC_LOCAL_SCHEMES
# Resolvers grpcio registers whose addresses we cannot see: a VM socket, xDS,
# Google's directpath. "name:port" with one of these names is that resolver.
_GRPC_OPAQUE_SCHEMES = frozenset({"vsock", "xds", "google-c2p", "google-c2p-experimental", "fake"})
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_DNS_HOST = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_DIGITS = re.compile(r"[0-9]+")


def grpc_target_hosts(target: str) -> list[tuple[str, int | None]]:
    """Every ``(host, port)`` a gRPC target makes grpcio dial, read as grpcio reads it.

    Forms: ``host:port``, ``host`` (port 443), ``[v6]:port``, a bare IPv6
    literal, ``grpc://`` / ``grpcs://`` around any of these, ``dns:host:port``
    and ``dns:///host:port``, and the address lists ``ipv4:a:p,b:p`` and
    ``ipv6:[a]:p,[b]:p``. Schemes are case-insensitive, ``%``-escapes are
    decoded and a ``?query`` or ``#fragment`` is dropped, as grpcio does, so
    an address cannot hide from the check. ``name:port``, where ``name`` is
    no resolver grpcio has, is a host and port (grpcio dials
    ``dns:///name:port``).

    ``unix:`` and ``unix-abstract:`` sockets are on this machine: they are
    reported as ``("localhost", None)`` (plain text to them is fine for a
    client; a remote document may not point at them, see
    :func:`is_local_address`).

    Args:
        target: A gRPC target as given to a client.

    Returns:
        The hosts (names or address literals, IPv6 without brackets) and ports,
        in the order grpcio tries them.

    Raises:
        SecurityError: A resolver whose addresses cannot be checked: ``dns:``
            with an authority (a chosen DNS server), ``vsock:``, ``xds:``,
            ``google-c2p:``, or any other scheme not followed by a port; the
            message names the scheme.
        ConfigError: A malformed target: no host, a bad address, or a port
            that is not a number in 1-65535; the message names the target.
    """
    text = target.strip()
    web = text.split("://", 1)[0].lower() if "://" in text else ""
    if web in {"http", "https", "ws", "wss", "h2c"}:
        try:
            parts = urlsplit(text)
            address = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        except ValueError:
            address = "host:port"
        raise ConfigError(
            f"target: a gRPC target is host:port, grpc://host:port or grpcs://host:port, "
            f"not a URL like {redact_url(target)!r} (did you mean {address!r}?)"
        )
    if text.lower().startswith(("grpc://", "grpcs://")):
        text = text.split("://", 1)[1].rstrip("/")
    if not text:
        raise ConfigError(f"target: empty gRPC target {redact_url(target)!r}")
    head, colon, rest = text.partition(":")
    scheme = head.lower()
    if not colon or not _URI_SCHEME.fullmatch(head) or parse_ip(text) is not None:
        return [_grpc_host_port(_grpc_uri_path("///" + text, target), target, "dns")]
    if scheme not in _GRPC_READ_SCHEMES:
        if scheme in _GRPC_OPAQUE_SCHEMES:
            raise SecurityError(
                f"gRPC target {redact_url(target)!r}: the {scheme!r} resolver picks addresses "
                "that cannot be checked against the security policy"
            )
        if not _DIGITS.fullmatch(_grpc_uri_parts(rest, target)[1]):
            raise SecurityError(
                f"gRPC target {redact_url(target)!r}: {head!r} is neither a host followed by a "
                "port nor a scheme whose addresses can be checked (dns, ipv4, ipv6, unix)"
            )
        # "name:port": grpcio has no resolver "name" and dials dns:///name:port.
        return [_grpc_host_port(_grpc_uri_path("///" + text, target), target, "dns")]
    if scheme in _GRPC_LOCAL_SCHEMES:
        return [("localhost", None)]
    authority, path = _grpc_uri_parts(rest, target)
    if scheme == "dns":
        if authority:
            raise SecurityError(
                f"gRPC target {redact_url(target)!r}: 'dns' with an authority asks the DNS "
                f"server {authority!r}, whose answers cannot be checked (use dns:///host:port)"
            )
        return [_grpc_host_port(path.removeprefix("/"), target, "dns")]
    if authority:
        raise ConfigError(f"target: {scheme}: takes no authority in {redact_url(target)!r}")
    hosts = [
        _grpc_host_port(item.removeprefix("/"), target, scheme) for item in path.split(",") if item
    ]
    if not hosts:
        raise ConfigError(f"target: no address in gRPC target {redact_url(target)!r}")
    return hosts


def _grpc_uri_parts(rest: str, target: str) -> tuple[str, str]:
    """Authority and path of ``scheme:<rest>``, split and decoded as grpcio's URI parser does."""
    from urllib.parse import unquote

    for mark in "?#":
        rest = rest.split(mark, 1)[0]
    authority, path = "", rest
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        path = slash + path
    try:
        return unquote(authority, errors="strict"), unquote(path, errors="strict")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"target: bad %-escape in {redact_url(target)!r}") from exc


def _grpc_uri_path(text: str, target: str) -> str:
    return _grpc_uri_parts(text, target)[1].removeprefix("/")


def _grpc_host_port(hostport: str, target: str, scheme: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` as grpcio does; check the host's form and the port's range."""
    what = f"gRPC target {redact_url(target)!r}"
    port_text = ""
    if hostport.startswith("["):
        host, bracket, tail = hostport[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ConfigError(f"target: unbalanced '[' in {what}")
        port_text = tail[1:]
        if not _is_ip(host, 6):
            raise ConfigError(f"target: {host!r} is not an IPv6 address in {what}")
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    else:
        host = hostport  # no port, or a bare IPv6 literal
    if scheme == "ipv4" and not _is_ip(host, 4):
        raise ConfigError(f"target: {host!r} is not an IPv4 address in {what}")
    if scheme == "ipv6" and not hostport.startswith("["):
        raise ConfigError(f"target: write ipv6: addresses as [address]:port in {what}")
    if not host or not (_DNS_HOST.fullmatch(host) or _is_ip(host, 6)):
        raise ConfigError(f"target: invalid host {host!r} in {what}")
    if not port_text:
        if scheme in ("ipv4", "ipv6"):
            raise ConfigError(f"target: no port for {host!r} in {what}")
        return host, _GRPC_DEFAULT_PORT
    if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) <= 65535:
        raise ConfigError(f"target: port {port_text!r} is not in 1-65535 in {what}")
    return host, int(port_text)


def _is_ip(host: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(host).version == version
    except ValueError:
        return False
