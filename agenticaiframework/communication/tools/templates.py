"""Call templates: how a tool (or a manual) is reached, one type per protocol (no I/O).

A call template is the UTCP ``tool_call_template`` / manual call template: a
dict with ``call_template_type`` plus the fields of that type. :func:`parse_template`
validates such a dict into one of the frozen dataclasses below; every error is
a :class:`~agenticaiframework.communication.errors.ConfigError` naming the
field (``tools[2] ('get_user').tool_call_template.url: required``).

Types and their fields (UTCP 1.x names; ``mcp`` and ``grpc`` are ours):

========== ==================================================================
type       fields
========== ==================================================================
http       url, http_method, content_type, headers, body_field, header_fields,
           auth, auth_tools
sse        url, http_method, event_type, reconnect, retry_timeout, headers,
           body_field, header_fields, terminal_event, auth
websocket  url, message, protocol, keep_alive, response_format, timeout,
           headers, header_fields, auth
mcp        config.mcpServers.{name}.{command, args, env, cwd} (stdio) or
           {url, transport} (Streamable HTTP), timeout
grpc       target, secure, proto_files, proto_include_paths, services,
           service, method, metadata, timeout, auth
========== ==================================================================

Every type also has ``name``, ``auth`` (UTCP auth dict: ``api_key``, ``basic``
or ``oauth2``) and ``allowed_communication_protocols``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..core.auth import Auth, build_auth
from ..core.errors import ConfigError

__all__ = [
    "CALL_TEMPLATE_TYPES",
    "CallTemplate",
    "GrpcCallTemplate",
    "HttpCallTemplate",
    "McpCallTemplate",
    "McpServer",
    "SseCallTemplate",
    "WebSocketCallTemplate",
    "auth_from_utcp",
    "parse_template",
]

_HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_MISSING: Any = object()


def _fail(where: str, field: str, problem: str) -> ConfigError:
    prefix = f"{where}." if where else ""
    return ConfigError(f"{prefix}{field}: {problem}")


def _str(data: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise _fail(where, key, "required")
        return default
    if not isinstance(value, str):
        raise _fail(where, key, f"must be a string, got {type(value).__name__}")
    return value


def _bool(data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(where, key, f"must be true or false, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(where, key, f"must be a non-negative number, got {value!r}")
    return float(value)


def _str_map(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, key, f"must be an object of strings, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _fail(where, f"{key}.{k}", f"must be a string, got {v!r}")
        if any(c in k + v for c in "\r\n"):
            raise _fail(where, f"{key}.{k}", "must not contain CR or LF")
    return dict(value)


def _str_list(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail(where, key, f"must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(where, f"{key}[{i}]", f"must be a string, got {item!r}")
    return tuple(value)


def _choice(
    data: Mapping[str, Any], key: str, where: str, choices: Sequence[Any], default: Any
) -> Any:
    value = data.get(key, default)
    if isinstance(value, str) and key in ("http_method",):
        value = value.upper()
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise _fail(where, key, f"must be one of {shown}; got {value!r}")
    return value


def _auth_dict(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail(where, key, f"must be an object, got {type(value).__name__}")
    kind = value.get("auth_type")
    field = f"{key}.auth_type"
    if kind == "api_key":
        _str(value, "api_key", f"{where}.{key}" if where else key)
        _str(value, "var_name", f"{where}.{key}" if where else key, "X-Api-Key")
        _choice(
            value,
            "location",
            f"{where}.{key}" if where else key,
            ("header", "query", "cookie"),
            "header",
        )
    elif kind == "basic":
        _str(value, "username", f"{where}.{key}" if where else key)
        _str(value, "password", f"{where}.{key}" if where else key)
    elif kind == "oauth2":
        for name in ("token_url", "client_id", "client_secret"):
            _str(value, name, f"{where}.{key}" if where else key)
        _str(value, "scope", f"{where}.{key}" if where else key, None)
    else:
        raise _fail(where, field, f"must be 'api_key', 'basic' or 'oauth2'; got {kind!r}")
    return dict(value)


def auth_from_utcp(spec: Mapping[str, Any] | None, *, allow_insecure: bool = False) -> Auth | None:
    """Turn a UTCP auth dict into one of the shared auth objects.

    ``api_key`` becomes :class:`~agenticaiframework.communication.auth.APIKeyAuth`
    (header, query or cookie), ``basic`` becomes ``BasicAuth`` and ``oauth2``
    becomes ``OAuth2Auth`` with its process-wide token cache. UTCP sends the
    OAuth2 client credentials in the form body; set ``"client_auth": "basic"``
    in the dict to send them as a Basic header instead.

    Args:
        spec: The (variable-substituted) UTCP auth dict, or None.
        allow_insecure: Allow a plain-text token URL to a non-loopback host.

    Returns:
        The auth object, or None.

    Raises:
        ConfigError: Unknown ``auth_type`` or a missing field.
        SecurityError: An OAuth2 token URL breaks the URL policy.
    """
    if spec is None:
        return None
    kind = spec.get("auth_type")
    if kind == "api_key":
        return build_auth(
            {
                "type": "api_key",
                "key": spec.get("api_key") or "",
                "name": spec.get("var_name") or "X-Api-Key",
                "location": spec.get("location") or "header",
            }
        )
    if kind == "basic":
        return build_auth(
            {"type": "basic", "username": spec.get("username"), "password": spec.get("password")}
        )
    if kind == "oauth2":
        fields: dict[str, Any] = {
            "type": "oauth2",
            "client_id": spec.get("client_id"),
            "client_secret": spec.get("client_secret"),
            "token_url": spec.get("token_url"),
            "scope": spec.get("scope"),
            "client_auth": spec.get("client_auth", "body"),
        }
        return build_auth(fields, allow_insecure=allow_insecure)
    raise ConfigError(f"auth.auth_type: must be 'api_key', 'basic' or 'oauth2'; got {kind!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallTemplate:
    """Fields every call template has.

    Attributes:
        name: The manual (or provider) name.
        call_template_type: The protocol: http, sse, websocket, mcp or grpc.
        auth: A UTCP auth dict (``auth_type`` api_key, basic or oauth2), or None.
        allowed_communication_protocols: Types that tools of this manual may
            use; empty means only the manual's own type.
        raw: The dict the template was parsed from.
    """

    type_name: ClassVar[str] = ""

    name: str
    call_template_type: str
    auth: dict[str, Any] | None = None
    allowed_communication_protocols: tuple[str, ...] = ()
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def _common(cls, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {
            "name": _str(data, "name", where, ""),
            "call_template_type": cls.type_name,
            "auth": _auth_dict(data, "auth", where),
            "allowed_communication_protocols": _str_list(
                data, "allowed_communication_protocols", where
            ),
            "raw": dict(data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> CallTemplate:
        """Validate ``data`` as this template type.

        Args:
            data: The template dict.
            where: A path naming the template in error messages.

        Returns:
            The template.

        Raises:
            ConfigError: A field is missing or invalid (named).
        """
        raise ConfigError(f"{where or 'call_template'}: no call template type chosen")

    def allowed_types(self) -> tuple[str, ...]:
        """The tool template types this manual may register.

        Returns:
            ``allowed_communication_protocols``, or just this template's own type.
        """
        return self.allowed_communication_protocols or (self.call_template_type,)

    def to_dict(self) -> dict[str, Any]:
        """The template as a UTCP JSON dict (the dict it came from, name updated)."""
        out = dict(self.raw)
        out["name"] = self.name
        out["call_template_type"] = self.call_template_type
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpCallTemplate(CallTemplate):
    """An HTTP tool or manual (UTCP ``http``).

    Attributes:
        url: URL with ``{name}`` path parameters filled from the arguments.
        http_method: GET, POST, PUT, DELETE or PATCH.
        content_type: Content-Type of the body.
        headers: Static headers.
        body_field: The argument sent as the request body.
        header_fields: Arguments sent as request headers.
        auth_tools: Auth given to tools generated from an OpenAPI document.
    """

    type_name: ClassVar[str] = "http"

    url: str
    http_method: str = "GET"
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body_field: str | None = "body"
    header_fields: tuple[str, ...] = ()
    auth_tools: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> HttpCallTemplate:
        """Validate an ``http`` template (see :meth:`CallTemplate.from_dict`)."""
        return cls(
            **cls._common(data, where),
            url=_str(data, "url", where),
            http_method=_choice(data, "http_method", where, _HTTP_METHODS, "GET"),
            content_type=_str(data, "content_type", where, "application/json"),
            headers=_str_map(data, "headers", where),
            body_field=_str(
                data, "body_field", where, "body" if "body_field" not in data else None
            ),
            header_fields=_str_list(data, "header_fields", where),
            auth_tools=_auth_dict(data, "auth_tools", where),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SseCallTemplate(CallTemplate):
    """A streaming tool over Server-Sent Events (UTCP ``sse``).

    Attributes:
        url: The stream URL, ``{name}`` path parameters filled from arguments.
        http_method: GET, or POST when a body is sent.
        event_type: Only events of this type are yielded (None = all).
        reconnect: Reconnect (with ``Last-Event-ID``) when the stream drops.
        retry_timeout: Milliseconds to wait before reconnecting.
        headers: Static headers.
        body_field: The argument sent as a JSON body.
        header_fields: Arguments sent as request headers.
        terminal_event: An event type that ends the tool's stream. Without
            it, the server ending the response ends the stream; with it, a
            stream that drops before that event is resumed (``reconnect``)
            with ``Last-Event-ID``.
    """

    type_name: ClassVar[str] = "sse"

    url: str
    http_method: str = "GET"
    event_type: str | None = None
    reconnect: bool = True
    retry_timeout: float = 30000
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body_field: str | None = None
    header_fields: tuple[str, ...] = ()
    terminal_event: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> SseCallTemplate:
        """Validate an ``sse`` template (see :meth:`CallTemplate.from_dict`)."""
        return cls(
            **cls._common(data, where),
            url=_str(data, "url", where),
            http_method=_choice(data, "http_method", where, ("GET", "POST"), "GET"),
            event_type=_str(data, "event_type", where, None),
            reconnect=_bool(data, "reconnect", where, True),
            retry_timeout=_number(data, "retry_timeout", where, 30000),
            headers=_str_map(data, "headers", where),
            body_field=_str(data, "body_field", where, None),
            header_fields=_str_list(data, "header_fields", where),
            terminal_event=_str(data, "terminal_event", where, None),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebSocketCallTemplate(CallTemplate):
    """A WebSocket tool or manual (UTCP ``websocket``).

    Attributes:
        url: ``wss://`` URL (``ws://`` to loopback only).
        message: Message template (str or object) with ``UTCP_ARG_<name>_UTCP_ARG``
            placeholders; None sends the arguments as a JSON object.
        protocol: WebSocket subprotocol to ask for.
        keep_alive: Keep the connection open with pings.
        response_format: ``json``, ``text``, ``raw`` or None (as received).
        timeout: Seconds a discovery or call may wait for its answer.
        headers: Static handshake headers.
        header_fields: Arguments sent as handshake headers.
    """

    type_name: ClassVar[str] = "websocket"

    url: str
    message: str | dict[str, Any] | None = None
    protocol: str | None = None
    keep_alive: bool = True
    response_format: str | None = None
    timeout: float = 30.0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    header_fields: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> WebSocketCallTemplate:
        """Validate a ``websocket`` template (see :meth:`CallTemplate.from_dict`)."""
        message = data.get("message")
        if message is not None and not isinstance(message, str | Mapping):
            raise _fail(where, "message", f"must be a string or an object, got {message!r}")
        return cls(
            **cls._common(data, where),
            url=_str(data, "url", where),
            message=dict(message) if isinstance(message, Mapping) else message,
            protocol=_str(data, "protocol", where, None),
            keep_alive=_bool(data, "keep_alive", where, True),
            response_format=_choice(
                data, "response_format", where, (None, "json", "text", "raw"), None
            ),
            timeout=_number(data, "timeout", where, 30.0),
            headers=_str_map(data, "headers", where),
            header_fields=_str_list(data, "header_fields", where),
        )


_MCP_HTTP_TRANSPORTS = ("http", "streamable-http", "streamable_http", "streamableHttp", "sse")


@dataclasses.dataclass(frozen=True, kw_only=True)
class McpServer:
    """One MCP server: started over STDIO, or reached at a URL.

    Attributes:
        name: The server's name in ``mcpServers``.
        command: The program (a stdio server).
        args: Its arguments.
        env: Extra environment variables.
        cwd: Working directory.
        url: The server's URL (a Streamable HTTP server).
        transport: ``"stdio"``, or the transport named for a URL server.
    """

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    transport: str = "stdio"


@dataclasses.dataclass(frozen=True, kw_only=True)
class McpCallTemplate(CallTemplate):
    """MCP servers (``{"config": {"mcpServers": {...}}}``): stdio, or a URL (Streamable HTTP).

    Attributes:
        servers: The servers, in the order given.
        timeout: Seconds one request may take.
    """

    type_name: ClassVar[str] = "mcp"

    servers: tuple[McpServer, ...] = ()
    timeout: float = 30.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> McpCallTemplate:
        """Validate an ``mcp`` template (see :meth:`CallTemplate.from_dict`)."""
        config = data.get("config")
        if not isinstance(config, Mapping):
            raise _fail(where, "config", "required: an object with 'mcpServers'")
        servers_spec = config.get("mcpServers")
        if not isinstance(servers_spec, Mapping) or not servers_spec:
            raise _fail(where, "config.mcpServers", "required: a non-empty object")
        servers = []
        for server_name, spec in servers_spec.items():
            here = (
                f"{where}.config.mcpServers.{server_name}"
                if where
                else f"config.mcpServers.{server_name}"
            )
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{here}: must be an object")
            transport = spec.get("transport") or ("streamable-http" if "url" in spec else "stdio")
            if transport in _MCP_HTTP_TRANSPORTS:
                servers.append(
                    McpServer(
                        name=str(server_name), url=_str(spec, "url", here), transport=transport
                    )
                )
                continue
            if transport != "stdio":
                raise ConfigError(
                    f"{here}.transport: must be 'stdio' (with 'command') or Streamable HTTP "
                    f"(with 'url'), got {transport!r}"
                )
            servers.append(
                McpServer(
                    name=str(server_name),
                    command=_str(spec, "command", here),
                    args=_str_list(spec, "args", here),
                    env=_str_map(spec, "env", here),
                    cwd=_str(spec, "cwd", here, None),
                )
            )
        return cls(
            **cls._common(data, where),
            servers=tuple(servers),
            timeout=_number(data, "timeout", where, 30.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrpcCallTemplate(CallTemplate):
    """A gRPC server (manual) or one of its methods (tool).

    Attributes:
        target: ``host:port``.
        secure: Use TLS.
        proto_files: .proto files; none means server reflection.
        proto_include_paths: Include paths for the proto compiler.
        services: Services to turn into tools (manual only; empty = all).
        service: Full service name (tool only).
        method: Method name (tool only).
        metadata: Metadata sent with every call.
        timeout: Deadline of one call, in seconds.
    """

    type_name: ClassVar[str] = "grpc"

    target: str
    secure: bool = False
    proto_files: tuple[str, ...] = ()
    proto_include_paths: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    service: str | None = None
    method: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    timeout: float = 30.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> GrpcCallTemplate:
        """Validate a ``grpc`` template (see :meth:`CallTemplate.from_dict`)."""
        return cls(
            **cls._common(data, where),
            target=_str(data, "target", where),
            secure=_bool(data, "secure", where, False),
            proto_files=_str_list(data, "proto_files", where),
            proto_include_paths=_str_list(data, "proto_include_paths", where),
            services=_str_list(data, "services", where),
            service=_str(data, "service", where, None),
            method=_str(data, "method", where, None),
            metadata=_str_map(data, "metadata", where),
            timeout=_number(data, "timeout", where, 30.0),
        )


CALL_TEMPLATE_TYPES: dict[str, type[CallTemplate]] = {
    "http": HttpCallTemplate,
    "sse": SseCallTemplate,
    "websocket": WebSocketCallTemplate,
    "mcp": McpCallTemplate,
    "grpc": GrpcCallTemplate,
}


def parse_template(data: Mapping[str, Any] | CallTemplate, where: str = "") -> CallTemplate:
    """Validate a call template dict into its typed template.

    Args:
        data: A dict with ``call_template_type`` (or an already-parsed template).
        where: A path naming the template in error messages.

    Returns:
        The typed template.

    Raises:
        ConfigError: Not an object, unknown type, or an invalid field (named).
    """
    if isinstance(data, CallTemplate):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{where or 'call_template'}: must be an object, got {type(data).__name__}"
        )
    kind = data.get("call_template_type")
    cls = CALL_TEMPLATE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _fail(
            where,
            "call_template_type",
            f"must be one of {', '.join(sorted(CALL_TEMPLATE_TYPES))}; got {kind!r}",
        )
    return cls.from_dict(data, where)
