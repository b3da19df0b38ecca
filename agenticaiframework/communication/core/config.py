"""Configuration value objects for every client, and the one merge helper.

Every config is a frozen, keyword-only dataclass validated at construction: a
bad value raises :class:`~agenticaiframework.communication.core.errors.ConfigError`
(a ``ValueError``) naming the field. Clients accept ``config=`` plus keyword
overrides of any field; :func:`merge_config` is the single place that merges
them. Secrets never appear in ``repr()``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from .errors import ConfigError
from .security import is_credential_header, redact_url

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_RETRY_ON_STATUS",
    "BaseConfig",
    "GRPCConfig",
    "HTTPConfig",
    "MQTTConfig",
    "MQTTWill",
    "MessageFormat",
    "RetryConfig",
    "SSEConfig",
    "STDIOConfig",
    "WebSocketConfig",
    "merge_config",
]

DEFAULT_RETRY_ON_STATUS: tuple[int, ...] = (429, 500, 502, 503, 504)
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

MessageFormat = Literal["auto", "json", "text", "bytes"]
_MESSAGE_FORMATS = ("auto", "json", "text", "bytes")

_SECRET_WORDS = ("password", "secret", "token", "key", "auth", "cookie", "credential")

C = TypeVar("C", bound="BaseConfig")


def _fail(field: str, problem: str) -> ConfigError:
    return ConfigError(f"{field}: {problem}")


def _check_number(name: str, value: Any, *, minimum: float = 0.0, allow_equal: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _fail(name, f"must be a number, got {value!r}")
    if value < minimum or (not allow_equal and value == minimum):
        op = ">=" if allow_equal else ">"
        raise _fail(name, f"must be {op} {minimum}, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"must be an integer, got {value!r}")
    if value < minimum:
        raise _fail(name, f"must be >= {minimum}, got {value!r}")


def check_size_limit(name: str, value: Any) -> None:
    """Validate a size limit in bytes: a positive integer, or None for no limit.

    Args:
        name: The field or argument name, for the error.
        value: The value to check.

    Raises:
        ConfigError: The value is not None nor an integer >= 1.
    """
    if value is not None:
        _check_int(name, value, minimum=1)


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise _fail(name, f"must be one of {', '.join(map(repr, choices))}; got {value!r}")


def _check_mapping(name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _fail(name, f"must be a mapping of str to str, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _fail(name, f"keys and values must be str, got {k!r}: {v!r}")


# RFC 9110 token characters (header names) and what a header value may hold
# (visible ASCII, space and tab; httpx encodes str values as ASCII).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header_name(field: str, name: Any) -> None:
    """Refuse a header name that is not an RFC 9110 token.

    Args:
        field: The config field or argument, for the error.
        name: The header name.

    Raises:
        ConfigError: The name is not a str token.
    """
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise _fail(
            field,
            f"name {name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)",
        )


def check_headers(field: str, headers: Mapping[Any, Any]) -> None:
    """Refuse header names and values that cannot be sent as they are.

    A control character (CR, LF, NUL, ...) could split or corrupt the request;
    a non-ASCII character cannot be encoded in an HTTP header by httpx. Both
    are refused here, before anything is sent, naming the header.

    Args:
        field: The config field or argument, for the error.
        headers: Header names and values (str, or bytes for values).

    Raises:
        ConfigError: A name or value is invalid.
    """
    for name, value in headers.items():
        check_header_name(field, name)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            raise _fail(field, f"value of {name!r} must be a str, got {type(value).__name__}")
        if _HEADER_VALUE.fullmatch(value):
            continue
        control = _CONTROL.search(value)
        if control is not None:
            raise _fail(
                field,
                f"value of {name!r} has the control character {control.group()!r} "
                "(CR, LF, NUL and the like could split or corrupt the request)",
            )
        odd = next(c for c in value if not _HEADER_VALUE.fullmatch(c))
        raise _fail(
            field,
            f"value of {name!r} has the non-ASCII character {odd!r}: header values are "
            "ASCII (percent-encode it, or use RFC 8187 encoding for parameters)",
        )


def _redact(name: str, value: Any, extra: Sequence[str] = ()) -> str:
    if value is None or value == "" or value == {} or value == ():
        return repr(value)
    lowered = name.lower()
    if isinstance(value, bool | int | float):
        return repr(value)
    if any(word in lowered for word in _SECRET_WORDS):
        return "'***'"
    if isinstance(value, Mapping):
        shown = {k: ("***" if is_credential_header(str(k), extra) else v) for k, v in value.items()}
        return repr(shown)
    if isinstance(value, str) and ("://" in value or "@" in value):
        return repr(redact_url(value))
    return repr(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How to wait and try again: exponential backoff with jitter.

    Attributes:
        max_retries: Attempts after the first one; 0 disables retrying.
        retry_delay: The first wait, in seconds.
        retry_backoff: Multiplier applied to the wait after each attempt.
        max_delay: Upper bound of one wait, in seconds (Retry-After included).
        jitter: Fraction of each wait randomised (0 = none, 0.1 = +/-10%).
        retry_on_status: HTTP statuses worth retrying.
        retry_non_idempotent: Retry POST/PATCH too (off by default).
    """

    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1
    retry_on_status: tuple[int, ...] = DEFAULT_RETRY_ON_STATUS
    retry_non_idempotent: bool = False

    def __post_init__(self) -> None:
        _check_int("max_retries", self.max_retries)
        _check_number("retry_delay", self.retry_delay)
        _check_number("retry_backoff", self.retry_backoff, minimum=1.0)
        _check_number("max_delay", self.max_delay)
        _check_number("jitter", self.jitter)
        if self.jitter > 1:
            raise _fail("jitter", f"must be between 0 and 1, got {self.jitter!r}")
        statuses = tuple(self.retry_on_status)
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise _fail("retry_on_status", f"must hold HTTP statuses, got {status!r}")
        object.__setattr__(self, "retry_on_status", statuses)


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class BaseConfig:
    """Fields every protocol shares: the security switch and TLS settings.

    Attributes:
        allow_insecure: Allow plain-text transports to non-loopback hosts.
        verify_ssl: Verify the server certificate (TLS).
        ca_certs: Path of a CA bundle to trust instead of the system one.
        client_cert: Path of a client certificate (PEM) for mutual TLS.
        client_key: Path of the client certificate's private key (PEM).
        telemetry: Report OpenTelemetry spans and metrics (when a provider
            is configured); False turns this client's instrumentation off.
        tracer_provider: An OpenTelemetry ``TracerProvider`` for this client
            instead of the global one.
        meter_provider: An OpenTelemetry ``MeterProvider`` for this client
            instead of the global one.
    """

    allow_insecure: bool = False
    verify_ssl: bool = True
    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    telemetry: bool = True
    tracer_provider: Any = dataclasses.field(default=None, repr=False, compare=False)
    meter_provider: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("allow_insecure", "verify_ssl", "telemetry"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, f"must be a bool, got {getattr(self, name)!r}")
        if self.client_key is not None and self.client_cert is None:
            raise _fail("client_key", "needs client_cert as well")
        self._validate()

    def _validate(self) -> None:
        """Validate the protocol's own fields; overridden per protocol."""

    def __repr__(self) -> str:
        extra = getattr(self, "credential_headers", ())
        parts = [
            f"{f.name}={_redact(f.name, getattr(self, f.name), extra)}"
            for f in dataclasses.fields(self)
            if f.repr
        ]
        return f"{type(self).__name__}({', '.join(parts)})"

    def retry_config(self) -> RetryConfig:
        """The retry policy this config implies (no retries by default)."""
        return RetryConfig(max_retries=0)


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class HTTPConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.HTTPClient`.

    Attributes:
        base_url: Prefix for relative request URLs.
        timeout_seconds: Read/write/pool timeout of one request (0 = none).
        connect_timeout: Timeout of establishing a connection.
        max_retries: Retries after the first attempt.
        retry_delay: First backoff wait, in seconds.
        retry_backoff: Backoff multiplier.
        max_retry_delay: Upper bound of one wait (Retry-After included).
        retry_on_status: Statuses that are retried.
        retry_non_idempotent: Also retry POST and PATCH.
        pool_connections: Keep-alive connections kept open.
        pool_maxsize: Upper bound of open connections.
        cert_path: CA bundle path (alias kept for the guide; see ``ca_certs``).
        headers: Default headers sent with every request.
        auth: An auth object or dict (``{"type": "bearer", "token": ...}``).
        follow_redirects: Follow 3xx responses (each hop re-checked).
        max_redirects: Hops followed before giving up.
        http2: Negotiate HTTP/2 (needs the ``h2`` package).
        transport: The wire engine under the httpx API: None (the default
            engine, ``"aiohttp"``), ``"aiohttp"`` (aiohttp through
            httpx-aiohttp), ``"httpx"`` (httpx's own transport; ``http2=True``
            picks it by itself) or any ``httpx.AsyncBaseTransport``.
        max_response_size: Largest response body read, in bytes, counted after
            decompression (a gzip bomb is stopped at the limit, not at its
            wire size); a bigger body raises ``MessageTooLargeError``. None
            (the default) reads bodies of any size, as httpx does: set it for
            any server you do not trust. Requests and streams can override it.
        credential_headers: More header names to treat as credentials: dropped
            on a redirect to another origin and hidden in ``repr()``, like the
            built-in ones (Authorization, Cookie, API-key headers, and every
            name that looks like a credential: ``Private-Token``,
            ``X-Goog-Api-Key``, ``X-Auth-Token``...).
        health_path: What ``health_check()`` GETs: a path relative to
            ``base_url`` (``"/healthz"``) or an absolute URL; None probes
            ``base_url`` itself. Healthy means a 2xx or 3xx answer.
    """

    base_url: str | None = None
    timeout_seconds: float = 30.0
    connect_timeout: float = 10.0
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    max_retry_delay: float = 30.0
    retry_on_status: Sequence[int] = DEFAULT_RETRY_ON_STATUS
    retry_non_idempotent: bool = False
    pool_connections: int = 10
    pool_maxsize: int = 100
    cert_path: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    auth: Any = None
    follow_redirects: bool = True
    max_redirects: int = 20
    http2: bool = False
    transport: Any = None
    max_response_size: int | None = None
    credential_headers: Sequence[str] = ()
    health_path: str | None = None

    def _validate(self) -> None:
        check_size_limit("max_response_size", self.max_response_size)
        _check_number("timeout_seconds", self.timeout_seconds)
        _check_number("connect_timeout", self.connect_timeout)
        _check_int("pool_connections", self.pool_connections)
        _check_int("pool_maxsize", self.pool_maxsize, minimum=1)
        _check_int("max_redirects", self.max_redirects)
        _check_mapping("headers", self.headers)
        check_headers("headers", self.headers)
        if isinstance(self.credential_headers, str):
            raise _fail("credential_headers", "must be a sequence of header names, not a str")
        object.__setattr__(self, "credential_headers", tuple(self.credential_headers))
        for name in self.credential_headers:
            check_header_name("credential_headers", name)
        if self.health_path is not None and not isinstance(self.health_path, str):
            raise _fail("health_path", f"must be a path, a URL or None, got {self.health_path!r}")
        if isinstance(self.transport, str) and self.transport not in ("aiohttp", "httpx"):
            raise _fail(
                "transport",
                f"unknown engine {self.transport[:40]!r}: use 'aiohttp', 'httpx' "
                "or an httpx transport object",
            )
        if self.pool_connections > self.pool_maxsize:
            raise _fail("pool_connections", "must not exceed pool_maxsize")
        self.retry_config()

    def retry_config(self) -> RetryConfig:
        """The retry policy built from the flat retry fields."""
        return RetryConfig(
            max_retries=self.max_retries,
            retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff,
            max_delay=self.max_retry_delay,
            retry_on_status=tuple(self.retry_on_status),
            retry_non_idempotent=self.retry_non_idempotent,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class WebSocketConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.WebSocketClient`.

    Attributes:
        ping_interval: Seconds between keep-alive pings (0 disables).
        ping_timeout: Seconds to wait for a pong before the link is dead.
        close_timeout: Seconds to wait for the closing handshake.
        open_timeout: Seconds allowed for the opening handshake.
        auto_reconnect: Reconnect after an abnormal close.
        reconnect_delay: First backoff wait, in seconds.
        max_reconnect_delay: Upper bound of one backoff wait.
        max_reconnect_attempts: Attempts per outage before giving up.
        max_message_size: Largest incoming message, in bytes.
        compression: Negotiate permessage-deflate.
        headers: Extra handshake headers.
        subprotocols: Subprotocols offered in the handshake.
        auth: An auth object or dict sent as handshake headers.
        message_format: ``auto`` decodes JSON objects/arrays; or pin one.
        send_queue_size: Sends held while reconnecting; past it, QueueFullError.
        request_id_field: Field that :meth:`request` correlates on.
        answer_text_ping: Answer a text ``"ping"`` frame with ``"pong"``.
        auth_message: A first message sent after every connect (auth handshake).
        auth_success_types: Reply ``type`` values accepted as auth success.
        auth_timeout: Seconds to wait for the auth reply.
        auth_error_types: Reply ``type`` values that mean the auth was refused.
        receive_queue_size: Received messages buffered for ``receive()`` and
            ``async for``. Full with no ``message`` handler: reading pauses
            (backpressure). Full with a ``message`` handler (which saw every
            message): the oldest buffered message is dropped.
        request_timeout: Default seconds :meth:`request` waits (0 = no limit).
        credential_headers: More header names that carry credentials: dropped,
            like the auth headers, on a redirect to another origin.
        engine: The wire library: None (the default, ``"websockets"``),
            ``"websockets"`` or ``"picows"`` (the ``picows`` extra).
        trace_field: Opt-in trace context in messages: when set (e.g.
            ``"_trace"``) and tracing is live, each JSON object sent gets
            ``{field: {"traceparent": ...}}`` and a received one's field
            parents its span. None (default): messages are sent unchanged.
    """

    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 10.0
    open_timeout: float = 10.0
    auto_reconnect: bool = True
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 30.0
    max_reconnect_attempts: int = 5
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    compression: bool = True
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    subprotocols: Sequence[str] = ()
    auth: Any = None
    message_format: MessageFormat = "auto"
    send_queue_size: int = 1000
    request_id_field: str = "id"
    answer_text_ping: bool = False
    auth_message: Any = None
    auth_success_types: Sequence[str] = ("auth_success", "authenticated", "welcome")
    auth_timeout: float = 10.0
    auth_error_types: Sequence[str] = ("auth_error", "auth_failed", "unauthorized", "error")
    receive_queue_size: int = 1024
    request_timeout: float = 30.0
    credential_headers: Sequence[str] = ()
    engine: str | None = None
    trace_field: str | None = None

    def _validate(self) -> None:
        if self.trace_field is not None and not (
            isinstance(self.trace_field, str) and self.trace_field
        ):
            raise _fail("trace_field", f"must be a field name or None, got {self.trace_field!r}")
        if self.engine is not None:
            _check_choice("engine", self.engine, ("websockets", "picows"))
        _check_number("request_timeout", self.request_timeout)
        _check_int("receive_queue_size", self.receive_queue_size, minimum=1)
        for seq in ("subprotocols", "auth_success_types", "auth_error_types", "credential_headers"):
            value = getattr(self, seq)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise _fail(seq, f"must be a sequence of str, got {value!r}")
            object.__setattr__(self, seq, tuple(value))
        for name in ("ping_interval", "ping_timeout", "close_timeout", "open_timeout"):
            _check_number(name, getattr(self, name))
        _check_number("reconnect_delay", self.reconnect_delay)
        _check_number("max_reconnect_delay", self.max_reconnect_delay)
        _check_number("auth_timeout", self.auth_timeout)
        _check_int("max_reconnect_attempts", self.max_reconnect_attempts)
        _check_int("max_message_size", self.max_message_size, minimum=1)
        _check_int("send_queue_size", self.send_queue_size)
        _check_mapping("headers", self.headers)
        _check_choice("message_format", self.message_format, _MESSAGE_FORMATS)
        if not self.request_id_field:
            raise _fail("request_id_field", "must not be empty")

    def retry_config(self) -> RetryConfig:
        """The reconnect backoff policy.

        Every reconnect attempt, the first one included, waits its backoff
        first; ``max_reconnect_attempts`` attempts are one try plus
        ``max_reconnect_attempts - 1`` retries.
        """
        return RetryConfig(
            max_retries=max(self.max_reconnect_attempts - 1, 0),
            retry_delay=self.reconnect_delay,
            max_delay=max(self.max_reconnect_delay, self.reconnect_delay),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class SSEConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.SSEClient`.

    Attributes:
        method: HTTP method of the stream request.
        json: JSON body (for POST streams).
        params: Query parameters.
        timeout_seconds: Read timeout between bytes; 0 means none (long-lived).
        connect_timeout: Timeout of establishing the connection.
        auto_reconnect: Reconnect when the stream drops.
        reconnect_delay: Wait before reconnecting unless the server sent ``retry:``.
        max_reconnect_delay: Upper bound of one backoff wait.
        max_reconnect_attempts: Consecutive failed attempts before giving up.
        headers: Extra request headers.
        auth: An auth object or dict.
        terminal_event: An event name that ends iteration (such as ``"done"``);
            that event is still yielded, then the stream is closed.
        last_event_id: Resume from this id: sent as ``Last-Event-ID`` on the
            first request (later requests send the last id received).
        max_event_size: Largest event, in characters, counting every line of
            it (empty ``data:`` lines and a line still waiting for its
            newline included); a bigger one raises ``MessageTooLargeError``.
    """

    method: str = "GET"
    json: Any = None
    params: Mapping[str, Any] | None = None
    timeout_seconds: float = 0.0
    connect_timeout: float = 10.0
    auto_reconnect: bool = True
    reconnect_delay: float = 3.0
    max_reconnect_delay: float = 30.0
    max_reconnect_attempts: int = 5
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    auth: Any = None
    terminal_event: str | None = None
    last_event_id: str | None = None
    max_event_size: int = 16 * 1024 * 1024

    def _validate(self) -> None:
        _check_number("timeout_seconds", self.timeout_seconds)
        _check_number("connect_timeout", self.connect_timeout)
        _check_number("reconnect_delay", self.reconnect_delay)
        _check_int("max_event_size", self.max_event_size, minimum=1)
        for name in ("terminal_event", "last_event_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise _fail(name, f"must be a str or None, got {value!r}")
        if self.last_event_id is not None and any(c in self.last_event_id for c in "\0\r\n"):
            raise _fail("last_event_id", "must not contain NUL, CR or LF")
        _check_number("max_reconnect_delay", self.max_reconnect_delay)
        _check_int("max_reconnect_attempts", self.max_reconnect_attempts)
        _check_mapping("headers", self.headers)
        check_headers("headers", self.headers)
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise _fail("method", f"must be an HTTP method name, got {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())

    def retry_config(self) -> RetryConfig:
        """The reconnect backoff policy."""
        return RetryConfig(
            max_retries=self.max_reconnect_attempts,
            retry_delay=self.reconnect_delay,
            max_delay=max(self.max_reconnect_delay, self.reconnect_delay),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MQTTWill:
    """An MQTT last-will message, published by the broker if we vanish.

    Attributes:
        topic: Topic of the will.
        payload: dict/list (JSON), str (UTF-8) or bytes.
        qos: QoS of the will.
        retain: Retain flag of the will.
    """

    topic: str
    payload: Any = b""
    qos: int = 0
    retain: bool = False

    def __post_init__(self) -> None:
        if not self.topic or any(c in self.topic for c in "+#"):
            raise _fail("will.topic", f"must be a non-empty topic name, got {self.topic!r}")
        _check_choice("will.qos", self.qos, (0, 1, 2))


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class MQTTConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.MQTTClient`.

    Attributes:
        host: Broker host.
        port: Broker port (1883 plain, 8883 TLS by convention).
        client_id: Client identifier; required for a persistent session.
        username: User name.
        password: Password.
        use_tls: Connect with TLS (``mqtts://``).
        ca_certs: CA bundle path for the broker certificate.
        default_qos: QoS used when a call does not give one.
        keepalive: Keep-alive interval, in seconds.
        clean_session: Start a clean session (False keeps subscriptions and
            queued QoS 1/2 messages at the broker across reconnects).
        protocol: ``"5"``, ``"3.1.1"``, or ``"auto"`` (try MQTT 5, fall back to
            3.1.1 when the broker refuses it; the version found is kept for
            reconnects).
        protocol_version: Older spelling of ``protocol``: 4 (3.1.1) or 5;
            when given it wins over ``protocol``.
        session_expiry: MQTT 5 session expiry interval, in seconds. None: 0
            with ``clean_session=True``, "never expires" with False.
        will: The last will.
        auto_reconnect: Reconnect when the broker goes away.
        reconnect_delay: First backoff wait.
        max_reconnect_delay: Upper bound of one backoff wait.
        max_reconnect_attempts: Attempts per outage before giving up (0 = forever).
        max_queued_publishes: publish() calls held while disconnected.
        max_queued_messages: Received messages buffered for a slow consumer;
            past it the reader waits (TCP back-pressure), nothing is dropped.
        message_format: How received payloads are decoded.
        connect_timeout: Seconds allowed for the CONNECT handshake.
        engine: The MQTT library underneath: ``"aiomqtt"`` (None, the
            default) or ``"gmqtt"`` (faster; ``pip install
            'agenticaiframework-communication[mqtt-gmqtt]'``). Same API and
            behaviour on both.
    """

    host: str = "localhost"
    port: int = 1883
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    default_qos: int = 0
    keepalive: int = 60
    clean_session: bool = True
    protocol: str = "auto"
    protocol_version: int | None = None
    session_expiry: int | None = None
    will: MQTTWill | None = None
    auto_reconnect: bool = True
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 30.0
    max_reconnect_attempts: int = 0
    max_queued_publishes: int = 1000
    max_queued_messages: int = 10000
    message_format: MessageFormat = "auto"
    connect_timeout: float = 10.0
    engine: str | None = None

    def _validate(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise _fail("host", f"must be a non-empty host name, got {self.host!r}")
        _check_int("port", self.port, minimum=1)
        if self.port > 65535:
            raise _fail("port", f"must be <= 65535, got {self.port!r}")
        _check_choice("engine", self.engine, (None, "aiomqtt", "gmqtt"))
        _check_choice("default_qos", self.default_qos, (0, 1, 2))
        _check_int("keepalive", self.keepalive)
        _check_choice("protocol_version", self.protocol_version, (None, 4, 5))
        if self.protocol_version is not None:
            object.__setattr__(self, "protocol", "5" if self.protocol_version == 5 else "3.1.1")
        _check_choice("protocol", self.protocol, ("5", "3.1.1", "auto"))
        if self.session_expiry is not None:
            _check_int("session_expiry", self.session_expiry)
            if self.session_expiry > 0xFFFFFFFF:
                raise _fail("session_expiry", f"must be <= {0xFFFFFFFF}, got {self.session_expiry}")
        _check_number("reconnect_delay", self.reconnect_delay)
        _check_number("max_reconnect_delay", self.max_reconnect_delay)
        _check_number("connect_timeout", self.connect_timeout, allow_equal=False)
        _check_int("max_reconnect_attempts", self.max_reconnect_attempts)
        _check_int("max_queued_publishes", self.max_queued_publishes)
        _check_int("max_queued_messages", self.max_queued_messages, minimum=1)
        _check_choice("message_format", self.message_format, _MESSAGE_FORMATS)
        if not self.clean_session and not self.client_id:
            raise _fail("client_id", "is required when clean_session=False")

    def retry_config(self) -> RetryConfig:
        """The reconnect backoff policy: ``max_reconnect_attempts`` attempts in all.

        (One try plus ``max_reconnect_attempts - 1`` retries, as for WebSocket;
        0 means forever and is handled by the caller.)
        """
        return RetryConfig(
            max_retries=max(self.max_reconnect_attempts - 1, 0),
            retry_delay=self.reconnect_delay,
            max_delay=max(self.max_reconnect_delay, self.reconnect_delay),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class GRPCConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.GRPCClient`.

    Attributes:
        target: ``host:port`` of the server.
        secure: Use TLS.
        root_certificates: CA bundle path (TLS).
        private_key: Client key path (mutual TLS).
        certificate_chain: Client certificate path (mutual TLS).
        max_message_length: Largest message in either direction, in bytes.
        compression: ``"gzip"``, ``"deflate"`` or None.
        timeout_seconds: Default deadline of a call (0 = none).
        max_retries: Retries of a call that failed with UNAVAILABLE.
        retry_delay: First backoff wait.
        metadata: Metadata sent with every call.
        auth: Bearer / OAuth2 auth sent as ``authorization`` metadata.
        proto_files: .proto files compiled at run time; none = reflection.
        proto_include_paths: Include paths for the proto compiler.
        keepalive_time_ms: HTTP/2 keepalive ping interval (0 = off).
        keepalive_timeout_ms: Keepalive ping timeout.
        options: Extra raw channel options.
    """

    target: str = "localhost:50051"
    secure: bool = False
    root_certificates: str | None = None
    private_key: str | None = None
    certificate_chain: str | None = None
    max_message_length: int = 4 * 1024 * 1024
    compression: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 3
    retry_delay: float = 1.0
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    auth: Any = None
    proto_files: Sequence[str] = ()
    proto_include_paths: Sequence[str] = ()
    keepalive_time_ms: int = 0
    keepalive_timeout_ms: int = 20000
    options: Sequence[tuple[str, Any]] = ()

    def _validate(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise _fail("target", f"must be 'host:port', got {self.target!r}")
        _check_int("max_message_length", self.max_message_length, minimum=1)
        _check_choice("compression", self.compression, (None, "gzip", "deflate"))
        _check_number("timeout_seconds", self.timeout_seconds)
        _check_int("max_retries", self.max_retries)
        _check_number("retry_delay", self.retry_delay)
        _check_mapping("metadata", self.metadata)
        _check_int("keepalive_time_ms", self.keepalive_time_ms)
        _check_int("keepalive_timeout_ms", self.keepalive_timeout_ms)
        if isinstance(self.proto_files, str):
            object.__setattr__(self, "proto_files", (self.proto_files,))
        if (self.private_key is None) != (self.certificate_chain is None):
            raise _fail("private_key", "and certificate_chain must be given together")
        if not self.verify_ssl:
            raise _fail("verify_ssl", "grpcio always verifies the server; pass root_certificates")
        for option in self.options:
            if not isinstance(option, tuple) or len(option) != 2 or not isinstance(option[0], str):
                raise _fail("options", f"must be (name, value) pairs, got {option!r}")

    def retry_config(self) -> RetryConfig:
        """The retry policy for UNAVAILABLE."""
        return RetryConfig(max_retries=self.max_retries, retry_delay=self.retry_delay)


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class STDIOConfig(BaseConfig):
    """Settings of :class:`~agenticaiframework.communication.STDIOClient`.

    Attributes:
        command: The program and its arguments.
        working_dir: Working directory of the process.
        env: Extra environment variables (merged over the current ones).
        encoding: Text encoding of the pipes.
        line_buffered: Flush after every message written.
        startup_timeout: Seconds allowed for spawn (and the ready line).
        response_timeout: Default seconds a receive or request may wait.
        message_format: ``json``, ``line``, ``raw`` or ``jsonrpc``.
        delimiter: Message delimiter for newline framing.
        framing: ``newline`` or ``content-length`` (LSP-style headers).
        max_line_length: Largest incoming message, in bytes.
        stderr: ``pipe`` (drained, tail kept), ``inherit`` or ``devnull``.
        stderr_tail_bytes: How much of stderr is kept for error reports.
        ready_line: A line the process prints once ready (waited for at start).
        terminate_timeout: Grace period after closing stdin, and again after
            SIGTERM, before the process group is killed.
        max_queued_messages: Received messages held for ``receive()``; past
            it the pipe is no longer read (back-pressure) in json/line/raw
            mode, while in jsonrpc mode the oldest unread message is dropped
            and reported (replies must keep flowing).
        ping_method: JSON-RPC method ``health_check()`` calls (``"ping"`` for
            MCP servers); needs ``message_format="jsonrpc"``. None checks
            only that the process is alive.
    """

    command: Sequence[str] = ()
    working_dir: str | None = None
    env: Mapping[str, str] | None = None
    encoding: str = "utf-8"
    line_buffered: bool = True
    startup_timeout: float = 10.0
    response_timeout: float = 60.0
    message_format: Literal["json", "line", "raw", "jsonrpc"] = "json"
    delimiter: str = "\n"
    framing: Literal["newline", "content-length"] = "newline"
    max_line_length: int = 16 * 1024 * 1024
    stderr: Literal["pipe", "inherit", "devnull"] = "pipe"
    stderr_tail_bytes: int = 8192
    ready_line: str | None = None
    terminate_timeout: float = 2.0
    max_queued_messages: int = 10000
    ping_method: str | None = None

    def _validate(self) -> None:
        if isinstance(self.command, str):
            raise _fail("command", "must be a list of arguments, not a string")
        object.__setattr__(self, "command", tuple(self.command))
        for arg in self.command:
            if not isinstance(arg, str):
                raise _fail("command", f"arguments must be str, got {arg!r}")
        if self.env is not None:
            _check_mapping("env", self.env)
        _check_number("startup_timeout", self.startup_timeout)
        _check_number("response_timeout", self.response_timeout)
        _check_number("terminate_timeout", self.terminate_timeout)
        _check_choice("message_format", self.message_format, ("json", "line", "raw", "jsonrpc"))
        _check_choice("framing", self.framing, ("newline", "content-length"))
        _check_choice("stderr", self.stderr, ("pipe", "inherit", "devnull"))
        _check_int("max_line_length", self.max_line_length, minimum=1)
        _check_int("stderr_tail_bytes", self.stderr_tail_bytes)
        _check_int("max_queued_messages", self.max_queued_messages, minimum=1)
        if self.ping_method is not None and not (
            isinstance(self.ping_method, str) and self.ping_method
        ):
            raise _fail("ping_method", f"must be a method name or None, got {self.ping_method!r}")
        if self.ping_method is not None and self.message_format != "jsonrpc":
            raise _fail(
                "ping_method",
                "is a JSON-RPC request and needs message_format='jsonrpc' "
                f"(message_format is {self.message_format!r})",
            )
        if self.message_format == "raw" and self.framing != "newline":
            raise _fail("framing", "raw message_format reads unframed bytes; use framing='newline'")
        if not isinstance(self.delimiter, str) or not self.delimiter:
            raise _fail("delimiter", "must not be empty")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise _fail("encoding", f"unknown encoding {self.encoding!r}") from None


def merge_config(cls: type[C], config: C | None, overrides: Mapping[str, Any]) -> C:
    """Merge ``config=`` with keyword overrides into one validated config.

    Args:
        cls: The config class the client expects.
        config: The config the caller passed, or None for the defaults.
        overrides: Keyword arguments naming fields of ``cls``.

    Returns:
        A new validated config (the given one when there are no overrides).

    Raises:
        ConfigError: An override names no field of ``cls``, a value is
            invalid, or ``config`` is of the wrong type.
    """
    if config is not None and not isinstance(config, cls):
        raise ConfigError(f"config: expected {cls.__name__}, got {type(config).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: not a field of {cls.__name__} (fields: {', '.join(sorted(names))})"
        )
    if config is None:
        return cls(**overrides)
    if not overrides:
        return config
    return dataclasses.replace(config, **overrides)
