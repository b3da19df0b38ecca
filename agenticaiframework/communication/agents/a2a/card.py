"""The agent card: where it is, reading and checking it, caching it, choosing an interface.

The I/O-free parts (:func:`card_url_for`, :func:`validate_card`,
:func:`select_interface`, :func:`auth_from_card`, :class:`CardCache`) are
apart from :func:`fetch_card`, the one function that talks to the network.

Caching follows specification section 8.6: a card answered with ``ETag``
(or ``Cache-Control: max-age``) is kept per card URL in a small process-wide
cache; within ``max-age`` it is used without a request, after it the next
fetch sends ``If-None-Match`` and a ``304`` keeps the stored card.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...core import errors
from ...core.auth import APIKeyAuth, Auth, BearerAuth, OAuth2Auth, build_auth
from ...core.codecs import loads
from ...core.security import redact_url
from .bindings._http import GuardedHTTPClient
from .errors import A2AAuthError, VersionNotSupportedError

__all__ = [
    "PROTOCOL_VERSION",
    "WELL_KNOWN_PATH",
    "CardCache",
    "Interface",
    "auth_from_card",
    "auth_hint",
    "card_url_for",
    "fetch_card",
    "select_interface",
    "validate_card",
]

PROTOCOL_VERSION = "1.0"
"""The A2A version this client speaks (sent as ``A2A-Version``)."""
WELL_KNOWN_PATH = "/.well-known/agent-card.json"
DEFAULT_MAX_CARD_SIZE = 1024 * 1024
_MAX_INTERFACES = 64
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def card_url_for(url: str) -> str:
    """The card URL: a card URL as is, else ``<url>/.well-known/agent-card.json``.

    Args:
        url: An agent's base URL or its card's URL.

    Returns:
        The card URL.
    """
    path = urlsplit(url).path
    if path.endswith(".json") or "/.well-known/" in path:
        return url
    return url.rstrip("/") + WELL_KNOWN_PATH


@dataclass(frozen=True)
class Interface:
    """One entry of the card's ``supportedInterfaces``.

    Attributes:
        url: Where the interface is served.
        binding: ``JSONRPC``, ``HTTP+JSON``, ``GRPC`` (or another name).
        version: Its A2A version (``1.0``).
        tenant: Its tenant (``""`` for none).
    """

    url: str
    binding: str
    version: str
    tenant: str = ""

    def __repr__(self) -> str:
        return f"Interface({self.binding} {self.version} at {redact_url(self.url)})"


def _version_ok(version: str) -> bool:
    """Whether an interface's ``protocolVersion`` is one we speak (1.x).

    An absent or empty version counts as 1.x: ProtoJSON leaves a field at its
    default out, so a card built from the 1.0 proto without the field set
    says nothing, and ``supportedInterfaces`` exists only from 1.0 on. A
    leading ``v`` (``"v1.0"``) is accepted, as a2a-go accepts it.
    """
    text = version.strip()
    if not text:
        return True
    if text[0] in "vV":
        text = text[1:]
    return text.split(".", 1)[0] == PROTOCOL_VERSION.split(".", 1)[0]


def _unwrap_oneofs(value: Any, depth: int = 0) -> Any:
    """ts-proto's oneof form turned into ProtoJSON, in place (a security scheme's subtree).

    The official JavaScript SDK (1.3) serves its card with ``JSON.stringify`` of
    its in-memory object, so a oneof reaches the wire as ``{"scheme": {"$case":
    "httpAuthSecurityScheme", "value": {...}}}`` where ProtoJSON has
    ``{"httpAuthSecurityScheme": {...}}`` (OAuth2 flows likewise).
    """
    if isinstance(value, dict) and depth < 8:
        for key in list(value):
            inner = value[key]
            if (
                isinstance(inner, dict)
                and isinstance(inner.get("$case"), str)
                and set(inner) <= {"$case", "value"}
            ):
                del value[key]
                value[inner["$case"]] = _unwrap_oneofs(inner.get("value"), depth + 1)
            else:
                _unwrap_oneofs(inner, depth + 1)
    return value


def validate_card(value: Any, *, source: str) -> dict[str, Any]:
    """Check that a decoded card is an A2A 1.x agent card we can use.

    Args:
        value: The decoded JSON.
        source: The card URL (redacted), for messages.

    Returns:
        The card.

    Raises:
        ProtocolError: Not a card (named what is wrong).
        VersionNotSupportedError: An A2A 0.x card (no ``supportedInterfaces``).
    """
    if not isinstance(value, dict):
        raise errors.ProtocolError(
            f"agent card at {source}: expected a JSON object, got {type(value).__name__}"
        )
    if not isinstance(value.get("name"), str):
        raise errors.ProtocolError(f"agent card at {source}: 'name' is missing or not a string")
    schemes = value.get("securitySchemes")
    if isinstance(schemes, dict):
        for scheme in schemes.values():
            _unwrap_oneofs(scheme)
    interfaces = value.get("supportedInterfaces")
    if interfaces is None:
        if "url" in value or "preferredTransport" in value:
            version = value.get("protocolVersion", "0.x")
            raise VersionNotSupportedError(
                f"agent card at {source} is an A2A {str(version)[:20]} card (no "
                f"supportedInterfaces); this client speaks A2A {PROTOCOL_VERSION}"
            )
        raise errors.ProtocolError(f"agent card at {source}: 'supportedInterfaces' is missing")
    if not isinstance(interfaces, list) or not interfaces:
        raise errors.ProtocolError(
            f"agent card at {source}: 'supportedInterfaces' must be a non-empty list"
        )
    if len(interfaces) > _MAX_INTERFACES:
        raise errors.ProtocolError(
            f"agent card at {source}: {len(interfaces)} interfaces (at most {_MAX_INTERFACES})"
        )
    for index, entry in enumerate(interfaces):
        if not isinstance(entry, dict):
            raise errors.ProtocolError(
                f"agent card at {source}: supportedInterfaces[{index}] is not an object"
            )
        for key in ("url", "protocolBinding"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise errors.ProtocolError(
                    f"agent card at {source}: supportedInterfaces[{index}].{key} is missing "
                    "or not a string"
                )
        for key in ("protocolVersion", "tenant"):
            if key in entry and not isinstance(entry[key], str):
                raise errors.ProtocolError(
                    f"agent card at {source}: supportedInterfaces[{index}].{key} is not a string"
                )
    for key in ("capabilities", "securitySchemes"):
        if key in value and not isinstance(value[key], dict):
            raise errors.ProtocolError(f"agent card at {source}: '{key}' is not an object")
    if "securityRequirements" in value and not isinstance(value["securityRequirements"], list):
        raise errors.ProtocolError(f"agent card at {source}: 'securityRequirements' is not a list")
    return value


def interfaces_of(card: Mapping[str, Any]) -> list[Interface]:
    """The card's interfaces, in its order of preference."""
    return [
        Interface(
            url=entry["url"],
            binding=entry["protocolBinding"].upper(),
            version=entry.get("protocolVersion", ""),
            tenant=entry.get("tenant", ""),
        )
        for entry in card.get("supportedInterfaces", [])
    ]


def select_interface(
    card: Mapping[str, Any],
    *,
    binding: str | None,
    available: Callable[[str], bool],
    source: str,
) -> Interface:
    """Choose the interface to use (specification section 8.3.2).

    The first interface, in the card's order, whose binding we have and whose
    version is 1.x; with ``binding`` given, the first one of that binding.

    Args:
        card: A validated card.
        binding: A ``protocolBinding`` name to insist on, or None.
        available: Whether a binding can be used here.
        source: The card URL (redacted), for messages.

    Returns:
        The interface.

    Raises:
        VersionNotSupportedError: The card offers the binding(s) only at other versions.
        ConfigError: The card offers no interface we can use (or not the forced one).
    """
    offered = interfaces_of(card)
    wrong_version: list[Interface] = []
    for interface in offered:
        if binding is not None and interface.binding != binding:
            continue
        if binding is None and interface.binding not in ("JSONRPC", "HTTP+JSON", "GRPC"):
            continue
        if not _version_ok(interface.version):
            wrong_version.append(interface)
            continue
        if binding is None and not available(interface.binding):
            continue
        return interface
    listing = ", ".join(f"{i.binding} {i.version or '?'}" for i in offered)
    if wrong_version:
        raise VersionNotSupportedError(
            f"agent card at {source} offers {listing}; none at A2A {PROTOCOL_VERSION}"
        )
    wanted = f"a {binding} interface" if binding else "an interface this client can use"
    raise errors.ConfigError(f"binding: the agent card at {source} offers no {wanted} ({listing})")


# -- auth from the card's security schemes --------------------------------------------


def _schemes(card: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The card's security schemes, those its requirements name first."""
    schemes = card.get("securitySchemes")
    if not isinstance(schemes, dict):
        return []
    order: list[str] = []
    for requirement in card.get("securityRequirements") or []:
        names = requirement.get("schemes") if isinstance(requirement, dict) else None
        if isinstance(names, dict):
            order.extend(n for n in names if n in schemes and n not in order)
    order.extend(n for n in schemes if n not in order)
    return [(name, schemes[name]) for name in order if isinstance(schemes[name], dict)]


def _scopes(card: Mapping[str, Any], name: str) -> list[str]:
    for requirement in card.get("securityRequirements") or []:
        names = requirement.get("schemes") if isinstance(requirement, dict) else None
        if isinstance(names, dict) and isinstance(names.get(name), dict):
            listed = names[name].get("list")
            if isinstance(listed, list):
                return [str(s) for s in listed]
    return []


def auth_hint(card: Mapping[str, Any]) -> str:
    """What the card's security schemes ask for, in words (for a 401's message)."""
    said: list[str] = []
    for name, scheme in _schemes(card):
        if "httpAuthSecurityScheme" in scheme:
            kind = str(scheme["httpAuthSecurityScheme"].get("scheme", "")).lower()
            said.append(f"{name}: HTTP {kind or '?'} (pass auth='<token>')")
        elif "apiKeySecurityScheme" in scheme:
            spec = scheme["apiKeySecurityScheme"]
            said.append(
                f"{name}: API key in {spec.get('location', '?')} {spec.get('name', '?')!r} "
                "(pass auth='<key>')"
            )
        elif "oauth2SecurityScheme" in scheme:
            said.append(
                f"{name}: OAuth2 (pass auth={{'client_id': ..., 'client_secret': ...}} "
                "for client credentials)"
            )
        elif "openIdConnectSecurityScheme" in scheme:
            said.append(f"{name}: OpenID Connect (pass auth= with a bearer token)")
        elif "mtlsSecurityScheme" in scheme:
            said.append(f"{name}: mutual TLS (pass client_cert= and client_key=)")
    if not said:
        return ""
    return "the agent card asks for " + "; ".join(said)


def auth_from_card(
    card: Mapping[str, Any], spec: Any, *, allow_insecure: bool
) -> tuple[Auth | None, str | None]:
    """Turn ``auth=`` into an Auth object, using the card's security schemes for bare credentials.

    Args:
        card: The agent card.
        spec: None; an :class:`Auth` or the guide's dict (``{"type": ...}``),
            used as is; a str credential (a bearer token or API key, as the
            card's first HTTP bearer or API-key scheme says); or
            ``{"client_id": ..., "client_secret": ...}`` (OAuth2 client
            credentials at the card's token URL, with its scopes).
        allow_insecure: Passed to OAuth2's token URL check.

    Returns:
        The auth object (or None) and, for OAuth2 from the card, its token URL
        (to be checked against the policy by the caller).

    Raises:
        ConfigError: A credential the card gives no scheme for.
    """
    if spec is None:
        return None, None
    if isinstance(spec, Auth) or (isinstance(spec, Mapping) and "type" in spec):
        return build_auth(spec, allow_insecure=allow_insecure), None
    schemes = _schemes(card)
    if isinstance(spec, str):
        if not spec:
            raise errors.ConfigError("auth: the credential is empty")
        for _name, scheme in schemes:
            http = scheme.get("httpAuthSecurityScheme")
            if isinstance(http, dict) and str(http.get("scheme", "")).lower() == "bearer":
                return BearerAuth(spec), None
            key = scheme.get("apiKeySecurityScheme")
            if isinstance(key, dict) and isinstance(key.get("name"), str):
                location = str(key.get("location", "header")).lower()
                if location not in ("header", "query", "cookie"):
                    raise errors.ConfigError(
                        f"auth: the card's API key location {location!r} is not "
                        "header, query or cookie"
                    )
                return APIKeyAuth(spec, name=key["name"], location=location), None
            if "oauth2SecurityScheme" in scheme or "openIdConnectSecurityScheme" in scheme:
                return BearerAuth(spec), None
        if schemes:
            raise errors.ConfigError(
                "auth: a bare credential needs a bearer, API-key or OAuth2 scheme in the "
                f"agent card; {auth_hint(card)}"
            )
        return BearerAuth(spec), None
    if isinstance(spec, Mapping) and "client_id" in spec:
        for name, scheme in schemes:
            oauth = scheme.get("oauth2SecurityScheme")
            flows = oauth.get("flows") if isinstance(oauth, dict) else None
            flow = flows.get("clientCredentials") if isinstance(flows, dict) else None
            if isinstance(flow, dict) and isinstance(flow.get("tokenUrl"), str):
                scopes = _scopes(card, name)
                options = {k: v for k, v in spec.items()}
                options.setdefault("scope", " ".join(scopes) or None)
                options.setdefault("allow_insecure", allow_insecure)
                try:
                    return OAuth2Auth(token_url=flow["tokenUrl"], **options), flow["tokenUrl"]
                except TypeError as exc:
                    raise errors.ConfigError(f"auth: {exc}") from None
        raise errors.ConfigError(
            "auth: client credentials need an OAuth2 client-credentials flow in the agent "
            f"card; {auth_hint(card) or 'it declares no security scheme'}"
        )
    raise errors.ConfigError(
        "auth: expected an Auth object, a {'type': ...} dict, a credential string or "
        f"{{'client_id': ..., 'client_secret': ...}}, got {type(spec).__name__}"
    )


# -- the cache and the fetch -----------------------------------------------------------


@dataclass
class _Entry:
    card: dict[str, Any]
    etag: str | None
    fresh_until: float


class CardCache:
    """A small LRU of agent cards by URL, with their ETag and freshness.

    Args:
        max_entries: Cards kept at most.
    """

    def __init__(self, max_entries: int = 64) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._max = max_entries

    def get(self, url: str) -> _Entry | None:
        """The entry for ``url``, if any (marked recently used)."""
        entry = self._entries.get(url)
        if entry is not None:
            self._entries.move_to_end(url)
        return entry

    def put(self, url: str, entry: _Entry) -> None:
        """Store an entry, dropping the least recently used beyond the limit."""
        self._entries[url] = entry
        self._entries.move_to_end(url)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every card."""
        self._entries.clear()


CARD_CACHE = CardCache()
"""The process-wide card cache (``CARD_CACHE.clear()`` forgets every card)."""


def _max_age(cache_control: str) -> float:
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else 0.0


async def fetch_card(
    url: str,
    *,
    options: Mapping[str, Any],
    max_size: int = DEFAULT_MAX_CARD_SIZE,
    timeout: float | None = 30.0,
    cache: CardCache | None = CARD_CACHE,
    refuse_local: bool = False,
) -> dict[str, Any]:
    """GET the agent card (conditionally, when a cached copy has an ETag) and check it.

    Args:
        url: The card URL (already checked by the policy).
        options: :class:`HTTPConfig` fields (``headers``, ``verify_ssl``,
            ``allow_insecure``, ``transport`` ...; no ``auth``: the card is public).
        max_size: Largest card body, in bytes.
        timeout: Seconds the fetch may take.
        cache: Where cards are kept (None: no caching).
        refuse_local: The card URL is on another machine: a redirect may not
            lead to this machine or a private network.

    Returns:
        The card, validated.

    Raises:
        SecurityError: A redirect to a forbidden place.
        A2AAuthError: 401/403.
        HTTPStatusError: Another non-2xx status.
        MessageTooLargeError: The card exceeds ``max_size``.
        ProtocolError: Not a card.
        VersionNotSupportedError: An A2A 0.x card.
    """
    shown = redact_url(url)
    entry = cache.get(url) if cache is not None else None
    now = time.monotonic()
    if entry is not None and entry.fresh_until > now:
        return entry.card
    headers = {"Accept": "application/json"}
    if entry is not None and entry.etag:
        headers["If-None-Match"] = entry.etag
    async with GuardedHTTPClient(refuse_local=refuse_local, **options) as http:
        response = await http.get(url, headers=headers, timeout=timeout, max_response_size=max_size)
    status = response.status_code
    if status == 304 and entry is not None:
        entry.fresh_until = now + _max_age(response.headers.get("cache-control", ""))
        return entry.card
    if status in (401, 403):
        raise A2AAuthError(
            f"agent card at {shown}: answered {status} (the card should be public)",
            status_code=status,
        )
    if status != 200:
        raise errors.HTTPStatusError(
            f"agent card at {shown}: answered {status} {response.reason_phrase}",
            status_code=status,
            body_preview=response.text[:300],
        )
    try:
        value = loads(response.content)
    except errors.ProtocolError as exc:
        raise errors.ProtocolError(
            f"agent card at {shown} is not JSON ({exc.message}); it starts "
            f"{response.content[:100]!r}"
        ) from exc
    card = validate_card(value, source=shown)
    if cache is not None:
        etag = response.headers.get("etag")
        max_age = _max_age(response.headers.get("cache-control", ""))
        if etag or max_age:
            cache.put(url, _Entry(card, etag, now + max_age))
    return card
