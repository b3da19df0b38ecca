"""MCPOAuth: MCP authorization (2025-11-25) as an auth flow of the HTTP transports.

``MCPClient(url, auth=MCPOAuth(...))``. Every request carries the current
access token. On 401 the flow discovers the authorization server (the
Protected Resource Metadata named by ``WWW-Authenticate``, else the
well-known URIs; then RFC 8414 / OpenID Connect discovery; for a server
without that metadata, the 2025-03-26 rule: its origin is the authorization
server, at its RFC 8414 metadata or the default endpoints), registers the
client if it must (pre-registered, Client ID Metadata Document, Dynamic
Client Registration, in that order), obtains a token (authorization code
with PKCE S256 and the ``resource`` parameter through the user's
``authorize`` hook, or client credentials) and sends the request again. A
token near its expiry, or refused with 401, is refreshed first. A 403
``insufficient_scope`` re-authorizes with the union of the scopes (a few
times at most). Every URL a metadata document names passes the security
policy before it is used; tokens and secrets are never printed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from ....core import errors
from ....core.auth import Auth, OAuth2Auth
from ....core.codecs import loads
from ....core.security import check_url, redact_text, redact_url, resolves_to_local
from ....http.client import HTTPClient, HTTPResponse
from ..streamable_http import parse_bearer_challenge
from .core import (
    PKCE,
    AuthServerMetadata,
    ClientInfo,
    OAuthError,
    OAuthTokens,
    ResourceMetadata,
    as_metadata_urls,
    authorization_url,
    canonical_resource,
    check_discovered_url,
    choose_auth_method,
    client_auth,
    parse_as_metadata,
    parse_callback,
    parse_resource_metadata,
    parse_token_response,
    registered_client,
    resource_allowed,
    resource_metadata_urls,
    select_scope,
    sign_assertion,
    token_error,
    union_scopes,
)
from .store import MemoryTokenStore, TokenStore

__all__ = ["AuthorizeHook", "MCPOAuth"]

AuthorizeHook = Callable[[str], Awaitable[Any] | Any]
"""The user step: gets the authorization URL, returns the callback URL (or ``(code, state)``)."""

logger = logging.getLogger("agenticaiframework.communication.mcp.auth")

_GRANTS = ("authorization_code", "client_credentials")
_HTTP = frozenset({"http", "https"})
_MAX_DOCUMENT = 256 * 1024
_MAX_CHALLENGE_BODY = 64 * 1024
_METADATA_HEADERS = {"Accept": "application/json", "MCP-Protocol-Version": "2025-11-25"}


class MCPOAuth(Auth):
    """MCP authorization for :class:`MCPClient` over Streamable HTTP (or HTTP+SSE).

    Args:
        authorize: The user step of the authorization-code flow: an (async)
            callable that gets the authorization URL and returns the callback
            URL the browser was sent to (or its query, a ``(code, state)``
            pair, or a mapping). A CLI opens a browser and waits on a local
            listener; a test follows the redirect itself.
        client_id: A pre-registered client id (used before any registration).
        client_secret: Its secret, if confidential.
        token_endpoint_auth_method: ``none``, ``client_secret_basic``,
            ``client_secret_post`` or ``private_key_jwt``; default:
            ``private_key_jwt`` with a key or assertion, ``client_secret_basic``
            for a secret (``client_secret_post`` if the server offers only
            that), else ``none``.
        private_key: A PEM private key for ``private_key_jwt``: each token
            request carries an assertion signed with it (RFC 7523; needs the
            ``jwt`` extra, PyJWT).
        private_key_algorithm: Its JWS algorithm (``RS256``, ``ES256`` ...).
        private_key_id: The ``kid`` of the key, if the server wants it.
        client_assertion: Instead of a key: an (async) callable that gets the
            authorization server's issuer (the audience) and returns a signed
            JWT (workload identity, a KMS).
        client_metadata_url: The HTTPS URL of this client's Client ID
            Metadata Document, used as ``client_id`` when the server supports it.
        client_name: The ``client_name`` of a Dynamic Client Registration.
        redirect_uri: Where the authorization server sends the browser back
            (HTTPS, or HTTP to loopback); must be registered for a
            pre-registered client.
        grant: ``authorization_code`` or ``client_credentials``; default: the
            first when ``authorize`` is given, else the second (which needs
            ``client_id`` and a secret, key or assertion).
        scope: The scope to ask for first; default: the server's challenge,
            else its ``scopes_supported``, else none.
        store: Where tokens and registrations are kept (memory by default).
        refresh_margin: Seconds before expiry at which a token is refreshed.
        max_step_ups: Re-authorizations for ``insufficient_scope`` per request.
        authorize_timeout: Seconds the ``authorize`` hook may take.
        timeout: Seconds for each metadata, registration or token request.

    Raises:
        ConfigError: A missing or inconsistent argument (named).
    """

    def __init__(
        self,
        *,
        authorize: AuthorizeHook | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str | None = None,
        private_key: str | bytes | None = None,
        private_key_algorithm: str = "RS256",
        private_key_id: str | None = None,
        client_assertion: Callable[[str], Awaitable[str] | str] | None = None,
        client_metadata_url: str | None = None,
        client_name: str = "agenticaiframework-communication",
        redirect_uri: str = "http://127.0.0.1/callback",
        grant: str | None = None,
        scope: str | None = None,
        store: TokenStore | None = None,
        refresh_margin: float = 30.0,
        max_step_ups: int = 2,
        authorize_timeout: float = 300.0,
        timeout: float = 30.0,
    ) -> None:
        if authorize is not None and not callable(authorize):
            raise errors.ConfigError(f"authorize: must be callable, got {authorize!r}")
        grant = grant or ("authorization_code" if authorize is not None else "client_credentials")
        if grant not in _GRANTS:
            raise errors.ConfigError(f"grant: must be one of {', '.join(_GRANTS)}, got {grant!r}")
        if grant == "authorization_code" and authorize is None:
            raise errors.ConfigError(
                "authorize: the authorization-code grant needs the user step "
                "(an async callable: authorization URL in, callback URL out)"
            )
        if client_assertion is not None and not callable(client_assertion):
            raise errors.ConfigError(
                f"client_assertion: must be callable, got {type(client_assertion).__name__}"
            )
        if private_key is not None and client_assertion is not None:
            raise errors.ConfigError("give private_key= or client_assertion=, not both")
        signs = private_key is not None or client_assertion is not None
        if signs and token_endpoint_auth_method is None:
            token_endpoint_auth_method = "private_key_jwt"
        if grant == "client_credentials" and not (client_id and (client_secret or signs)):
            raise errors.ConfigError(
                "MCPOAuth: give authorize= (a user step) or client_id= and client_secret= "
                "(or private_key=) for the client-credentials grant"
            )
        if token_endpoint_auth_method is not None and token_endpoint_auth_method not in (
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ):
            raise errors.ConfigError(
                "token_endpoint_auth_method: must be none, client_secret_basic, "
                f"client_secret_post or private_key_jwt, got {token_endpoint_auth_method!r}"
            )
        if token_endpoint_auth_method == "private_key_jwt" and not (signs and client_id):
            raise errors.ConfigError(
                "token_endpoint_auth_method private_key_jwt: needs client_id= and "
                "private_key= or client_assertion="
            )
        if token_endpoint_auth_method in ("client_secret_basic", "client_secret_post") and (
            not client_secret
        ):
            raise errors.ConfigError(
                f"token_endpoint_auth_method {token_endpoint_auth_method}: needs client_secret="
            )
        if client_secret is not None and not client_id:
            raise errors.ConfigError("client_secret: given without client_id")
        if client_metadata_url is not None:
            parts = urlsplit(client_metadata_url)
            if parts.scheme != "https" or parts.path in ("", "/") or not parts.hostname:
                raise errors.ConfigError(
                    "client_metadata_url: must be an https URL with a path (e.g. "
                    f"https://app.example/client.json), got {redact_url(client_metadata_url)!r}"
                )
        try:
            check_url(redirect_uri, schemes=_HTTP)
        except errors.SecurityError as exc:
            raise errors.ConfigError(
                f"redirect_uri: must be https or http to loopback ({exc.message})"
            ) from exc
        for name, value in (
            ("refresh_margin", refresh_margin),
            ("authorize_timeout", authorize_timeout),
            ("timeout", timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise errors.ConfigError(f"{name}: must be a number >= 0, got {value!r}")
        if isinstance(max_step_ups, bool) or not isinstance(max_step_ups, int) or max_step_ups < 0:
            raise errors.ConfigError(f"max_step_ups: must be an int >= 0, got {max_step_ups!r}")
        self._authorize = authorize
        self.client_id = client_id
        self._client_secret = client_secret
        self._auth_method = token_endpoint_auth_method
        self._private_key = private_key
        self.private_key_algorithm = private_key_algorithm
        self.private_key_id = private_key_id
        self._client_assertion = client_assertion
        self.client_metadata_url = client_metadata_url
        self.client_name = client_name
        self.redirect_uri = redirect_uri
        self.grant = grant
        self.scope = scope
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.refresh_margin = float(refresh_margin)
        self.max_step_ups = max_step_ups
        self.authorize_timeout = float(authorize_timeout)
        self.timeout = float(timeout)
        self.requires_response_body = False
        self._server_url: str | None = None
        self._resource: str | None = None
        self._allow_insecure = False
        self._verify: bool | str = True
        self._server_local: bool | None = None
        self._lock: asyncio.Lock | None = None
        self._loaded = False
        self._tokens: OAuthTokens | None = None
        self._client: ClientInfo | None = None
        self._prm: ResourceMetadata | None = None
        self._asm: AuthServerMetadata | None = None
        self._requested_scope: str | None = None
        self._cc: OAuth2Auth | None = None

    def __repr__(self) -> str:
        target = redact_url(self._server_url) if self._server_url else None
        return (
            f"MCPOAuth(grant={self.grant!r}, client_id={self.client_id!r}, server={target!r}, "
            f"client_secret={'***' if self._client_secret else None!r}, "
            f"private_key={'***' if self._private_key else None!r})"
        )

    # -- binding ---------------------------------------------------------------------

    def bind(self, url: str, *, allow_insecure: bool = False, verify: bool | str = True) -> None:
        """Tie this flow to one MCP server (MCPClient does this).

        Args:
            url: The MCP endpoint.
            allow_insecure: The client's opt-out of the TLS rule (applies to
                every metadata, registration and token URL too).
            verify: TLS verification for those requests.

        Raises:
            ConfigError: Already tied to another server.
        """
        resource = canonical_resource(url)
        if self._resource is not None and self._resource != resource:
            raise errors.ConfigError(
                f"auth: this MCPOAuth is for {redact_url(self._resource)!r}; "
                "make one per MCP server"
            )
        self._server_url = url
        self._resource = resource
        self._allow_insecure = allow_insecure
        self._verify = verify

    @property
    def resource(self) -> str | None:
        """The ``resource`` parameter sent (RFC 8707), once known."""
        if self._prm is not None:
            return self._prm.resource
        return self._resource

    @property
    def authorization_server(self) -> str | None:
        """The issuer of the authorization server in use, once discovered."""
        return self._asm.issuer if self._asm is not None else None

    @property
    def tokens(self) -> OAuthTokens | None:
        """The current tokens (their repr shows no secret), if any."""
        return self._tokens

    # -- the httpx flow ----------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the current token; on 401 or 403 insufficient_scope, authorize and resend."""
        try:
            if self._resource is None:
                self.bind(str(request.url.copy_with(query=None, fragment=None)))
            token = await self._bearer()
            if token is not None:
                request.headers["Authorization"] = f"Bearer {token}"
            response = yield request
            step_ups = 0
            rounds = 0
            refreshed = False
            # Ending a session is not worth asking the user again (it runs on close).
            while response.status_code in (401, 403) and request.method != "DELETE":
                challenge = parse_bearer_challenge(response.headers.get("www-authenticate", ""))
                if response.status_code == 401:
                    # Once more after a refresh the server refused: a full authorization.
                    if rounds and not refreshed:
                        return
                    rounds += 1
                    step_up = False
                elif (
                    challenge.get("error") == "insufficient_scope" and step_ups < self.max_step_ups
                ):
                    step_ups += 1
                    step_up = True
                else:
                    return
                await _read_bounded(response)
                token, refreshed = await self._recover(
                    challenge, token, step_up=step_up, may_refresh=rounds < 2
                )
                request.headers["Authorization"] = f"Bearer {token}"
                response = yield request
        except errors.CommunicationError:
            raise
        except Exception as exc:
            # A token store or hook of the user's failed: ours, with the cause chained
            # (the transport reports only our errors).
            raise errors.AuthenticationError(
                f"MCP authorization failed: {type(exc).__name__}: {redact_text(str(exc))[:300]}"
            ) from exc

    # -- tokens ------------------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _bearer(self) -> str | None:
        """The token to send now (refreshed first when it is about to expire)."""
        if self._cc is not None:
            return await self._cc.token()
        if not self._loaded:
            async with self._get_lock():
                if not self._loaded:
                    assert self._resource is not None
                    self._tokens = await self.store.get_tokens(self._resource)
                    self._loaded = True
        tokens = self._tokens
        if (
            tokens is not None
            and self._asm is not None
            and tokens.due(self.refresh_margin)
            and (tokens.refresh_token or self.grant == "client_credentials")
        ):
            async with self._get_lock():
                if self._tokens is tokens:  # nobody refreshed it meanwhile
                    try:
                        async with self._http() as http:
                            if tokens.refresh_token:
                                await self._refresh(http)
                            else:  # client credentials: simply a new token
                                await self._obtain(http, self._requested_scope)
                    except (errors.ConnectionError, errors.TimeoutError) as exc:
                        # The token may still be good until it really expires: send it.
                        logger.warning(
                            "%s: could not refresh the token: %s",
                            redact_url(self._server_url),
                            exc.message,
                        )
            tokens = self._tokens
        return tokens.access_token if tokens is not None else None

    async def _recover(
        self, challenge: dict[str, str], failed: str | None, *, step_up: bool, may_refresh: bool
    ) -> tuple[str, bool]:
        """A token to resend with after a 401 (refresh, else authorize) or a 403 (step up).

        Returns:
            The token and whether it came from a refresh.
        """
        async with self._get_lock():
            current = await self._current_token()
            if current is not None and current != failed:
                return current, False  # another request already renewed it
            async with self._http() as http:
                metadata_url = challenge.get("resource_metadata")
                if self._asm is None or (
                    # A new document, or one a server without any (2025-03-26) now names.
                    metadata_url and (self._prm is None or metadata_url != self._prm.url)
                ):
                    await self._discover(http, metadata_url)
                if self._cc is not None and not step_up:
                    if failed is not None:
                        self._cc.invalidate(failed)
                    return await self._cc.token(force=True), False
                tokens = self._tokens
                if (
                    not step_up
                    and may_refresh
                    and tokens is not None
                    and tokens.refresh_token
                    and await self._refresh(http)
                ):
                    assert self._tokens is not None
                    return self._tokens.access_token, True
                if step_up:
                    granted = tokens.scope if tokens is not None else None
                    wanted = self._scope_for(challenge.get("scope"))
                    scope = union_scopes(self._requested_scope, granted, wanted)
                    logger.info(
                        "%s: insufficient_scope; re-authorizing with scope %r",
                        redact_url(self._server_url),
                        scope,
                    )
                else:
                    scope = self.scope or self._scope_for(challenge.get("scope"))
                return await self._obtain(http, scope), False

    def _scope_for(self, challenged: str | None) -> str | None:
        """The scope to ask for: the challenge's, else the resource's ``scopes_supported``.

        A server without Protected Resource Metadata (2025-03-26) has only its
        authorization server's ``scopes_supported`` to offer; those are asked
        for then, as the official SDK does.
        """
        scope = select_scope(challenged, self._prm)
        asm = self._asm
        if scope is None and self._prm is None and asm is not None and asm.scopes_supported:
            scope = " ".join(asm.scopes_supported)
        return scope

    async def _current_token(self) -> str | None:
        if self._cc is not None:
            return await self._cc.token()
        return self._tokens.access_token if self._tokens is not None else None

    async def _obtain(self, http: HTTPClient, scope: str | None) -> str:
        """A new token by the configured grant, for ``scope``."""
        asm = self._asm
        assert asm is not None
        self._requested_scope = scope
        if self.grant == "client_credentials":
            return await self._client_credentials(http, asm, scope)
        tokens = await self._authorization_code(http, asm, scope)
        await self._keep(tokens)
        return tokens.access_token

    async def _keep(self, tokens: OAuthTokens | None) -> None:
        self._tokens = tokens
        assert self._resource is not None
        await self.store.set_tokens(self._resource, tokens)

    # -- discovery ---------------------------------------------------------------------

    def _http(self) -> HTTPClient:
        return HTTPClient(
            allow_insecure=self._allow_insecure,
            verify_ssl=self._verify if isinstance(self._verify, bool) else True,
            ca_certs=self._verify if isinstance(self._verify, str) else None,
            follow_redirects=False,
            max_retries=0,
            timeout_seconds=self.timeout,
            max_response_size=_MAX_DOCUMENT,
        )

    async def _check(self, url: str, what: str) -> None:
        if self._server_local is None:
            parts = urlsplit(self._server_url or "")
            self._server_local = await resolves_to_local(parts.hostname or "", parts.port)
        await check_discovered_url(
            url,
            what=what,
            allow_insecure=self._allow_insecure,
            server_is_local=self._server_local,
        )

    async def _get_json(self, http: HTTPClient, url: str) -> tuple[int, Any]:
        response = await http.request(
            "GET", url, headers=_METADATA_HEADERS, follow_redirects=False, retry=False
        )
        return response.status_code, _json_or_none(response)

    async def _discover(self, http: HTTPClient, metadata_url: str | None) -> None:
        """Find the Protected Resource Metadata, then the authorization server's metadata."""
        assert self._server_url is not None and self._resource is not None
        if metadata_url:
            await self._check(metadata_url, "resource_metadata")
        prm: ResourceMetadata | None = None
        problems: list[errors.CommunicationError] = []
        tried: list[str] = []
        for url in resource_metadata_urls(self._server_url, metadata_url):
            tried.append(redact_url(url))
            try:
                status, body = await self._get_json(http, url)
                if status == 200:
                    prm = parse_resource_metadata(body, url)
                    break
                if status >= 500 or status == 429:
                    problems.append(
                        errors.AuthenticationError(
                            f"protected resource metadata at {redact_url(url)} answered {status}"
                        )
                    )
            except errors.ProtocolError as exc:  # garbage or oversized: try the next one
                problems.append(exc)
        if prm is None:
            if problems:
                raise problems[0]
            # A server of the 2025-03-26 specification publishes no Protected
            # Resource Metadata: its origin is the authorization server.
            asm = await self._origin_as_metadata(http, tried)
        else:
            if not resource_allowed(self._resource, prm.resource):
                raise errors.SecurityError(
                    f"protected resource metadata at {redact_url(prm.url)} is for "
                    f"{redact_url(prm.resource)!r}, not {redact_url(self._resource)!r} (RFC 9728)"
                )
            asm = await self._as_metadata(http, prm.authorization_servers[0])
        for name, value in asm.urls().items():
            await self._check(value, name)
        if self._tokens is not None and self._tokens.issuer not in (None, asm.issuer):
            await self._keep(None)  # another server's tokens: never sent to this one
        if self._asm is not None and self._asm.issuer != asm.issuer:
            self._client = None
        self._prm = prm
        self._asm = asm
        logger.info(
            "%s: authorization server %s", redact_url(self._server_url), redact_url(asm.issuer)
        )

    async def _as_metadata(self, http: HTTPClient, issuer: str) -> AuthServerMetadata:
        """The metadata of the authorization server ``issuer``, from the first well-known URI."""
        await self._check(issuer, "authorization server")
        problems: list[errors.CommunicationError] = []
        tried: list[str] = []
        for url in as_metadata_urls(issuer):
            tried.append(redact_url(url))
            try:
                status, body = await self._get_json(http, url)
            except errors.ProtocolError as exc:
                problems.append(exc)
                continue
            if status == 200:
                try:
                    return parse_as_metadata(body, url, issuer)
                except errors.ProtocolError as exc:
                    problems.append(exc)
                    continue
            if status >= 500:
                raise errors.AuthenticationError(
                    f"authorization server metadata at {redact_url(url)} answered {status}"
                )
        if problems:
            raise problems[0]
        raise errors.AuthenticationError(
            f"the authorization server {redact_url(issuer)!r} publishes no metadata "
            f"(tried {', '.join(tried)})"
        )

    async def _origin_as_metadata(self, http: HTTPClient, tried: list[str]) -> AuthServerMetadata:
        """The 2025-03-26 rule: the MCP server's origin is its authorization server.

        Its RFC 8414 metadata at ``/.well-known/oauth-authorization-server``,
        else the specification's default endpoints ``/authorize``, ``/token``
        and ``/register`` at the origin (PKCE S256 assumed: that revision
        requires OAuth 2.1, which requires PKCE).
        """
        assert self._server_url is not None
        parts = urlsplit(self._server_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        await self._check(origin, "authorization server")
        url = f"{origin}/.well-known/oauth-authorization-server"
        status, body = await self._get_json(http, url)
        if status == 200:
            asm = parse_as_metadata(body, url, origin)
        elif status >= 500 or status == 429:
            raise errors.AuthenticationError(
                f"authorization server metadata at {redact_url(url)} answered {status}"
            )
        else:
            asm = AuthServerMetadata(
                issuer=origin,
                token_endpoint=f"{origin}/token",
                authorization_endpoint=f"{origin}/authorize",
                registration_endpoint=f"{origin}/register",
                code_challenge_methods_supported=("S256",),
                url=url,
            )
        logger.info(
            "%s: no protected resource metadata (tried %s); its origin is the authorization "
            "server (MCP 2025-03-26)%s",
            redact_url(self._server_url),
            ", ".join(tried),
            "" if status == 200 else ", at the default endpoints",
        )
        return asm

    # -- clients -----------------------------------------------------------------------

    async def _client_info(
        self, http: HTTPClient, asm: AuthServerMetadata, scope: str | None = None
    ) -> ClientInfo:
        """The registration to use: pre-registered, stored, metadata document, or dynamic."""
        if self._client is not None:
            return self._client
        if self.client_id:
            method = choose_auth_method(
                asm.token_endpoint_auth_methods_supported,
                has_secret=bool(self._client_secret),
                wanted=self._auth_method,
            )
            self._client = ClientInfo(
                self.client_id, self._client_secret, method, (self.redirect_uri,)
            )
            return self._client
        stored = await self.store.get_client(asm.issuer)
        if stored is not None and self.redirect_uri in stored.redirect_uris:
            self._client = stored
            return stored
        if self.client_metadata_url and asm.client_id_metadata_document_supported:
            client = ClientInfo(self.client_metadata_url, None, "none", (self.redirect_uri,))
        elif asm.registration_endpoint:
            client = await self._register(http, asm, asm.registration_endpoint, scope)
        else:
            raise errors.ConfigError(
                f"the authorization server {redact_url(asm.issuer)!r} offers neither Client ID "
                "Metadata Documents (or no client_metadata_url= was given) nor Dynamic Client "
                "Registration: give client_id= of a pre-registered client"
            )
        await self.store.set_client(asm.issuer, client)
        self._client = client
        return client

    async def _register(
        self, http: HTTPClient, asm: AuthServerMetadata, endpoint: str, scope: str | None
    ) -> ClientInfo:
        """Dynamic Client Registration (RFC 7591) for ``scope`` (servers may hold clients to it)."""
        supported = asm.token_endpoint_auth_methods_supported
        method = (
            "none"
            if supported is None or "none" in supported
            else choose_auth_method(supported, has_secret=True)
        )
        what = f"client registration at {redact_url(endpoint)}"
        logger.info("%s (%s)", what, method)
        document: dict[str, Any] = {
            "client_name": self.client_name,
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
        }
        if scope:
            document["scope"] = scope
        response = await http.request(
            "POST",
            endpoint,
            json=document,
            headers={"Accept": "application/json"},
            follow_redirects=False,
            retry=False,
        )
        body = _json_or_none(response)
        if response.status_code not in (200, 201):
            raise token_error(response.status_code, body, what)
        return registered_client(body, what=what, issuer=asm.issuer, redirect_uri=self.redirect_uri)

    # -- grants ------------------------------------------------------------------------

    async def _authorization_code(
        self, http: HTTPClient, asm: AuthServerMetadata, scope: str | None
    ) -> OAuthTokens:
        if "S256" not in asm.code_challenge_methods_supported:
            raise errors.SecurityError(
                f"the authorization server {redact_url(asm.issuer)!r} does not advertise PKCE "
                "S256 (code_challenge_methods_supported); MCP clients must refuse it"
            )
        if not asm.authorization_endpoint:
            raise errors.ProtocolError(
                f"authorization server metadata at {redact_url(asm.url)}: no authorization_endpoint"
            )
        client = await self._client_info(http, asm, scope)
        pkce = PKCE.generate()
        state = secrets.token_urlsafe(32)
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "resource": self.resource or "",
        }
        if scope:
            params["scope"] = scope
        url = authorization_url(asm.authorization_endpoint, params)
        assert self._authorize is not None
        logger.info("%s: waiting for the user to authorize", redact_url(self._server_url))
        try:
            async with asyncio.timeout(self.authorize_timeout or None):
                result = self._authorize(url)
                if inspect.isawaitable(result):
                    result = await result
        except errors.CommunicationError:
            raise
        except TimeoutError as exc:
            raise errors.TimeoutError(
                f"authorize: the user step took longer than {self.authorize_timeout:g} s"
            ) from exc
        except Exception as exc:
            # Raised as ours, the cause chained: the transport reports only our errors.
            raise OAuthError(
                f"authorize: the user step failed: {type(exc).__name__}: {exc}"
            ) from exc
        code = parse_callback(
            result,
            state=state,
            issuer=asm.issuer,
            iss_required=asm.authorization_response_iss_parameter_supported,
        )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pkce.verifier,
            "resource": self.resource or "",
        }
        return await self._token_request(http, asm, client, form, scope, previous=None)

    async def _refresh(self, http: HTTPClient) -> bool:
        """Refresh the tokens; False (tokens forgotten) when the server refuses."""
        tokens = self._tokens
        asm = self._asm
        assert tokens is not None and tokens.refresh_token and asm is not None
        try:
            client = await self._client_info(http, asm)
            form = {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "resource": self.resource or "",
            }
            new = await self._token_request(http, asm, client, form, tokens.scope, previous=tokens)
        except (OAuthError, errors.ConfigError) as exc:
            logger.info("%s: refresh refused: %s", redact_url(self._server_url), exc.message)
            await self._keep(None)
            return False
        await self._keep(new)
        logger.info("%s: token refreshed", redact_url(self._server_url))
        return True

    async def _token_request(
        self,
        http: HTTPClient,
        asm: AuthServerMetadata,
        client: ClientInfo,
        form: dict[str, str],
        scope: str | None,
        *,
        previous: OAuthTokens | None,
    ) -> OAuthTokens:
        await self._check(asm.token_endpoint, "token_endpoint")
        assertion = None
        if client.auth_method == "private_key_jwt":
            assertion = await self._assertion(asm)
        body_form, headers = client_auth(client, form, assertion)
        what = f"token request ({form['grant_type']}) to {redact_url(asm.token_endpoint)}"
        response = await http.request(
            "POST",
            asm.token_endpoint,
            data=body_form,
            headers={"Accept": "application/json", **headers},
            follow_redirects=False,
            retry=False,
        )
        body = _json_or_none(response)
        if response.status_code != 200:
            secrets_sent = [form.get(name) for name in ("code", "code_verifier", "refresh_token")]
            raise token_error(
                response.status_code, body, what, (*secrets_sent, client.client_secret, assertion)
            )
        if body is None:
            raise errors.ProtocolError(f"{what}: the token response is not JSON")
        return parse_token_response(
            body, what=what, requested_scope=scope, issuer=asm.issuer, previous=previous
        )

    async def _assertion(self, asm: AuthServerMetadata) -> str:
        """A signed client assertion whose audience is the authorization server's issuer."""
        assert self.client_id is not None
        if self._client_assertion is not None:
            try:
                value = self._client_assertion(asm.issuer)
                if inspect.isawaitable(value):
                    value = await value
            except errors.CommunicationError:
                raise
            except Exception as exc:
                raise OAuthError(
                    f"client_assertion: the hook failed: {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(value, str) or not value:
                raise errors.ConfigError("client_assertion: must return the JWT as a string")
            return value
        assert self._private_key is not None
        return sign_assertion(
            self.client_id,
            asm.issuer,
            self._private_key,
            algorithm=self.private_key_algorithm,
            kid=self.private_key_id,
        )

    async def _client_credentials(
        self, http: HTTPClient, asm: AuthServerMetadata, scope: str | None
    ) -> str:
        """The client-credentials grant.

        With a secret through the shared OAuth2 helper (core/auth.py); with a
        signed assertion here (the helper has no assertions).
        """
        if asm.grant_types_supported is not None and (
            "client_credentials" not in asm.grant_types_supported
        ):
            raise OAuthError(
                f"the authorization server {redact_url(asm.issuer)!r} does not offer the "
                "client_credentials grant (grant_types_supported)",
                error="unsupported_grant_type",
            )
        await self._check(asm.token_endpoint, "token_endpoint")
        method = choose_auth_method(
            asm.token_endpoint_auth_methods_supported, has_secret=True, wanted=self._auth_method
        )
        if method == "none":
            raise errors.ConfigError(
                "token_endpoint_auth_method none: the client-credentials grant needs a secret"
            )
        assert self.client_id is not None
        if method == "private_key_jwt":
            client = ClientInfo(self.client_id, None, method)
            form = {"grant_type": "client_credentials", "resource": self.resource or ""}
            if scope:
                form["scope"] = scope
            tokens = await self._token_request(http, asm, client, form, scope, previous=None)
            await self._keep(tokens)
            return tokens.access_token
        assert self._client_secret is not None
        self._cc = OAuth2Auth(
            self.client_id,
            self._client_secret,
            asm.token_endpoint,
            scope,
            resource=self.resource,
            client_auth="basic" if method == "client_secret_basic" else "body",
            allow_insecure=self._allow_insecure,
            verify=self._verify,
            timeout=self.timeout,
        )
        return await self._cc.token(force=True)


def _json_or_none(response: HTTPResponse) -> Any:
    """The JSON body, None when there is none; garbage in a 200 is a ProtocolError."""
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not response.content:
        return None
    try:
        return loads(response.content)
    except errors.ProtocolError as exc:
        if response.status_code == 200:
            raise errors.ProtocolError(
                f"{redact_url(response.url)} answered 200 with a body that is not JSON "
                f"({ctype or 'no content type'})"
            ) from exc
        return None


async def _read_bounded(response: httpx.Response) -> None:
    """Read the body of a 401/403 before resending, within a bound.

    httpx reads the body of every response an auth flow answers, without a
    limit; read here first (a hostile server may send an endless one) and
    hand it the bytes.
    """
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > _MAX_CHALLENGE_BODY:
            await response.aclose()
            raise errors.MessageTooLargeError(
                f"{redact_url(str(response.request.url))} answered {response.status_code} "
                f"with a body over {_MAX_CHALLENGE_BODY} bytes"
            )
    response._content = bytes(data)
