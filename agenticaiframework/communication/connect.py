"""One entry point for any address: :func:`connect` builds the client that speaks it.

::

    async with connect("a2a+https://agent.example.com") as agent:   # an A2AClient
        reply = await agent.send("hello")
    client = await connect("wss://feed.example.com/stream")         # a WebSocketClient, not open
    async with connect("example.com") as agent: ...                 # AID discovery first

What each address gives (the client is built, never connected, by
:func:`connect`; the security policy is applied by the client's constructor,
as always, so a plain-text URL to a non-loopback host fails there, before
any connection is attempted):

- ``https://`` / ``http://``: HTTPClient (the URL is its ``base_url``);
- ``wss://`` / ``ws://``: WebSocketClient;
- ``mqtts://`` / ``mqtt://``: MQTTClient;
- ``grpcs://`` / ``grpc://``: GRPCClient;
- ``sse+https://`` / ``sse+http://``: SSEClient;
- ``mcp+https://`` / ``mcp+http://``: MCPClient over Streamable HTTP;
- ``a2a+https://`` / ``a2a+http://``, or an ``https://`` URL of an agent
  card (``/.well-known/agent-card.json``): A2AClient;
- a bare domain (``example.com``): AID discovery, then :func:`connect_agent`;
- a command list (``["python", "server.py"]``): STDIOClient, or MCPClient
  with ``protocol="mcp"``.

``protocol=`` picks the client for an address that does not say it:
``connect("https://x.example/mcp", protocol="mcp")`` is an MCPClient, and for
a bare domain it is the AID protocol to look for first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Generator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import urlsplit

from .core.errors import ConfigError
from .core.security import parse_ip, redact_url

if TYPE_CHECKING:
    import dns.asyncresolver

    from .agents.a2a.client import A2AClient
    from .agents.discovery import AgentRecord, LocalConsent
    from .agents.mcp import MCPClient
    from .grpc.client import GRPCClient
    from .http.client import HTTPClient
    from .mqtt.client import MQTTClient
    from .sse.client import SSEClient
    from .stdio.client import STDIOClient
    from .websocket.client import WebSocketClient

__all__ = [
    "AGENT_CARD_PATHS",
    "SCHEMES",
    "AnyClient",
    "Connecting",
    "Endpoint",
    "connect",
    "connect_agent",
    "resolve",
]

AnyClient: TypeAlias = (
    "HTTPClient | WebSocketClient | MQTTClient | GRPCClient | SSEClient | STDIOClient"
    " | MCPClient | A2AClient"
)
"""What :func:`connect` and :func:`connect_agent` return."""

SCHEMES: Final = {
    "https": "http",
    "http": "http",
    "wss": "websocket",
    "ws": "websocket",
    "mqtts": "mqtt",
    "mqtt": "mqtt",
    "grpcs": "grpc",
    "grpc": "grpc",
    "sse+https": "sse",
    "sse+http": "sse",
    "mcp+https": "mcp",
    "mcp+http": "mcp",
    "a2a+https": "a2a",
    "a2a+http": "a2a",
}
"""Every URL scheme :func:`connect` accepts, and the protocol it means."""

AGENT_CARD_PATHS: Final = ("/.well-known/agent-card.json", "/.well-known/agent.json")
"""URL paths read as an A2A agent card (``agent.json`` is the name before A2A 0.3)."""

_CLIENTS: Final = {
    "http": "HTTPClient",
    "websocket": "WebSocketClient",
    "mqtt": "MQTTClient",
    "grpc": "GRPCClient",
    "sse": "SSEClient",
    "mcp": "MCPClient",
    "a2a": "A2AClient",
    "stdio": "STDIOClient",
}
# protocol= that may stand for what an http(s):// URL speaks.
_OVER_HTTP: Final = frozenset({"http", "sse", "mcp", "a2a"})
_OVER_COMMAND: Final = frozenset({"stdio", "mcp"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Endpoint:
    """What an address resolved to, before any client is built.

    Attributes:
        protocol: ``"http"``, ``"websocket"``, ``"mqtt"``, ``"grpc"``, ``"sse"``,
            ``"mcp"``, ``"a2a"``, ``"stdio"``, or for a discovered record whose
            protocol has no agent client here, the record's own token
            (``"openapi"``, ``"local"`` ...).
        client: The class name of the client it gives (``"A2AClient"`` ...).
        url: The URL handed to the client (any ``sse+``/``mcp+``/``a2a+``
            prefix removed), or None for a command.
        command: The program and arguments, for a command.
        record: The AID record, when the address was a domain.
    """

    protocol: str
    client: str
    url: str | None = None
    command: tuple[str, ...] | None = None
    record: AgentRecord | None = dataclasses.field(default=None, repr=False)

    @property
    def safe_url(self) -> str | None:
        """``url`` with its credentials (user info, secret query values) redacted."""
        return redact_url(self.url) if self.url is not None else None

    def __repr__(self) -> str:
        where = f"url={self.safe_url!r}" if self.url is not None else f"command={self._program()!r}"
        return f"Endpoint(protocol={self.protocol!r}, client={self.client!r}, {where})"

    def _program(self) -> str | None:
        # Only the program: arguments may hold secrets (--token=...).
        return self.command[0] if self.command else None


def _accepted() -> str:
    return ", ".join(f"{scheme}://" for scheme in SCHEMES)


def _from_url(address: str, protocol: str | None) -> Endpoint:
    scheme = address.split("://", 1)[0].lower()
    meant = SCHEMES.get(scheme)
    if meant is None:
        raise ConfigError(
            f"address: unknown scheme {scheme + '://'!r} in {redact_url(address)!r}; "
            f"connect() accepts {_accepted()}, a bare domain (AID discovery) or a command list"
        )
    url = address.split("+", 1)[1] if "+" in scheme else address
    if meant == "http":
        try:
            path = urlsplit(url).path
        except ValueError as exc:
            raise ConfigError(f"address: invalid URL {redact_url(address)!r}: {exc}") from exc
        if path.rstrip("/").endswith(AGENT_CARD_PATHS):
            meant = "a2a"
        if protocol is not None:
            if protocol not in _OVER_HTTP:
                raise ConfigError(
                    f"protocol: {protocol!r} cannot be spoken over {scheme}://; "
                    f"give one of {', '.join(sorted(_OVER_HTTP))}"
                )
            meant = protocol
    elif protocol is not None and protocol != meant:
        raise ConfigError(
            f"protocol: {protocol!r} does not match the {scheme}:// address (which is {meant!r})"
        )
    return Endpoint(protocol=meant, client=_CLIENTS[meant], url=url)


def _from_command(command: Sequence[Any], protocol: str | None) -> Endpoint:
    argv = tuple(command)
    if not argv:
        raise ConfigError("address: the command list is empty; give e.g. ['python', 'server.py']")
    if not all(isinstance(arg, str) for arg in argv):
        raise ConfigError("address: every item of a command list must be a str")
    meant = protocol or "stdio"
    if meant not in _OVER_COMMAND:
        raise ConfigError(
            f"protocol: {protocol!r} cannot be spoken over a command's stdin/stdout; "
            f"give one of {', '.join(sorted(_OVER_COMMAND))}"
        )
    return Endpoint(protocol=meant, client=_CLIENTS[meant], command=argv)


def _is_domain(address: str) -> bool:
    return bool(address) and not any(c in address for c in ":/@?# \t\r\n")


def _check_domain(address: str) -> None:
    if not _is_domain(address):
        raise ConfigError(
            f"address: {redact_url(address)!r} is neither a URL with a scheme nor a bare "
            f"domain; connect() accepts {_accepted()}, a bare domain (AID discovery) "
            "or a command list"
        )
    if parse_ip(address) is not None:
        raise ConfigError(f"address: {address!r} is an IP address; AID discovery needs a domain")


def _record_endpoint(record: AgentRecord, raw: bool) -> Endpoint:
    from .agents import discovery

    proto = record.proto
    if not raw and proto in ("mcp", "a2a"):
        return Endpoint(protocol=proto, client=_CLIENTS[proto], url=record.uri, record=record)
    client = {
        "websocket": "WebSocketClient",
        "grpc": "GRPCClient",
        "local": "STDIOClient",
    }.get(proto, "HTTPClient")
    is_command = proto == "local"
    return Endpoint(
        protocol=proto,
        client=client,
        url=None if is_command else record.uri,
        command=tuple(discovery.local_command(record.uri)) if is_command else None,
        record=record,
    )


async def _record(
    target: str | AgentRecord,
    *,
    protocol: str | None,
    nameservers: Sequence[str] | None,
    port: int,
    resolver: dns.asyncresolver.Resolver | None,
    timeout: float,
) -> AgentRecord:
    from .agents import discovery

    if isinstance(target, discovery.AgentRecord):
        return target
    if "=" in target:
        return discovery.parse_record(target)
    return await discovery.discover(
        target,
        protocol=protocol,
        nameservers=nameservers,
        port=port,
        resolver=resolver,
        timeout=timeout,
    )


async def resolve(
    address: str | Sequence[str],
    *,
    protocol: str | None = None,
    nameservers: Sequence[str] | None = None,
    port: int = 53,
    resolver: dns.asyncresolver.Resolver | None = None,
    timeout: float = 5.0,
) -> Endpoint:
    """Tell what ``address`` means, without building a client.

    Only a bare domain does I/O (the AID lookup over DNS).

    Args:
        address: A URL (see :data:`SCHEMES`), a bare domain, or a command list.
        protocol: The protocol an ``http(s)://`` URL or a command speaks
            (``"mcp"``, ``"a2a"``, ``"sse"``...), or the AID protocol to look
            for first on a domain.
        nameservers: For a domain: ask only these DNS servers.
        port: For a domain: the DNS port of ``nameservers``.
        resolver: For a domain: a configured dnspython resolver instead.
        timeout: For a domain: the deadline of each DNS query, in seconds.

    Returns:
        The endpoint: its protocol, client class name, URL or command, record.

    Raises:
        ConfigError: An unknown scheme (the message lists those accepted), a
            string that is neither a URL nor a domain, a ``protocol`` that does
            not fit the address.
        DiscoveryError: The domain's AID record is missing or invalid.
    """
    if isinstance(address, bytes | bytearray):
        raise ConfigError("address: give a str URL or domain, or a list of str for a command")
    if not isinstance(address, str):
        return _from_command(address, protocol)
    address = address.strip()
    if "://" in address:
        return _from_url(address, protocol)
    _check_domain(address)
    record = await _record(
        address,
        protocol=protocol,
        nameservers=nameservers,
        port=port,
        resolver=resolver,
        timeout=timeout,
    )
    return _record_endpoint(record, raw=False)


def _build(endpoint: Endpoint, options: dict[str, Any]) -> AnyClient:
    """The client for a URL or command endpoint (records go through connect_agent)."""
    protocol, url = endpoint.protocol, endpoint.url
    if endpoint.command is not None:
        if protocol == "mcp":
            from .agents.mcp import MCPClient

            return MCPClient(command=list(endpoint.command), **options)
        from .stdio.client import STDIOClient

        return STDIOClient(command=list(endpoint.command), **options)
    assert url is not None
    if protocol == "http":
        from .http.client import HTTPClient

        return HTTPClient(url, **options)
    if protocol == "websocket":
        from .websocket.client import WebSocketClient

        return WebSocketClient(url, **options)
    if protocol == "mqtt":
        from .mqtt.client import MQTTClient

        return MQTTClient(url, **options)
    if protocol == "grpc":
        from .grpc.client import GRPCClient

        return GRPCClient(url, **options)
    if protocol == "sse":
        from .sse.client import SSEClient

        return SSEClient(url, **options)
    if protocol == "mcp":
        from .agents.mcp import MCPClient

        return MCPClient(url, **options)
    from .agents.a2a.client import A2AClient  # on first use: it pulls in HTTP, SSE, gRPC

    return A2AClient(url, **options)


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
    raw: bool = False,
    **client_options: Any,
) -> AnyClient:
    """Discover an agent (or take its record) and build its agent client, not connected.

    A ``p=mcp`` record gives an :class:`MCPClient` (Streamable HTTP) on the
    record's URI and a ``p=a2a`` record an ``A2AClient``; every other
    protocol gives what
    :func:`agenticaiframework.communication.agents.discovery.connect_agent` gives
    (WebSocketClient, GRPCClient, STDIOClient with consent, HTTPClient).
    ``raw=True`` gives that plain client for ``mcp`` and ``a2a`` too.

    Args:
        target: A domain to discover, a record's TXT text (anything
            containing ``=``) or an :class:`AgentRecord`.
        protocol: The AID protocol to look for first on a domain.
        nameservers: Passed to :func:`discover`.
        port: Passed to :func:`discover`.
        resolver: Passed to :func:`discover`.
        timeout: Passed to :func:`discover`.
        allow_local: Consent to run a ``p=local`` record (see
            ``agents.discovery.connect_agent``).
        command: The argv to run for a ``p=local`` record instead of the
            one derived from its URI.
        raw: Give the plain transport client for ``mcp``/``a2a`` records.
        **client_options: Options of the client (``auth``, ``ca_certs``,
            ``timeout_seconds``...).

    Returns:
        The client, not connected.

    Raises:
        DiscoveryError: Discovery failed, the record is invalid (an ``mcp`` or
            ``a2a`` URI that is not ``https://``: ``ERR_INVALID_TXT``), or
            its protocol has no client here.
        DiscoverySecurityError: See ``agents.discovery.connect_agent``.
        ConfigError: A client option is invalid.
    """
    from .agents import discovery

    record = await _record(
        target,
        protocol=protocol,
        nameservers=nameservers,
        port=port,
        resolver=resolver,
        timeout=timeout,
    )
    if raw or record.proto not in ("mcp", "a2a"):
        return await discovery.connect_agent(
            record, allow_local=allow_local, command=command, **client_options
        )
    # Checked again here: an AgentRecord can be built by hand, bypassing parse_record.
    if not record.uri.startswith("https://"):
        raise discovery.DiscoveryError(
            f"uri: a {record.proto!r} record must use https:// (got {redact_url(record.uri)!r})",
            code="ERR_INVALID_TXT",
        )
    problem = discovery._uri_problem(record.uri)
    if problem is not None:
        raise discovery.DiscoveryError(
            f"uri: invalid URI {redact_url(record.uri)!r}: {problem}", code="ERR_INVALID_TXT"
        )
    return _build(_record_endpoint(record, raw=False), client_options)


class Connecting:
    """What :func:`connect` returns: await it for the client, or ``async with`` it.

    ``await connect(...)`` gives the client, not connected.
    ``async with connect(...) as client`` builds it, connects it, and closes
    it at the end of the block. Nothing is resolved or built until one of
    the two happens.
    """

    __slots__ = ("_client", "_make")

    def __init__(self, make: Callable[[], Awaitable[AnyClient]]) -> None:
        self._make = make
        self._client: AnyClient | None = None

    def __await__(self) -> Generator[Any, None, AnyClient]:
        return self._make().__await__()

    async def __aenter__(self) -> AnyClient:
        client = await self._make()
        try:
            await client.connect()
        except BaseException:
            await client.close()
            raise
        self._client = client
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def connect(
    address: str | Sequence[str] | Endpoint,
    *,
    protocol: str | None = None,
    **options: Any,
) -> Connecting:
    """Build the right client for ``address``, not connected.

    ``client = await connect(address)`` or ``async with connect(address) as client``.
    The module docstring lists what each address gives. Each client applies
    the security policy as it always does (``allow_insecure=True`` is the
    opt-out for plain text to a non-loopback host).

    Args:
        address: A URL (see :data:`SCHEMES`), an A2A agent card URL, a bare
            domain (AID discovery, then :func:`connect_agent`), a command
            list (STDIO), or an :class:`Endpoint` from :func:`resolve`.
        protocol: What an ``http(s)://`` URL speaks (``"http"``, ``"sse"``,
            ``"mcp"``, ``"a2a"``), ``"mcp"`` for a command list to get an
            MCPClient, or the AID protocol to look for first on a domain.
        **options: The client's options (``auth``, ``headers``,
            ``timeout_seconds``, ``allow_insecure`` ...), and for a domain
            the discovery ones of :func:`connect_agent` (``nameservers``,
            ``port``, ``resolver``, ``timeout``, ``allow_local``, ``command``,
            ``raw``).

    Returns:
        A :class:`Connecting`: await it for the client.

    Raises:
        ConfigError: (when awaited) An unknown scheme, naming the schemes
            accepted; an address that is neither URL, domain nor command;
            a bad option.
        SecurityError: (when awaited) The URL breaks the security policy.
        DiscoveryError: (when awaited) AID discovery failed for a domain.
    """

    async def make() -> AnyClient:
        if isinstance(address, Endpoint):
            if address.record is not None:
                return await connect_agent(address.record, **options)
            return _build(address, options)
        if isinstance(address, str) and "://" not in address:
            domain = address.strip()
            _check_domain(domain)
            return await connect_agent(domain, protocol=protocol, **options)
        endpoint = await resolve(address, protocol=protocol)
        return _build(endpoint, options)

    return Connecting(make)
