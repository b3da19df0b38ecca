"""MCP authorization without I/O: the documents, URLs and values of the flow.

Everything here is a pure function or a small value object, unit-testable
without sockets: the well-known URLs to try (RFC 9728, RFC 8414, OpenID
Connect discovery, in the order the MCP specification lists), the checks of
each metadata document, the resource indicator (RFC 8707), scope selection
and union, PKCE S256, the authorization URL, the callback's state check and
the token response. ``flow.py`` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ....core import errors
from ....core.auth import _expires_in
from ....core.security import REDACTED, check_not_local, check_url, redact_text, redact_url

__all__ = [
    "AUTH_METHODS",
    "JWT_BEARER_ASSERTION",
    "PKCE",
    "AuthServerMetadata",
    "ClientInfo",
    "OAuthError",
    "OAuthTokens",
    "ResourceMetadata",
    "as_metadata_urls",
    "authorization_url",
    "canonical_resource",
    "check_discovered_url",
    "choose_auth_method",
    "client_auth",
    "issuers_match",
    "parse_as_metadata",
    "parse_callback",
    "parse_resource_metadata",
    "parse_token_response",
    "registered_client",
    "resource_allowed",
    "resource_metadata_urls",
    "select_scope",
    "sign_assertion",
    "token_error",
    "union_scopes",
]

_HTTP = frozenset({"http", "https"})
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
AUTH_METHODS = frozenset({"none", "client_secret_basic", "client_secret_post", "private_key_jwt"})
"""The token endpoint auth methods this client can apply."""
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ASSERTION_LIFETIME = 300


class OAuthError(errors.AuthenticationError):
    """An authorization server refused a request (token, registration, authorization).

    Attributes:
        error: The OAuth ``error`` code (``invalid_grant``, ``access_denied``
            ...), or None when the server sent none.
        status_code: The HTTP status, when there was one.
    """

    def __init__(
        self, message: str, *, error: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(redact_text(message))
        self.error = error
        self.status_code = status_code


# -- value objects ---------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class OAuthTokens:
    """Tokens from a token endpoint; never printed.

    Attributes:
        access_token: The bearer token.
        refresh_token: The refresh token, if the server issued one.
        expires_at: When the access token expires (``time.time()`` seconds),
            or None when the server did not say.
        scope: The scope granted (or asked for, when the server did not say).
        issuer: The authorization server that issued them.
    """

    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    issuer: str | None = None

    def due(self, margin: float) -> bool:
        """Whether the access token expires within ``margin`` seconds."""
        return self.expires_at is not None and time.time() >= self.expires_at - margin

    def __repr__(self) -> str:
        refresh = "'***'" if self.refresh_token else "None"
        return (
            f"OAuthTokens(access_token='***', refresh_token={refresh}, "
            f"expires_at={self.expires_at!r}, scope={self.scope!r}, issuer={self.issuer!r})"
        )


@dataclass(frozen=True, repr=False)
class ClientInfo:
    """A client registration (pre-registered, by metadata document or dynamic).

    Attributes:
        client_id: The client id (an HTTPS URL for a Client ID Metadata Document).
        client_secret: The secret, for ``client_secret_basic``/``_post``.
        auth_method: ``none``, ``client_secret_basic``, ``client_secret_post``
            or ``private_key_jwt``.
        redirect_uris: The redirect URIs registered.
        issuer: The authorization server it was registered with (None:
            pre-registered or portable).
    """

    client_id: str
    client_secret: str | None = None
    auth_method: str = "none"
    redirect_uris: tuple[str, ...] = ()
    issuer: str | None = None

    def __repr__(self) -> str:
        return (
            f"ClientInfo(client_id={self.client_id!r}, auth_method={self.auth_method!r}, "
            f"client_secret={'***' if self.client_secret else None!r}, issuer={self.issuer!r})"
        )


@dataclass(frozen=True)
class ResourceMetadata:
    """OAuth 2.0 Protected Resource Metadata (RFC 9728), the fields we use."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None = None
    url: str = ""


@dataclass(frozen=True)
class AuthServerMetadata:
    """Authorization Server Metadata (RFC 8414 / OpenID Connect discovery), the fields we use."""

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    registration_endpoint: str | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    scopes_supported: tuple[str, ...] | None = None
    client_id_metadata_document_supported: bool = False
    authorization_response_iss_parameter_supported: bool = False
    jwks_uri: str | None = None
    url: str = ""

    def urls(self) -> dict[str, str]:
        """Every URL of the document, by field name, for the policy check."""
        named = {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "authorization_endpoint": self.authorization_endpoint,
            "registration_endpoint": self.registration_endpoint,
            "jwks_uri": self.jwks_uri,
        }
        return {name: value for name, value in named.items() if value}


@dataclass(frozen=True, repr=False)
class PKCE:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""

    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> PKCE:
        """A fresh pair: 64 random URL-safe characters and their SHA-256."""
        verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43..128
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))

    def __repr__(self) -> str:
        return "PKCE(verifier='***')"


# -- URLs ------------------------------------------------------------------------------


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server (RFC 8707): lower-case scheme and host, no fragment.

    Args:
        url: The MCP endpoint URL.

    Returns:
        The URL without its fragment, scheme and host lower-cased.
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def resource_allowed(server_resource: str, metadata_resource: str) -> bool:
    """Whether the metadata's ``resource`` names the server (the same origin, a parent path).

    Args:
        server_resource: The canonical URI of the server we talk to.
        metadata_resource: The ``resource`` of its Protected Resource Metadata.

    Returns:
        True when the origins match and the server's path is the metadata's
        path or below it.
    """
    ours = urlsplit(server_resource)
    theirs = urlsplit(metadata_resource)
    if (ours.scheme.lower(), ours.netloc.lower()) != (theirs.scheme.lower(), theirs.netloc.lower()):
        return False
    ours_path = ours.path.rstrip("/") + "/"
    theirs_path = theirs.path.rstrip("/") + "/"
    return ours_path.startswith(theirs_path)


def resource_metadata_urls(server_url: str, from_header: str | None) -> list[str]:
    """Where to look for the Protected Resource Metadata, in the specification's order.

    The ``resource_metadata`` of ``WWW-Authenticate`` first; then the
    well-known URI at the endpoint's path; then at the root.

    Args:
        server_url: The MCP endpoint.
        from_header: The ``resource_metadata`` the server named, if any.

    Returns:
        The URLs to try, without duplicates.
    """
    parts = urlsplit(server_url)
    base = f"{parts.scheme}://{parts.netloc}"
    urls = [from_header] if from_header else []
    path = parts.path.rstrip("/")
    if path:
        urls.append(f"{base}/.well-known/oauth-protected-resource{path}")
    urls.append(f"{base}/.well-known/oauth-protected-resource")
    return list(dict.fromkeys(urls))


def as_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an authorization server's metadata, in the specification's order.

    With a path (``https://auth.example.com/tenant1``): RFC 8414 with path
    insertion, OpenID Connect with path insertion, OpenID Connect appended.
    Without: RFC 8414, then OpenID Connect.

    Args:
        issuer: The authorization server's issuer URL.

    Returns:
        The URLs to try.
    """
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if path:
        return [
            f"{base}/.well-known/oauth-authorization-server{path}",
            f"{base}/.well-known/openid-configuration{path}",
            f"{base}{path}/.well-known/openid-configuration",
        ]
    return [
        f"{base}/.well-known/oauth-authorization-server",
        f"{base}/.well-known/openid-configuration",
    ]


def issuers_match(a: str, b: str) -> bool:
    """RFC 8414 §3.3 string comparison, a root issuer's trailing slash aside."""
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    parts = urlsplit(shorter)
    return longer == shorter + "/" and shorter == f"{parts.scheme}://{parts.netloc}"


async def check_discovered_url(
    url: str, *, what: str, allow_insecure: bool, server_is_local: bool
) -> None:
    """Apply the security policy to a URL a metadata document gave us, before any use.

    The URL policy of :func:`check_url` (HTTPS, or plain HTTP to loopback
    only unless ``allow_insecure``); and when the MCP server itself is not on
    this machine or a private network, its documents may not send us there.

    Args:
        url: The URL.
        what: Its name in the error (``token_endpoint`` ...).
        allow_insecure: The client's opt-out of the TLS rule.
        server_is_local: Whether the MCP server is local (then local URLs are fine).

    Raises:
        SecurityError: The URL breaks the policy.
        ProtocolError: It is not a URL.
    """
    if not isinstance(url, str) or not url:
        raise errors.ProtocolError(f"{what}: not a URL: {redact_text(repr(url))[:100]}")
    try:
        check_url(url, allow_insecure=allow_insecure, schemes=_HTTP)
    except errors.SecurityError as exc:
        raise errors.SecurityError(f"{what}: {exc.message}") from exc
    except errors.ConfigError as exc:
        raise errors.ProtocolError(f"{what}: {exc.message}") from exc
    if not server_is_local:
        await check_not_local(url, what=what)


# -- documents -------------------------------------------------------------------------


def _strings(doc: Mapping[str, Any], name: str, where: str) -> tuple[str, ...] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.ProtocolError(f"{where}: {name} must be a list of strings")
    return tuple(value)


def _string(doc: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise errors.ProtocolError(f"{where}: {name} is missing")
        return None
    if not isinstance(value, str) or not value:
        raise errors.ProtocolError(f"{where}: {name} must be a non-empty string")
    return value


def parse_resource_metadata(doc: Any, url: str) -> ResourceMetadata:
    """Check a Protected Resource Metadata document (RFC 9728).

    Args:
        doc: The decoded JSON.
        url: Where it came from (for errors).

    Returns:
        The fields we use.

    Raises:
        ProtocolError: Not an object; no ``resource``; no authorization server.
    """
    where = f"protected resource metadata at {redact_url(url)}"
    if not isinstance(doc, dict):
        raise errors.ProtocolError(f"{where}: not a JSON object")
    resource = _string(doc, "resource", where, required=True)
    servers = _strings(doc, "authorization_servers", where)
    if not servers:
        raise errors.ProtocolError(f"{where}: authorization_servers names no server")
    assert resource is not None
    return ResourceMetadata(resource, servers, _strings(doc, "scopes_supported", where), url)


def parse_as_metadata(doc: Any, url: str, expected_issuer: str) -> AuthServerMetadata:
    """Check an authorization server's metadata (RFC 8414 / OpenID Connect discovery).

    Args:
        doc: The decoded JSON.
        url: Where it came from (for errors).
        expected_issuer: The issuer the metadata URL was built from.

    Returns:
        The fields we use.

    Raises:
        ProtocolError: Not an object; a field of the wrong type; no token endpoint.
        SecurityError: The ``issuer`` is not the one asked for (RFC 8414 §3.3).
    """
    where = f"authorization server metadata at {redact_url(url)}"
    if not isinstance(doc, dict):
        raise errors.ProtocolError(f"{where}: not a JSON object")
    issuer = _string(doc, "issuer", where, required=True)
    assert issuer is not None
    if not issuers_match(issuer, expected_issuer):
        raise errors.SecurityError(
            f"{where}: issuer {redact_url(issuer)!r} is not {redact_url(expected_issuer)!r} "
            "(RFC 8414: the metadata must name the server it was asked of)"
        )
    token_endpoint = _string(doc, "token_endpoint", where, required=True)
    assert token_endpoint is not None
    for flag in (
        "client_id_metadata_document_supported",
        "authorization_response_iss_parameter_supported",
    ):
        if doc.get(flag) is not None and not isinstance(doc.get(flag), bool):
            raise errors.ProtocolError(f"{where}: {flag} must be true or false")
    return AuthServerMetadata(
        issuer=issuer,
        token_endpoint=token_endpoint,
        authorization_endpoint=_string(doc, "authorization_endpoint", where),
        registration_endpoint=_string(doc, "registration_endpoint", where),
        code_challenge_methods_supported=_strings(doc, "code_challenge_methods_supported", where)
        or (),
        token_endpoint_auth_methods_supported=_strings(
            doc, "token_endpoint_auth_methods_supported", where
        ),
        grant_types_supported=_strings(doc, "grant_types_supported", where),
        scopes_supported=_strings(doc, "scopes_supported", where),
        client_id_metadata_document_supported=doc.get("client_id_metadata_document_supported")
        is True,
        authorization_response_iss_parameter_supported=doc.get(
            "authorization_response_iss_parameter_supported"
        )
        is True,
        jwks_uri=_string(doc, "jwks_uri", where),
        url=url,
    )


# -- scopes ----------------------------------------------------------------------------


def select_scope(challenged: str | None, metadata: ResourceMetadata | None) -> str | None:
    """The scope to ask for: the challenge's, else ``scopes_supported``, else none.

    Args:
        challenged: The ``scope`` of ``WWW-Authenticate``.
        metadata: The Protected Resource Metadata.

    Returns:
        A space-separated scope, or None to omit the parameter.
    """
    if challenged:
        return challenged
    if metadata is not None and metadata.scopes_supported:
        return " ".join(metadata.scopes_supported)
    return None


def union_scopes(*scopes: str | None) -> str | None:
    """Merge space-separated scopes, first seen first, without duplicates.

    Returns:
        The union, or None when every argument is empty.
    """
    merged: dict[str, None] = {}
    for scope in scopes:
        for item in (scope or "").split():
            merged.setdefault(item, None)
    return " ".join(merged) or None


# -- the authorization request and its callback -----------------------------------------


def authorization_url(endpoint: str, params: Mapping[str, str]) -> str:
    """The authorization endpoint with the request's parameters added to its query.

    Args:
        endpoint: The ``authorization_endpoint``.
        params: ``response_type``, ``client_id``, ``state``, ``code_challenge`` ...

    Returns:
        The URL the user opens.
    """
    parts = urlsplit(endpoint)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def parse_callback(result: Any, *, state: str, issuer: str, iss_required: bool) -> str:
    """The authorization code from what the user step returned, its state checked.

    Args:
        result: The callback URL (or its query string), a ``(code, state)``
            pair, or a mapping with ``code`` and ``state``.
        state: The state the request was sent with.
        issuer: The authorization server's issuer (RFC 9207 ``iss`` check).
        iss_required: The server said it always sends ``iss``.

    Returns:
        The code.

    Raises:
        OAuthError: The server answered with an error (``access_denied`` ...)
            or no code.
        SecurityError: The state is missing or not ours; ``iss`` is not the issuer.
        ConfigError: The hook returned something else.
    """
    params: dict[str, str]
    if isinstance(result, str):
        query = urlsplit(result).query if "://" in result else result.lstrip("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
    elif isinstance(result, tuple) and len(result) == 2:
        params = {"code": str(result[0]), "state": str(result[1])}
    elif isinstance(result, Mapping):
        params = {str(k): str(v) for k, v in result.items() if v is not None}
    else:
        raise errors.ConfigError(
            "authorize: the hook must return the callback URL, a (code, state) pair "
            f"or a mapping, not {type(result).__name__}"
        )
    if params.get("error"):
        description = params.get("error_description", "")
        raise OAuthError(
            f"authorization was refused: {params['error'][:100]}"
            + (f": {description[:200]}" if description else ""),
            error=params["error"][:100],
        )
    got = params.get("state")
    if not got or not secrets.compare_digest(got.encode(), state.encode()):
        raise errors.SecurityError(
            "authorization callback: the state is missing or not the one sent "
            "(a forged or stale callback); the code was not used"
        )
    iss = params.get("iss")
    if iss is not None and not issuers_match(iss, issuer):
        raise errors.SecurityError(
            f"authorization callback: iss {redact_url(iss)!r} is not the issuer "
            f"{redact_url(issuer)!r} (RFC 9207 mix-up defence)"
        )
    if iss is None and iss_required:
        raise errors.SecurityError(
            "authorization callback: no iss, which the authorization server said it sends"
        )
    code = params.get("code")
    if not code:
        raise OAuthError("authorization callback: no code")
    return code


# -- the token endpoint -------------------------------------------------------------------


def token_error(status: int, body: Any, what: str, hide: Iterable[str | None] = ()) -> OAuthError:
    """The error for a refusal by a token or registration endpoint.

    Args:
        status: The HTTP status.
        body: The decoded JSON body, if it was JSON.
        what: ``token request to https://...`` (already redacted).
        hide: The secrets the request carried (code, verifier, secret,
            refresh token ...): a server that echoes one back in its
            ``error_description`` gets ``***`` printed instead.

    Returns:
        An :class:`OAuthError` naming the server's ``error`` code.
    """
    code = description = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            code = body["error"][:100]
        if isinstance(body.get("error_description"), str):
            description = body["error_description"][:200]
    message = f"{what}: answered {status}"
    if code:
        message += f" {code}" + (f": {description}" if description else "")
    for secret in hide:
        if secret and len(secret) >= 4:
            message = message.replace(secret, REDACTED)
    return OAuthError(message, error=code, status_code=status)


def parse_token_response(
    body: Any, *, what: str, requested_scope: str | None, issuer: str, previous: OAuthTokens | None
) -> OAuthTokens:
    """Check a successful token response (RFC 6749 §5.1).

    Args:
        body: The decoded JSON.
        what: For errors (redacted).
        requested_scope: What was asked for (the granted scope when the server omits it).
        issuer: The authorization server.
        previous: The tokens a refresh replaces (a refresh token or scope the
            server leaves out is kept).

    Returns:
        The tokens.

    Raises:
        ProtocolError: No ``access_token``; a ``token_type`` other than Bearer;
            a bad ``expires_in``.
    """
    if not isinstance(body, dict):
        raise errors.ProtocolError(f"{what}: the token response is not a JSON object")
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise errors.ProtocolError(f"{what}: the token response has no access_token")
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = token_type[:40] if isinstance(token_type, str) else type(token_type).__name__
        raise errors.ProtocolError(
            f"{what}: token_type {shown!r} is not Bearer, the only kind MCP uses"
        )
    expires_at: float | None = None
    if body.get("expires_in") is not None:
        seconds = _expires_in(body["expires_in"])
        expires_at = time.time() + seconds if math.isfinite(seconds) else None
    refresh = body.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not refresh):
        raise errors.ProtocolError(f"{what}: refresh_token must be a non-empty string")
    scope = body.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise errors.ProtocolError(f"{what}: scope must be a string")
    if previous is not None:
        refresh = refresh or previous.refresh_token
        scope = scope if scope is not None else previous.scope
    return OAuthTokens(
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        scope=scope if scope is not None else requested_scope,
        issuer=issuer,
    )


def client_auth(
    client: ClientInfo, form: dict[str, str], assertion: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Apply the client's token endpoint auth method to a token request.

    Args:
        client: The registration.
        form: The form fields of the request.
        assertion: The signed JWT, for ``private_key_jwt`` (RFC 7523).

    Returns:
        The form and the extra headers to send.

    Raises:
        ConfigError: A secret method with no secret, ``private_key_jwt``
            without an assertion, or a method we do not speak.
    """
    form = {**form, "client_id": client.client_id}
    method = client.auth_method
    if method not in AUTH_METHODS:
        raise errors.ConfigError(
            f"token_endpoint_auth_method: {method!r} is not one of "
            + ", ".join(sorted(AUTH_METHODS))
        )
    if method in _SECRET_METHODS and not client.client_secret:
        raise errors.ConfigError(f"token_endpoint_auth_method {method}: needs a client_secret")
    if method == "private_key_jwt":
        if not assertion:
            raise errors.ConfigError(
                "token_endpoint_auth_method private_key_jwt: "
                "needs private_key= or client_assertion="
            )
        form["client_assertion_type"] = JWT_BEARER_ASSERTION
        form["client_assertion"] = assertion
        return form, {}
    if method == "client_secret_post":
        assert client.client_secret is not None
        form["client_secret"] = client.client_secret
        return form, {}
    if method == "client_secret_basic":
        from urllib.parse import quote

        assert client.client_secret is not None
        # RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        return form, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return form, {}


def choose_auth_method(
    supported: tuple[str, ...] | None, *, has_secret: bool, wanted: str | None = None
) -> str:
    """The token endpoint auth method to use with the server's metadata.

    Args:
        supported: ``token_endpoint_auth_methods_supported`` (None: absent,
            which RFC 8414 reads as ``client_secret_basic``).
        has_secret: Whether the client has a secret.
        wanted: The method the user asked for, if any (used as given).

    Returns:
        ``client_secret_basic`` (the default for a secret), ``client_secret_post``
        when only that is supported, or ``none`` without a secret.
    """
    if wanted:
        return wanted
    if not has_secret:
        return "none"
    if (
        supported is not None
        and "client_secret_basic" not in supported
        and "client_secret_post" in supported
    ):
        return "client_secret_post"
    return "client_secret_basic"


def registered_client(body: Any, *, what: str, issuer: str, redirect_uri: str) -> ClientInfo:
    """Check a Dynamic Client Registration response (RFC 7591 §3.2.1).

    Args:
        body: The decoded JSON.
        what: For errors (redacted).
        issuer: The server it was registered with.
        redirect_uri: The redirect URI we registered.

    Returns:
        The registration.

    Raises:
        ProtocolError: No ``client_id``; a method we cannot use; a secret
            method with no secret.
    """
    if not isinstance(body, dict):
        raise errors.ProtocolError(f"{what}: the registration response is not a JSON object")
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise errors.ProtocolError(f"{what}: the registration response has no client_id")
    secret = body.get("client_secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise errors.ProtocolError(f"{what}: client_secret must be a non-empty string")
    method = body.get("token_endpoint_auth_method")
    if method is None:
        method = "client_secret_basic" if secret else "none"
    if method not in AUTH_METHODS or method == "private_key_jwt":  # we never ask for it
        raise errors.ProtocolError(
            f"{what}: the server registered the client for token_endpoint_auth_method "
            f"{str(method)[:60]!r}, which this client cannot use"
        )
    if method in _SECRET_METHODS and not secret:
        raise errors.ProtocolError(f"{what}: registered for {method} but no client_secret issued")
    return ClientInfo(client_id, secret, method, (redirect_uri,), issuer)


def sign_assertion(
    client_id: str, audience: str, key: str | bytes, *, algorithm: str, kid: str | None
) -> str:
    """A client assertion for ``private_key_jwt`` (RFC 7523 §3), signed with ``key``.

    ``iss`` and ``sub`` are the client id, ``aud`` the authorization server's
    issuer, with a fresh ``jti`` and a lifetime of five minutes.

    Args:
        client_id: The client id.
        audience: The authorization server's issuer identifier.
        key: The private key (PEM).
        algorithm: ``RS256``, ``ES256``, ``PS256`` ...
        kid: The key id to put in the header, if any.

    Returns:
        The compact JWT.

    Raises:
        ConfigError: PyJWT is not installed (the ``jwt`` extra), or the key
            does not fit the algorithm.
    """
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise errors.ConfigError(
            "private_key: signing needs PyJWT: pip install 'agenticaiframework-communication[jwt]'"
        ) from exc
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + _ASSERTION_LIFETIME,
        "jti": secrets.token_urlsafe(16),
    }
    try:
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)
    except (jwt.exceptions.PyJWTError, ValueError, TypeError) as exc:
        raise errors.ConfigError(
            f"private_key: cannot sign a {algorithm} assertion with it ({type(exc).__name__})"
        ) from None
