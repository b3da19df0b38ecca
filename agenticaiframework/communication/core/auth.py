"""Authentication that does not depend on the transport.

Every auth object is an ``httpx.Auth`` (so HTTPClient and SSEClient use it as
a request flow) and also offers :meth:`Auth.headers`, the headers to attach to
a WebSocket handshake or gRPC metadata. Dicts from the guide are accepted
through :func:`build_auth`.

:class:`OAuth2Auth` implements the client-credentials grant: tokens are cached
process-wide per everything that shapes the token (token URL, client id, how
the client authenticates, scope, audience, resource, extra parameters) plus a
keyed fingerprint of the secret, and shared by every client with the same
key; refreshed shortly before expiry and once after a 401; concurrent callers
wait for one token request. Secrets never appear in ``repr()``/``str()``, error
messages or logs (token URLs are printed redacted).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from .codecs import loads
from .errors import AuthenticationError, ConfigError, ProtocolError
from .security import check_url, install_log_redaction, redact_text, redact_url

__all__ = [
    "APIKeyAuth",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "OAuth2Auth",
    "build_auth",
    "clear_token_cache",
]

logger = logging.getLogger("agenticaiframework.communication.auth")


class Auth(httpx.Auth):
    """Base of our auth objects: an httpx flow plus plain headers."""

    async def headers(self) -> dict[str, str]:
        """Headers that authenticate a request (handshake, metadata).

        Returns:
            Header names and values.
        """
        return {}

    def query_params(self) -> dict[str, str]:
        """Query parameters that authenticate a request (API key in query).

        Returns:
            Parameter names and values.
        """
        return {}

    def sensitive_header_names(self) -> frozenset[str]:
        """Header names this auth sets, dropped on a cross-origin redirect.

        Returns:
            Lower-case header names.
        """
        return frozenset({"authorization"})

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Add the credentials to ``request`` (httpx flow)."""
        request.headers.update(await self.headers())
        params = self.query_params()
        if params:
            request.url = request.url.copy_merge_params(params)
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse synchronous use: these clients are async only."""
        raise ConfigError("auth: our auth objects are for the async clients only")
        yield request  # pragma: no cover  (makes this a generator)


class BearerAuth(Auth):
    """``Authorization: Bearer <token>``.

    Args:
        token: The bearer token.
    """

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ConfigError("auth.token: must be a non-empty string")
        self._token = token

    async def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self._token}"}

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Add the bearer header without awaiting anything (hot path)."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


class BasicAuth(Auth):
    """HTTP Basic authentication.

    Args:
        username: User name.
        password: Password.
    """

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise ConfigError("auth.username/password: must be strings")
        self.username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    async def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": self._header}

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Add the basic header without awaiting anything (hot path)."""
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"


class APIKeyAuth(Auth):
    """An API key in a header (default ``X-API-Key``), query parameter or cookie.

    Args:
        key: The API key.
        name: Header, parameter or cookie name.
        location: ``header``, ``query`` or ``cookie``.
        prefix: Optional prefix put before the key (``"Token "``).
    """

    def __init__(
        self, key: str, name: str = "X-API-Key", location: str = "header", prefix: str = ""
    ) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError("auth.key: must be a non-empty string")
        if location not in ("header", "query", "cookie"):
            raise ConfigError(f"auth.location: must be header, query or cookie; got {location!r}")
        self._key = key
        self.name = name
        self.location = location
        self.prefix = prefix

    async def headers(self) -> dict[str, str]:
        """The key as a header or cookie header (empty for query keys)."""
        if self.location == "header":
            return {self.name: self.prefix + self._key}
        if self.location == "cookie":
            return {"Cookie": f"{self.name}={self._key}"}
        return {}

    def query_params(self) -> dict[str, str]:
        """The key as a query parameter, when so configured."""
        return {self.name: self._key} if self.location == "query" else {}

    def sensitive_header_names(self) -> frozenset[str]:
        """The key's header name, lower-cased."""
        return frozenset({self.name.lower(), "cookie"})

    def __repr__(self) -> str:
        return f"APIKeyAuth(name={self.name!r}, location={self.location!r}, key='***')"


@dataclass
class _Token:
    access_token: str
    expires_at: float

    def fresh(self, margin: float) -> bool:
        return time.monotonic() < self.expires_at - margin


_CacheKey = tuple[str, ...]
# Secrets enter cache keys only as an HMAC under this per-process key: two
# clients share a token only if they hold the same secret, and nothing in the
# cache can be turned back into a secret (nor compared across processes).
_FINGERPRINT_KEY = secrets.token_bytes(32)
_RESERVED_PARAMS = frozenset(
    {"grant_type", "client_id", "client_secret", "scope", "audience", "resource"}
)
_MAX_TOKEN_RESPONSE = 1024 * 1024
_DEFAULT_EXPIRES_IN = 3600.0


def _fingerprint(secret: str) -> str:
    return hmac.new(_FINGERPRINT_KEY, secret.encode(), hashlib.sha256).hexdigest()


def _expires_in(value: Any) -> float:
    """Seconds a token lives, from the token response's ``expires_in``.

    Absent (or null) means the documented default of one hour; a number or a
    numeric string is accepted (some providers send strings); anything else is
    the endpoint breaking the protocol.
    """
    if value is None:
        return _DEFAULT_EXPIRES_IN
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 32:
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        shown = repr(value) if len(repr(value)) <= 40 else f"{type(value).__name__} value"
        raise ProtocolError(
            f"expires_in: the token endpoint sent {shown}; expected a number of seconds >= 0"
        )
    return seconds


class _TokenCache:
    """Process-wide token cache; one fetch in flight per key and event loop."""

    def __init__(self) -> None:
        self.tokens: dict[_CacheKey, _Token] = {}
        self.inflight: dict[_CacheKey, asyncio.Task[_Token]] = {}

    def clear(self) -> None:
        self.tokens.clear()
        self.inflight.clear()


_CACHE = _TokenCache()


def clear_token_cache() -> None:
    """Forget every cached OAuth2 token (tests, credential rotation)."""
    _CACHE.clear()


class OAuth2Auth(Auth):
    """OAuth2 client-credentials grant with a shared, refreshing token cache.

    Args:
        client_id: The client id.
        client_secret: The client secret.
        token_url: The token endpoint (checked by the security policy).
        scope: Space-separated scopes, if any.
        audience: Optional ``audience`` parameter (some providers need it).
        resource: Optional ``resource`` parameter (RFC 8707 resource indicator).
        extra_params: More form fields for the token request (str to str);
            they cannot replace the grant's own fields.
        refresh_margin: Seconds before expiry at which a token is refreshed.
        client_auth: ``basic`` (RFC 6749 default) or ``body`` (credentials
            as form fields).
        allow_insecure: Allow a plain-text token_url to a non-loopback host.
        verify: TLS verification for the token request (bool or CA path).
        timeout: Timeout of the token request, in seconds.

    Raises:
        ConfigError: A missing or invalid argument (named).
        SecurityError: ``token_url`` is plain HTTP to a non-loopback host.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str,
        scope: str | None = None,
        *,
        audience: str | None = None,
        resource: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        refresh_margin: float = 30.0,
        client_auth: str = "basic",
        allow_insecure: bool = False,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        if not client_id or not token_url:
            raise ConfigError("auth.client_id/token_url: must be non-empty")
        if not isinstance(client_secret, str):
            raise ConfigError("auth.client_secret: must be a string")
        if client_auth not in ("basic", "body"):
            raise ConfigError(f"auth.client_auth: must be basic or body; got {client_auth!r}")
        extra = dict(extra_params or {})
        for name, value in extra.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigError(
                    f"auth.extra_params: must map str to str, got {name!r}: {value!r}"
                )
            if name in _RESERVED_PARAMS:
                raise ConfigError(
                    f"auth.extra_params: {name!r} is set by the grant itself; use the argument"
                )
        try:
            check_url(
                token_url, allow_insecure=allow_insecure, schemes=frozenset({"http", "https"})
            )
        except ConfigError as exc:
            raise ConfigError(f"auth.token_url: {exc.message}") from exc
        install_log_redaction()
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.scope = scope
        self.audience = audience
        self.resource = resource
        self.extra_params: Mapping[str, str] = extra
        self.refresh_margin = refresh_margin
        self.client_auth = client_auth
        self.verify = verify
        self.timeout = timeout
        self._key: _CacheKey = (
            token_url,
            client_id,
            client_auth,
            scope or "",
            audience or "",
            resource or "",
            urlencode(sorted(extra.items())),
            _fingerprint(client_secret),
        )
        self.requires_response_body = False

    def __repr__(self) -> str:
        return (
            f"OAuth2Auth(client_id={self.client_id!r}, token_url={redact_url(self.token_url)!r}, "
            f"scope={self.scope!r}, audience={self.audience!r}, client_secret='***')"
        )

    async def token(self, *, force: bool = False) -> str:
        """Return a valid access token, fetching one if needed.

        Args:
            force: Fetch a new token even if the cached one looks fresh.

        Returns:
            The access token.

        Raises:
            AuthenticationError: The token endpoint could not be reached, refused,
                or sent no access token.
            ProtocolError: The token response's ``expires_in`` is not a number
                of seconds.
            MessageTooLargeError: The token response is over 1 MiB.
        """
        cached = _CACHE.tokens.get(self._key)
        if cached is not None and not force and cached.fresh(self.refresh_margin):
            return cached.access_token
        loop = asyncio.get_running_loop()
        task = _CACHE.inflight.get(self._key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._fetch(), name=f"oauth2-token:{self.client_id}")
            _CACHE.inflight[self._key] = task
            task.add_done_callback(self._forget_inflight)
        token = await asyncio.shield(task)
        return token.access_token

    def _forget_inflight(self, task: asyncio.Task[_Token]) -> None:
        if _CACHE.inflight.get(self._key) is task:
            del _CACHE.inflight[self._key]
        if not task.cancelled():
            task.exception()  # consumed here; every waiter got it already

    def invalidate(self, access_token: str) -> None:
        """Drop ``access_token`` from the cache if it is still the cached one.

        Args:
            access_token: The token a server refused.
        """
        cached = _CACHE.tokens.get(self._key)
        if cached is not None and cached.access_token == access_token:
            del _CACHE.tokens[self._key]

    async def _fetch(self) -> _Token:
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        if self.resource:
            form["resource"] = self.resource
        form.update(self.extra_params)
        auth: httpx.Auth = httpx.Auth()
        if self.client_auth == "basic":
            auth = httpx.BasicAuth(self.client_id, self._client_secret)
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = self._client_secret
        # Imported here: the http package imports this module (auth flows) first.
        from ..http.engine import read_limited

        where = redact_url(self.token_url)
        logger.debug("fetching OAuth2 token from %s for client %s", where, self.client_id)
        try:
            async with (
                httpx.AsyncClient(verify=self.verify, timeout=self.timeout) as client,
                client.stream(
                    "POST",
                    self.token_url,
                    data=form,
                    auth=auth,
                    headers={"Accept": "application/json"},
                ) as response,
            ):
                content = await read_limited(
                    response, _MAX_TOKEN_RESPONSE, field="the token response limit"
                )
        except httpx.HTTPError as exc:
            raise AuthenticationError(
                f"token request to {where} failed: {redact_text(repr(exc))}"
            ) from exc
        if response.status_code != 200:
            raise AuthenticationError(
                f"token endpoint {where} answered {response.status_code}: "
                f"{redact_text(response.text[:200])}"
            )
        try:
            body = loads(content)
            access_token = body["access_token"]
        except (ProtocolError, KeyError, TypeError) as exc:
            raise AuthenticationError(f"token endpoint {where} sent no access_token") from exc
        if not isinstance(access_token, str) or not access_token:
            raise AuthenticationError(f"token endpoint {where} sent no access_token")
        expires_in = _expires_in(body.get("expires_in"))
        token = _Token(access_token, time.monotonic() + expires_in)
        _CACHE.tokens[self._key] = token
        return token

    async def headers(self) -> dict[str, str]:
        """The Authorization header with a valid token."""
        return {"Authorization": f"Bearer {await self.token()}"}

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the cached token; after a 401, refresh once and resend."""
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            logger.info("401 from %s: refreshing the OAuth2 token once", request.url.host)
            self.invalidate(token)
            token = await self.token(force=True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def build_auth(spec: Any, *, allow_insecure: bool = False) -> Auth | None:
    """Turn an auth object or the guide's dict form into an :class:`Auth`.

    Accepted dicts: ``{"type": "bearer", "token": ...}``,
    ``{"type": "basic", "username": ..., "password": ...}``,
    ``{"type": "api_key", "key": ..., "name": "X-API-Key", "location": "header"}``,
    ``{"type": "oauth2", "client_id": ..., "client_secret": ..., "token_url": ...}``.

    Args:
        spec: None, an :class:`Auth`, an ``httpx.Auth`` or a dict.
        allow_insecure: Passed to OAuth2 for its token URL check.

    Returns:
        The auth object, or None.

    Raises:
        ConfigError: Unknown type or missing fields (named).
    """
    if spec is None or isinstance(spec, Auth):
        return spec
    if isinstance(spec, Mapping):
        fields = dict(spec)
        kind = str(fields.pop("type", "")).lower().replace("-", "_")
        try:
            if kind == "bearer":
                return BearerAuth(fields["token"])
            if kind == "basic":
                return BasicAuth(fields["username"], fields["password"])
            if kind in ("api_key", "apikey"):
                key = fields.pop("key", None) or fields.pop("api_key", None)
                return APIKeyAuth(str(key or ""), **fields)
            if kind in ("oauth2", "oauth2_client_credentials"):
                fields.setdefault("allow_insecure", allow_insecure)
                return OAuth2Auth(**fields)
        except KeyError as exc:
            raise ConfigError(f"auth.{exc.args[0]}: required for auth type {kind!r}") from None
        except TypeError as exc:
            raise ConfigError(f"auth: {exc}") from None
        raise ConfigError(
            f"auth.type: must be bearer, basic, api_key or oauth2; got {spec.get('type')!r}"
        )
    raise ConfigError(f"auth: expected an Auth object or a dict, got {type(spec).__name__}")
