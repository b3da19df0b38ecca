"""Agent discovery from AID records: parse ``_agent.<domain>`` TXT records and open a client.

An AID record (Agent Identity & Discovery) is one DNS TXT record such as::

    _agent.example.com. 300 IN TXT "v=aid1;p=websocket;uri=wss://events.example.com/stream;desc=Feed"

:func:`parse_record` turns its text into an :class:`AgentRecord` following the
rules of the reference implementation (``aid-discovery`` 2.1.1): keys are
case-insensitive, values are not (``v=AID1`` and ``p=WebSocket`` are invalid);
the short keys ``u``, ``p``, ``s``, ``d``, ``a``, ``e``, ``k`` and ``i`` stand for
``uri``, ``proto``, ``desc``, ``docs``, ``auth``, ``dep``, ``pka`` and ``kid``;
a record split across several TXT strings is joined before parsing; unknown
keys are ignored. Remote protocols need an ``https://`` URI; ``p=websocket``
needs ``wss://`` and anything else fails with :class:`DiscoverySecurityError`
(``ERR_SECURITY``), as the AID WebSocket proposal requires, whatever the host.

:func:`discover` looks the record up over DNS with dnspython's asyncio resolver
(only at the name servers given, when given: no silent fallback elsewhere), and
:func:`connect_agent` returns the matching client, not yet connected.

Errors carry the AID error names as their ``code``::

    DiscoveryError (CommunicationError)          ERR_NO_RECORD, ERR_INVALID_TXT,
    │                                            ERR_UNSUPPORTED_PROTO, ERR_DNS_LOOKUP_FAILED
    └── DiscoverySecurityError (+SecurityError)  ERR_SECURITY

Not implemented here: the ``.well-known/agent`` HTTPS fallback, the PKA
endpoint-proof handshake and DNSSEC validation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as _dt
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdtypes.ANY.TXT
import dns.resolver

from ..core.errors import CommunicationError, ConfigError, SecurityError
from ..http.client import HTTPClient

if TYPE_CHECKING:
    from ..grpc.client import GRPCClient
    from ..stdio.client import STDIOClient
    from ..websocket.client import WebSocketClient

__all__ = [
    "AID_ERROR_CODES",
    "AUTH_TOKENS",
    "DNS_SUBDOMAIN",
    "LOCAL_URI_SCHEMES",
    "PROTOCOL_TOKENS",
    "SUPPORTED_VERSIONS",
    "AgentClient",
    "AgentRecord",
    "DiscoveryError",
    "DiscoverySecurityError",
    "LocalConsent",
    "connect_agent",
    "discover",
    "local_command",
    "parse_record",
]

SUPPORTED_VERSIONS: Final = ("aid1", "aid2")
"""Record versions accepted in ``v=`` (exact, lower case)."""

PROTOCOL_TOKENS: Final = frozenset(
    {"a2a", "graphql", "grpc", "local", "mcp", "openapi", "ucp", "websocket", "zeroconf"}
)
"""Every ``proto`` token the AID registry defines."""

AUTH_TOKENS: Final = frozenset(
    {"apikey", "basic", "custom", "mtls", "none", "oauth2_code", "oauth2_device", "pat"}
)
"""Every ``auth`` hint token the AID registry defines."""

LOCAL_URI_SCHEMES: Final = ("docker", "npx", "pip")
"""URI schemes allowed for ``proto=local``."""

DNS_SUBDOMAIN: Final = "_agent"
"""The label under which a domain publishes its AID record."""

AID_ERROR_CODES: Final = MappingProxyType(
    {
        "ERR_NO_RECORD": 1000,
        "ERR_INVALID_TXT": 1001,
        "ERR_UNSUPPORTED_PROTO": 1002,
        "ERR_SECURITY": 1003,
        "ERR_DNS_LOOKUP_FAILED": 1004,
        "ERR_FALLBACK_FAILED": 1005,
    }
)
"""The AID error names and the numeric codes the AID tools use for them."""

# (full key, short alias), in the order the reference checks them.
_ALIASES: Final = (
    ("proto", "p"),
    ("uri", "u"),
    ("auth", "a"),
    ("desc", "s"),
    ("docs", "d"),
    ("dep", "e"),
    ("pka", "k"),
    ("kid", "i"),
)
_DESC_MAX_BYTES: Final = 60
_DEP_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_LOCAL_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>.*)$", re.DOTALL)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_HTTP_PROTOCOLS: Final = frozenset({"mcp", "openapi", "a2a", "graphql", "ucp"})


class DiscoveryError(CommunicationError):
    """Discovery failed; ``code`` is the AID error name.

    Codes: ``ERR_NO_RECORD`` (no ``_agent`` TXT record), ``ERR_INVALID_TXT``
    (a record is malformed, or several valid ones compete),
    ``ERR_UNSUPPORTED_PROTO`` (unknown protocol, or one this library cannot
    open), ``ERR_DNS_LOOKUP_FAILED`` (the DNS query itself failed).

    Args:
        message: What went wrong, naming the offending key or name.
        code: One of :data:`AID_ERROR_CODES`.
    """

    code = "ERR_INVALID_TXT"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        if code is not None and code not in AID_ERROR_CODES:
            raise ValueError(f"code: not an AID error name: {code!r}")
        super().__init__(message, code=code)

    @property
    def aid_code(self) -> int:
        """The numeric AID code (1000 for ``ERR_NO_RECORD``, ...)."""
        return AID_ERROR_CODES[self.code]


class DiscoverySecurityError(DiscoveryError, SecurityError):
    """A record or its use breaks the security policy (``ERR_SECURITY``).

    Raised for a ``p=websocket`` URI that is not ``wss://``, and for a
    ``p=local`` record the caller did not consent to run. It is both a
    :class:`DiscoveryError` and the library's :class:`SecurityError`.
    """

    code = "ERR_SECURITY"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="ERR_SECURITY")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentRecord:
    """One validated AID record, keys under their full names.

    Attributes:
        v: The version, ``"aid1"`` or ``"aid2"``.
        uri: The agent endpoint (or, for ``local``, the package locator).
        proto: The protocol token, one of :data:`PROTOCOL_TOKENS`.
        auth: The auth hint token, if any.
        desc: A short human description (at most 60 UTF-8 bytes), if any.
        docs: An ``https://`` documentation URL, if any.
        dep: The deprecation time (``YYYY-MM-DDTHH:MM:SSZ``), if any.
        pka: The endpoint public key, if any.
        kid: The key id (``aid1`` only), if any.
        ttl: The DNS TTL of the answer, when the record came from DNS.
        name: The DNS name the record was found at, when it came from DNS.
    """

    v: str
    uri: str
    proto: str
    auth: str | None = None
    desc: str | None = None
    docs: str | None = None
    dep: str | None = None
    pka: str | None = None
    kid: str | None = None
    ttl: int | None = None
    name: str | None = None

    @property
    def deprecation(self) -> _dt.datetime | None:
        """``dep`` as an aware UTC datetime, or None."""
        if self.dep is None:
            return None
        return _dt.datetime.strptime(self.dep, _DEP_FORMAT).replace(tzinfo=_dt.UTC)

    def is_deprecated(self, now: _dt.datetime | None = None) -> bool:
        """Tell whether the record's ``dep`` time has passed.

        Args:
            now: The time to compare with (default: the current UTC time).

        Returns:
            True when ``dep`` is set and not after ``now``.
        """
        when = self.deprecation
        return when is not None and when <= (now or _dt.datetime.now(_dt.UTC))

    def to_txt(self) -> str:
        """Render the record as TXT text with the full key names.

        Returns:
            ``"v=aid1;uri=...;proto=..."`` that :func:`parse_record` reads back.
        """
        parts = [f"v={self.v}", f"uri={self.uri}", f"proto={self.proto}"]
        for key in ("auth", "desc", "docs", "dep", "pka", "kid"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}={value}")
        return ";".join(parts)


# --------------------------------------------------------------------------
# Parsing (no I/O)
# --------------------------------------------------------------------------


def _join(txt: str | bytes | Sequence[str | bytes]) -> str:
    if isinstance(txt, str):
        return txt
    pieces = [txt] if isinstance(txt, bytes) else list(txt)
    try:
        return "".join(p.decode("utf-8") if isinstance(p, bytes) else p for p in pieces)
    except UnicodeDecodeError as exc:
        raise DiscoveryError(f"record is not valid UTF-8: {exc}", code="ERR_INVALID_TXT") from exc


def _split_pairs(text: str) -> dict[str, str]:
    raw: dict[str, str] = {}
    for item in text.split(";"):
        pair = item.strip()
        if not pair:
            continue
        if "=" not in pair:
            raise DiscoveryError(f"invalid key-value pair: {pair!r}", code="ERR_INVALID_TXT")
        key, value = pair.split("=", 1)
        key = key.strip().lower()
        value = value.strip()
        if not key or not value:
            raise DiscoveryError(f"empty key or value in pair: {pair!r}", code="ERR_INVALID_TXT")
        if key in raw:
            raise DiscoveryError(f"duplicate key: {key!r}", code="ERR_INVALID_TXT")
        raw[key] = value
    return raw


def _uri_problem(url: str) -> str | None:
    """Why ``url`` cannot be used as an endpoint (no host, bad port...), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return str(exc)
    if not (parts.scheme and parts.hostname):
        return "no host"
    return None


def _check_endpoint_uri(uri: str) -> None:
    problem = _uri_problem(uri)
    if problem is not None:
        raise DiscoveryError(f"uri: invalid URI {uri!r}: {problem}", code="ERR_INVALID_TXT")


def _check_aid2_pka(value: str) -> None:
    if not _BASE64URL.fullmatch(value):
        raise DiscoveryError("pka: aid2 pka must be unpadded base64url", code="ERR_INVALID_TXT")
    if len(value) % 4 == 1:
        raise DiscoveryError("pka: aid2 pka must be valid base64url", code="ERR_INVALID_TXT")
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DiscoveryError(
            "pka: aid2 pka must be valid base64url", code="ERR_INVALID_TXT"
        ) from exc
    if len(decoded) != 32:
        raise DiscoveryError(
            "pka: aid2 pka must decode to exactly 32 bytes", code="ERR_INVALID_TXT"
        )


def _check_uri(proto: str, uri: str) -> None:
    if proto == "local":
        match = _LOCAL_SCHEME.match(uri)
        if match is None or match.group("scheme") not in LOCAL_URI_SCHEMES:
            raise DiscoveryError(
                f"uri: a local record must use one of the schemes {', '.join(LOCAL_URI_SCHEMES)}"
                f" (got {uri!r})",
                code="ERR_INVALID_TXT",
            )
    elif proto == "zeroconf":
        if not uri.startswith("zeroconf:"):
            raise DiscoveryError(
                "uri: a zeroconf record must use 'zeroconf:'", code="ERR_INVALID_TXT"
            )
    elif proto == "websocket":
        # The AID WebSocket proposal: ws:// MUST be rejected with ERR_SECURITY,
        # on any host, loopback included.
        if not uri.startswith("wss://"):
            raise DiscoverySecurityError(f"uri: a websocket record must use wss:// (got {uri!r})")
        _check_endpoint_uri(uri)
    else:
        if not uri.startswith("https://"):
            raise DiscoveryError(
                f"uri: a {proto!r} record must use https:// (got {uri!r})", code="ERR_INVALID_TXT"
            )
        _check_endpoint_uri(uri)


def _validate(raw: Mapping[str, str]) -> AgentRecord:
    if "v" not in raw:
        raise DiscoveryError("missing required key: v", code="ERR_INVALID_TXT")
    for full, alias in _ALIASES:
        if full in raw and alias in raw:
            raise DiscoveryError(f"cannot give both {full!r} and {alias!r}", code="ERR_INVALID_TXT")
    values = {full: raw.get(full) or raw.get(alias) for full, alias in _ALIASES}
    uri = values["uri"]
    if not uri:
        raise DiscoveryError("missing required key: uri (or u)", code="ERR_INVALID_TXT")
    proto = values["proto"]
    if not proto:
        raise DiscoveryError("missing required key: proto (or p)", code="ERR_INVALID_TXT")
    version = raw["v"]
    if version not in SUPPORTED_VERSIONS:
        raise DiscoveryError(
            f"v: unsupported version {version!r} (expected one of {', '.join(SUPPORTED_VERSIONS)})",
            code="ERR_INVALID_TXT",
        )
    if proto not in PROTOCOL_TOKENS:
        raise DiscoveryError(f"proto: unsupported protocol {proto!r}", code="ERR_UNSUPPORTED_PROTO")
    auth = values["auth"]
    if auth and auth not in AUTH_TOKENS:
        raise DiscoveryError(f"auth: invalid auth token {auth!r}", code="ERR_INVALID_TXT")
    desc = values["desc"]
    if desc and len(desc.encode("utf-8")) > _DESC_MAX_BYTES:
        raise DiscoveryError(
            f"desc: must be at most {_DESC_MAX_BYTES} UTF-8 bytes", code="ERR_INVALID_TXT"
        )
    docs = values["docs"]
    if docs and (not docs.startswith("https://") or _uri_problem(docs) is not None):
        raise DiscoveryError(
            f"docs: must be an absolute https:// URL (got {docs!r})", code="ERR_INVALID_TXT"
        )
    dep = values["dep"]
    if dep:
        try:
            _dt.datetime.strptime(dep, _DEP_FORMAT)
        except ValueError as exc:
            raise DiscoveryError(
                f"dep: must be an ISO 8601 UTC time like 2026-01-01T00:00:00Z (got {dep!r})",
                code="ERR_INVALID_TXT",
            ) from exc
    pka, kid = values["pka"], values["kid"]
    if version == "aid1" and pka and not kid:
        raise DiscoveryError("kid: required when pka is present", code="ERR_INVALID_TXT")
    if version == "aid2":
        if kid:
            raise DiscoveryError("kid: not allowed in aid2 records", code="ERR_INVALID_TXT")
        if pka:
            _check_aid2_pka(pka)
    _check_uri(proto, uri)
    return AgentRecord(
        v=version,
        uri=uri,
        proto=proto,
        auth=auth or None,
        desc=desc or None,
        docs=docs or None,
        dep=dep or None,
        pka=pka or None,
        kid=kid or None,
    )


def parse_record(txt: str | bytes | Sequence[str | bytes]) -> AgentRecord:
    """Parse and validate one AID TXT record.

    Args:
        txt: The record text, or the character-strings of a multi-string TXT
            record (joined with nothing in between, as DNS splits them).

    Returns:
        The validated record.

    Raises:
        DiscoveryError: ``ERR_INVALID_TXT`` for a malformed record (missing
            ``v`` or ``uri``, wrong version, duplicate keys, ...),
            ``ERR_UNSUPPORTED_PROTO`` for an unknown protocol.
        DiscoverySecurityError: A ``p=websocket`` URI is not ``wss://``.
    """
    return _validate(_split_pairs(_join(txt)))


def _pick(
    texts: Sequence[tuple[bytes, ...]], *, name: str, ttl: int, protocol: str | None
) -> AgentRecord:
    """Choose the one valid record among a name's TXT records (no I/O)."""
    valid: list[AgentRecord] = []
    last_error: DiscoveryError | None = None
    for strings in texts:
        try:
            record = parse_record(strings)
        except DiscoveryError as exc:
            last_error = exc
            continue
        if protocol is not None and record.proto != protocol:
            last_error = DiscoveryError(
                f"{name}: record found, but its protocol {record.proto!r} is not {protocol!r}",
                code="ERR_UNSUPPORTED_PROTO",
            )
            continue
        valid.append(record)
    if len(valid) > 1:
        raise DiscoveryError(
            f"{name}: {len(valid)} valid AID records; publish exactly one per name",
            code="ERR_INVALID_TXT",
        )
    if valid:
        return dataclasses.replace(valid[0], ttl=ttl, name=name)
    if last_error is not None:
        raise last_error
    raise DiscoveryError(f"{name}: no AID record", code="ERR_NO_RECORD")


# --------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------


def _domain_to_ascii(domain: str) -> str:
    text = domain.strip().rstrip(".")
    if not text:
        raise ConfigError("domain: must not be empty")
    try:
        return dns.name.from_unicode(text).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ConfigError(f"domain: not a valid domain name: {domain!r} ({exc})") from exc


async def _make_resolver(
    nameservers: Sequence[str] | None, port: int, resolver: dns.asyncresolver.Resolver | None
) -> dns.asyncresolver.Resolver:
    if resolver is not None and nameservers is not None:
        raise ConfigError("resolver: give either resolver= or nameservers=, not both")
    if resolver is not None:
        return resolver
    if nameservers is not None:
        if isinstance(nameservers, str) or not nameservers:
            raise ConfigError("nameservers: must be a non-empty list of addresses")
        if not 0 < port < 65536:
            raise ConfigError(f"port: must be 1-65535 (got {port})")
        custom = dns.asyncresolver.Resolver(configure=False)
        try:
            custom.nameservers = list(nameservers)
        except ValueError as exc:
            raise ConfigError(f"nameservers: {exc}") from exc
        custom.port = port
        return custom
    try:
        # Reading the system configuration (/etc/resolv.conf) is file I/O.
        return await asyncio.to_thread(dns.asyncresolver.Resolver)
    except dns.exception.DNSException as exc:  # no /etc/resolv.conf or the like
        raise DiscoveryError(
            f"no usable system DNS configuration ({exc}); pass nameservers= or resolver=",
            code="ERR_DNS_LOOKUP_FAILED",
        ) from exc


async def _query_txt(
    resolver: dns.asyncresolver.Resolver, name: str, timeout: float
) -> tuple[list[tuple[bytes, ...]], int]:
    try:
        answer = await resolver.resolve(name, "TXT", lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
        raise DiscoveryError(f"{name}: no TXT record", code="ERR_NO_RECORD") from exc
    except dns.exception.DNSException as exc:
        raise DiscoveryError(
            f"{name}: DNS lookup failed: {exc}", code="ERR_DNS_LOOKUP_FAILED"
        ) from exc
    rrset = answer.rrset
    texts: list[tuple[bytes, ...]] = [
        tuple(rdata.strings) for rdata in answer if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
    ]
    return texts, (rrset.ttl if rrset is not None else 0)


async def discover(
    domain: str,
    *,
    protocol: str | None = None,
    nameservers: Sequence[str] | None = None,
    port: int = 53,
    resolver: dns.asyncresolver.Resolver | None = None,
    timeout: float = 5.0,
) -> AgentRecord:
    """Look up and validate the AID record of ``domain``.

    The TXT record at ``_agent.<domain>`` is fetched (IDN domains are
    converted to their ASCII form first). When ``protocol`` is given and the
    base record is missing or speaks another protocol, ``_agent._<protocol>.<domain>``
    and then ``_agent.<protocol>.<domain>`` are tried, and finally the base
    record is accepted whatever its protocol, as the reference client does.
    Among several TXT records at one name, invalid ones are skipped; more
    than one valid record is an error. Safe to cancel.

    Args:
        domain: The domain, e.g. ``"example.com"``.
        protocol: A protocol token to look for first (``"mcp"``...).
        nameservers: Ask only these DNS servers (IP addresses); without it,
            and without ``resolver``, the system's resolver configuration.
        port: The DNS port of ``nameservers``.
        resolver: A configured ``dns.asyncresolver.Resolver`` to use instead.
        timeout: The deadline of each DNS query, in seconds.

    Returns:
        The record, with ``ttl`` and ``name`` set from the DNS answer.

    Raises:
        DiscoveryError: ``ERR_NO_RECORD`` (no record), ``ERR_INVALID_TXT`` /
            ``ERR_UNSUPPORTED_PROTO`` (a bad record), ``ERR_DNS_LOOKUP_FAILED``
            (timeout, SERVFAIL, unreachable server).
        DiscoverySecurityError: The record is a ``p=websocket`` without ``wss://``.
        ConfigError: Bad arguments (both ``resolver`` and ``nameservers``,
            an invalid domain name, a non-positive timeout).
    """
    if timeout <= 0:
        raise ConfigError(f"timeout: must be > 0 (got {timeout})")
    if protocol is not None and protocol not in PROTOCOL_TOKENS:
        raise ConfigError(f"protocol: unknown AID protocol {protocol!r}")
    ascii_domain = _domain_to_ascii(domain)
    dns_resolver = await _make_resolver(nameservers, port, resolver)
    base = f"{DNS_SUBDOMAIN}.{ascii_domain}"

    base_answer: tuple[list[tuple[bytes, ...]], int] | None = None
    try:
        base_answer = await _query_txt(dns_resolver, base, timeout)
        return _pick(base_answer[0], name=base, ttl=base_answer[1], protocol=protocol)
    except DiscoveryError as exc:
        if protocol is None or exc.code not in ("ERR_NO_RECORD", "ERR_UNSUPPORTED_PROTO"):
            raise
    for name in (
        f"{DNS_SUBDOMAIN}._{protocol}.{ascii_domain}",
        f"{DNS_SUBDOMAIN}.{protocol}.{ascii_domain}",
    ):
        try:
            texts, ttl = await _query_txt(dns_resolver, name, timeout)
            return _pick(texts, name=name, ttl=ttl, protocol=protocol)
        except DiscoveryError as exc:
            if exc.code != "ERR_NO_RECORD":
                raise
    if base_answer is None:
        raise DiscoveryError(f"{base}: no AID record", code="ERR_NO_RECORD")
    return _pick(base_answer[0], name=base, ttl=base_answer[1], protocol=None)


# --------------------------------------------------------------------------
# Opening a client
# --------------------------------------------------------------------------

AgentClient: TypeAlias = "HTTPClient | WebSocketClient | GRPCClient | STDIOClient"
"""What :func:`connect_agent` returns."""

LocalConsent: TypeAlias = Callable[[AgentRecord, Sequence[str]], "bool | Awaitable[bool]"]
"""Asked before a ``p=local`` record's command is run: ``(record, argv) -> bool``."""


def local_command(uri: str) -> list[str]:
    """Turn a ``p=local`` locator into the argument list that runs it.

    ``docker:IMAGE`` runs ``docker run --rm -i IMAGE``, ``npx:PACKAGE`` runs
    ``npx -y PACKAGE`` and ``pip:PACKAGE`` runs ``pipx run PACKAGE``. The
    result is an argv list (never a shell string).

    Args:
        uri: The record's URI, e.g. ``"npx:@myorg/agent"``.

    Returns:
        The command and its arguments.

    Raises:
        DiscoveryError: ``ERR_INVALID_TXT``: not a ``docker:``/``npx:``/``pip:`` locator.
        DiscoverySecurityError: The locator could be read as an option or
            holds whitespace or control characters (argument injection).
    """
    match = _LOCAL_SCHEME.match(uri)
    if match is None or match.group("scheme") not in LOCAL_URI_SCHEMES:
        raise DiscoveryError(f"uri: not a local locator: {uri!r}", code="ERR_INVALID_TXT")
    scheme = match.group("scheme")
    target = match.group("rest").removeprefix("//")
    if (
        not target
        or target.startswith("-")
        or any(c.isspace() or not c.isprintable() for c in target)
    ):
        raise DiscoverySecurityError(f"uri: refusing to run the local locator {uri!r}")
    if scheme == "docker":
        return ["docker", "run", "--rm", "-i", target]
    if scheme == "npx":
        return ["npx", "-y", target]
    return ["pipx", "run", target]


async def _consented(
    record: AgentRecord, argv: Sequence[str], allow_local: bool | LocalConsent
) -> bool:
    if isinstance(allow_local, bool):
        return allow_local
    verdict = allow_local(record, argv)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


def _grpc_target(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ConfigError(f"uri: bad port in the grpc record's URI {uri!r}: {exc}") from exc
    return f"{host}:{port}"


async def connect_agent(
    target: str | AgentRecord,
    *,
    protocol: str | None = None,
    nameservers: Sequence[str] | None = None,
    port: int = 53,
    resolver: dns.asyncresolver.Resolver | None = None,
    timeout: float = 5.0,
    allow_local: bool | LocalConsent = False,
    command: Sequence[str] | None = None,
    **client_options: Any,
) -> AgentClient:
    """Discover an agent (or take its record) and build the matching client.

    The client is returned NOT connected: use it with ``async with`` or call
    ``connect()``. Which client:

    - ``websocket`` → :class:`WebSocketClient` on the ``wss://`` URI;
    - ``mcp``, ``openapi``, ``a2a``, ``graphql``, ``ucp`` → :class:`HTTPClient`
      with ``base_url`` set to the URI (request ``client.base_url`` itself for
      the exact endpoint: httpx appends a ``/`` when joining relative paths);
    - ``grpc`` → :class:`GRPCClient` with TLS on the URI's ``host:port``
      (port 443 by default);
    - ``local`` → :class:`STDIOClient` running :func:`local_command` of the URI
      (or ``command``), only with the caller's consent (``allow_local``), as
      the AID spec requires; the process speaks JSON-RPC, e.g. MCP over stdio.

    Args:
        target: A domain to :func:`discover`, a record's TXT text
            (anything containing ``=``) or an :class:`AgentRecord`.
        protocol: Passed to :func:`discover` when ``target`` is a domain.
        nameservers: Passed to :func:`discover`.
        port: Passed to :func:`discover`.
        resolver: Passed to :func:`discover`.
        timeout: Passed to :func:`discover`.
        allow_local: Consent to run a ``p=local`` record: True, False (the
            default: refuse), or a callable ``(record, argv) -> bool`` (may be
            async) asked with the exact command, e.g. to prompt the user.
        command: The argv to run for a ``p=local`` record instead of the one
            derived from its URI (still subject to ``allow_local``).
        **client_options: Config overrides for the client (``config=``,
            ``ca_certs``, ``auth``, ``timeout_seconds``...).

    Returns:
        The client for the record's protocol, not connected.

    Raises:
        DiscoveryError: Discovery failed (see :func:`discover`), or the
            protocol is valid but has no client here (``zeroconf``:
            ``ERR_UNSUPPORTED_PROTO``).
        DiscoverySecurityError: A ``websocket`` URI is not ``wss://``, or a
            ``local`` record was not consented to.
        ConfigError: A client option is invalid.
    """
    if isinstance(target, AgentRecord):
        record = target
    elif "=" in target:
        record = parse_record(target)
    else:
        record = await discover(
            target,
            protocol=protocol,
            nameservers=nameservers,
            port=port,
            resolver=resolver,
            timeout=timeout,
        )
    proto = record.proto
    if proto == "websocket":
        # Checked again here: an AgentRecord can be built by hand, bypassing parse_record.
        if not record.uri.startswith("wss://"):
            raise DiscoverySecurityError(
                f"uri: a websocket record must use wss:// (got {record.uri!r})"
            )
        _check_endpoint_uri(record.uri)
        from ..websocket.client import WebSocketClient

        return WebSocketClient(record.uri, **client_options)
    if proto in _HTTP_PROTOCOLS:
        if not record.uri.startswith("https://"):
            raise DiscoveryError(
                f"uri: a {proto!r} record must use https:// (got {record.uri!r})",
                code="ERR_INVALID_TXT",
            )
        _check_endpoint_uri(record.uri)
        return HTTPClient(record.uri, **client_options)
    if proto == "grpc":
        if not record.uri.startswith("https://"):
            raise DiscoveryError(
                f"uri: a grpc record must use https://host[:port] (got {record.uri!r})",
                code="ERR_INVALID_TXT",
            )
        _check_endpoint_uri(record.uri)
        from ..grpc.client import GRPCClient

        client_options.setdefault("secure", True)
        return GRPCClient(target=_grpc_target(record.uri), **client_options)
    if proto == "local":
        argv = list(command) if command is not None else local_command(record.uri)
        if not argv:
            raise ConfigError("command: must not be empty")
        if not await _consented(record, argv, allow_local):
            raise DiscoverySecurityError(
                f"local execution of {argv!r} (from {record.uri!r}) was not consented to;"
                " pass allow_local=True or a consent callback"
            )
        from ..stdio.client import STDIOClient

        if client_options.get("config") is None:  # an explicit config keeps its own format
            client_options.setdefault("message_format", "jsonrpc")
        return STDIOClient(command=argv, **client_options)
    raise DiscoveryError(
        f"proto: {proto!r} is a valid AID protocol but has no client in this library",
        code="ERR_UNSUPPORTED_PROTO",
    )
