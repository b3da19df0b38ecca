"""The official ``mcp`` package's OAuth authorization server and resource server, for the tests.

Run as a child process (the SDK warns in-process, which the tests turn into errors)::

    python -m tests.servers.mcp_auth_server PORT [--scopes mcp,extra] [--first-grant mcp]
        [--expires-in N] [--preregister ID:SECRET:METHOD] [--cimd] [--no-dcr]
        [--client-credentials ID:SECRET] [--jwt-public-key PEM-PATH] [--legacy-sse]

It prints ``READY <port>`` once listening on 127.0.0.1. The MCP endpoint is
``/mcp`` (Streamable HTTP; with ``--legacy-sse`` the 2024-11-05 HTTP+SSE
transport at ``/sse``), protected by the SDK's bearer middleware; the
SDK's own routes serve the metadata (RFC 9728 and RFC 8414), ``/authorize``,
``/token`` and ``/register``. Only the provider (the storage and the consent
decision the SDK leaves to its user) is written here: consent is automatic,
granting every scope asked for, except that ``--first-grant`` limits the
first authorization of each client (a user who consents to less).

The SDK's token endpoint has no client-credentials grant: with
``--client-credentials`` a small handler of ours answers that grant at
``/token`` (client authenticated by Basic, by form fields or, with
``--jwt-public-key``, by a ``private_key_jwt`` assertion checked with PyJWT;
every other grant still goes to the SDK's handler) and the metadata offers it.

Test-only routes: ``GET /test/stats`` (what the provider saw),
``POST /test/revoke-access`` (every access token stops working) and
``POST /test/revoke-all`` (refresh tokens too).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

warnings.simplefilter("ignore")

from mcp.server.auth.provider import (  # noqa: E402
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata  # noqa: E402
from mcp.server.auth.settings import (  # noqa: E402
    AuthSettings,
    ClientRegistrationOptions,
    RevocationOptions,
)
from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

REDIRECT = "http://127.0.0.1/callback"


class Provider:
    """The storage and consent of an authorization server, in memory."""

    def __init__(self, *, expires_in: int, first_grant: list[str] | None, cimd: bool) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.expires_in = expires_in
        self.first_grant = first_grant
        self.cimd = cimd
        self.authorized: set[str] = set()
        self.scope = "mcp"
        self.stats: dict[str, list[dict[str, object]]] = {
            "registered": [],
            "authorize": [],
            "token": [],
        }

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id in self.clients:
            return self.clients[client_id]
        if self.cimd and client_id.startswith("https://"):
            # Stands for fetching the Client ID Metadata Document at that URL.
            return OAuthClientInformationFull(
                client_id=client_id,
                redirect_uris=[REDIRECT],  # type: ignore[list-item]
                token_endpoint_auth_method="none",
                grant_types=["authorization_code", "refresh_token"],
                scope=self.scope,
            )
        return None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info
        self.stats["registered"].append(
            {
                "client_id": client_info.client_id,
                "method": client_info.token_endpoint_auth_method,
                "client_name": client_info.client_name,
            }
        )

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        assert client.client_id is not None
        scopes = params.scopes or []
        if self.first_grant is not None and client.client_id not in self.authorized:
            scopes = [s for s in scopes if s in self.first_grant]
        self.authorized.add(client.client_id)
        self.stats["authorize"].append(
            {
                "client_id": client.client_id,
                "scopes": params.scopes,
                "resource": params.resource,
                "granted": scopes,
            }
        )
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=scopes,
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    def _issue(
        self, client: OAuthClientInformationFull, scopes: list[str], resource: str | None
    ) -> OAuthToken:
        assert client.client_id is not None
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access[access] = AccessToken(
            token=access,
            client_id=client.client_id,
            scopes=scopes,
            expires_at=int(time.time()) + self.expires_in,
            resource=resource,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client.client_id, scopes=scopes, resource=resource
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.expires_in,
            refresh_token=refresh,
            scope=" ".join(scopes),
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        self.stats["token"].append(
            {
                "grant": "authorization_code",
                "client_id": client.client_id,
                "method": client.token_endpoint_auth_method,
                "resource": authorization_code.resource,
            }
        )
        return self._issue(client, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        return token if token is not None and token.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.refresh.pop(refresh_token.token, None) is None:
            raise TokenError(error="invalid_grant", error_description="refresh token revoked")
        self.stats["token"].append(
            {
                "grant": "refresh_token",
                "client_id": client.client_id,
                "method": client.token_endpoint_auth_method,
                "resource": refresh_token.resource,
            }
        )
        return self._issue(client, scopes or refresh_token.scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.access.get(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: object
    ) -> OAuthToken:
        raise TokenError(error="unsupported_grant_type")


class TokenWithClientCredentials:
    """``/token``: the client-credentials grant here, every other grant to the SDK's handler."""

    def __init__(
        self, provider: Provider, credentials: str, sdk: Any, issuer: str, public_key: str | None
    ) -> None:
        self.provider = provider
        self.client_id, self.secret = credentials.split(":")
        self.sdk = sdk
        self.issuer = issuer
        self.public_key = public_key
        self.seen_jti: set[str] = set()

    def _assertion_ok(self, assertion: str) -> str | None:
        """The client id of a valid, unreplayed assertion, else None."""
        import jwt

        if self.public_key is None:
            return None
        try:
            claims = jwt.decode(
                assertion, self.public_key, algorithms=["RS256", "ES256"], audience=self.issuer
            )
        except jwt.PyJWTError:
            return None
        if claims.get("iss") != claims.get("sub") or claims.get("jti") in self.seen_jti:
            return None
        self.seen_jti.add(claims["jti"])
        return str(claims["sub"])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "client_credentials":

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.sdk(scope, replay, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method = "client_secret_post"
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if headers.get("authorization", "").startswith("Basic "):
            method = "client_secret_basic"
            pair = base64.b64decode(headers["authorization"][6:]).decode()
            client_id, secret = (unquote(part) for part in pair.split(":", 1))
        elif form.get("client_assertion_type", "").endswith(":jwt-bearer"):
            method = "private_key_jwt"
            signed_by = self._assertion_ok(form.get("client_assertion", ""))
            ok = signed_by == client_id == self.client_id
            client_id, secret = (self.client_id, self.secret) if ok else (None, None)
        if (client_id, secret) != (self.client_id, self.secret):
            response: Response = JSONResponse({"error": "invalid_client"}, status_code=401)
        else:
            client = OAuthClientInformationFull(
                client_id=self.client_id,
                redirect_uris=[REDIRECT],  # type: ignore[list-item]
            )
            self.provider.stats["token"].append(
                {
                    "grant": "client_credentials",
                    "client_id": client_id,
                    "method": method,
                    "resource": form.get("resource"),
                }
            )
            scopes = form.get("scope", self.provider.scope).split()
            token = self.provider._issue(client, scopes, form.get("resource"))
            response = JSONResponse(token.model_dump(mode="json", exclude_none=True))
        await response(scope, receive, send)


def _without_resource_metadata(app: Any) -> Any:
    """``app`` with ``resource_metadata=...`` taken out of every ``WWW-Authenticate``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_without(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"www-authenticate":
                        parts = [p for p in value.split(b", ") if b"resource_metadata=" not in p]
                        value = b", ".join(parts)
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_without)

    return wrapped


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


async def main(argv: list[str]) -> None:
    """Serve on 127.0.0.1 (``argv[0]`` is the port, 0 for a free one)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(argv[0])))  # bound first: the metadata names the port
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    scopes = (_flag(argv, "--scopes") or "mcp").split(",")
    legacy = "--legacy-sse" in argv
    first = _flag(argv, "--first-grant")
    provider = Provider(
        expires_in=int(_flag(argv, "--expires-in") or 3600),
        first_grant=first.split(",") if first is not None else None,
        cimd="--cimd" in argv,
    )
    for i, arg in enumerate(argv):
        if arg == "--preregister":
            client_id, secret, method = argv[i + 1].split(":")
            provider.clients[client_id] = OAuthClientInformationFull(
                client_id=client_id,
                client_secret=secret or None,
                token_endpoint_auth_method=method,  # type: ignore[arg-type]
                redirect_uris=[REDIRECT],  # type: ignore[list-item]
                grant_types=["authorization_code", "refresh_token"],
                scope=" ".join(scopes),
            )
    provider.scope = " ".join(scopes)
    registration = ClientRegistrationOptions(enabled="--no-dcr" not in argv, valid_scopes=scopes)
    settings = AuthSettings(
        issuer_url=base,  # type: ignore[arg-type]
        resource_server_url=f"{base}/sse" if legacy else f"{base}/mcp",  # type: ignore[arg-type]
        required_scopes=scopes,
        client_registration_options=registration,
        revocation_options=RevocationOptions(enabled=False),
        validate_token_resource=True,
    )
    server = MCPServer("mcp-auth-test", auth_server_provider=provider, auth=settings)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    app = server.sse_app() if legacy else server.streamable_http_app()

    async def stats(request: Request) -> Response:
        return JSONResponse(provider.stats)

    async def revoke_access(request: Request) -> Response:
        provider.access.clear()
        return JSONResponse({})

    async def revoke_all(request: Request) -> Response:
        provider.access.clear()
        provider.refresh.clear()
        return JSONResponse({})

    extra = [
        Route("/test/stats", stats, methods=["GET"]),
        Route("/test/revoke-access", revoke_access, methods=["POST"]),
        Route("/test/revoke-all", revoke_all, methods=["POST"]),
    ]
    machine = _flag(argv, "--client-credentials")
    if machine is not None:
        sdk_token = next(r for r in app.router.routes if getattr(r, "path", "") == "/token")
        key_path = _flag(argv, "--jwt-public-key")
        public_key = Path(key_path).read_text() if key_path else None
        handler = TokenWithClientCredentials(
            provider,
            machine,
            sdk_token.app,  # type: ignore[attr-defined]
            base,
            public_key,
        )
        extra.append(Route("/token", handler))
    if provider.cimd or machine is not None:
        metadata = build_metadata(
            settings.issuer_url, None, registration, RevocationOptions(enabled=False)
        )
        document = metadata.model_dump(mode="json", exclude_none=True)
        if provider.cimd:
            document["client_id_metadata_document_supported"] = True
        if machine is not None:
            document["grant_types_supported"].append("client_credentials")

        async def as_metadata(request: Request) -> Response:
            return JSONResponse(document)

        extra.append(Route("/.well-known/oauth-authorization-server", as_metadata))
    app.router.routes[0:0] = extra  # before the SDK's own routes: matched first
    served: Any = app
    if "--no-prm" in argv:
        # A server of the 2025-03-26 specification: no Protected Resource Metadata.
        app.router.routes = [
            route
            for route in app.router.routes
            if not getattr(route, "path", "").startswith("/.well-known/oauth-protected-resource")
        ]
        served = _without_resource_metadata(app)

    config = uvicorn.Config(
        served, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="none"
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    print(f"READY {port}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
