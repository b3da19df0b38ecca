"""The I/O-free shared core: config, security policy, codecs, retry, events, errors, health."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agenticaiframework.communication as comm
from agenticaiframework.communication.core import codecs, errors
from agenticaiframework.communication.core.config import (
    GRPCConfig,
    HTTPConfig,
    MQTTConfig,
    RetryConfig,
    SSEConfig,
    STDIOConfig,
    WebSocketConfig,
    merge_config,
)
from agenticaiframework.communication.core.events import EventEmitter
from agenticaiframework.communication.core.health import run_probe
from agenticaiframework.communication.core.retry import backoff_delay, parse_retry_after, retrying
from agenticaiframework.communication.core.security import (
    RedactingFilter,
    check_endpoint,
    check_url,
    is_credential_header,
    is_loopback_host,
    origin_of,
    redact_headers,
    redact_text,
    redact_url,
    strip_credentials,
)

# -- config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (HTTPConfig, "connect_timeout", -1),
        (HTTPConfig, "pool_maxsize", 0),
        (WebSocketConfig, "max_message_size", 0),
        (WebSocketConfig, "message_format", "xml"),
        (SSEConfig, "reconnect_delay", "soon"),
        (MQTTConfig, "default_qos", 3),
        (MQTTConfig, "port", 70000),
        (MQTTConfig, "protocol_version", 3),
        (GRPCConfig, "compression", "brotli"),
        (GRPCConfig, "max_message_length", 0),
        (STDIOConfig, "message_format", "yaml"),
        (STDIOConfig, "command", "python worker.py"),
        (STDIOConfig, "encoding", "no-such-codec"),
    ],
)
def test_bad_values_name_the_field(cls: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as info:
        cls(**{field: value})
    assert isinstance(info.value, errors.ConfigError) and info.value.code == "ERR_CONFIG"


def test_guide_config_fields_exist() -> None:
    HTTPConfig(
        timeout_seconds=30,
        connect_timeout=10,
        max_retries=3,
        retry_delay=1.0,
        retry_backoff=2.0,
        retry_on_status=[429, 500, 502, 503, 504],
        pool_connections=10,
        pool_maxsize=100,
        verify_ssl=True,
        cert_path="/path/to/cert.pem",
    )
    WebSocketConfig(
        ping_interval=30,
        ping_timeout=10,
        close_timeout=5,
        auto_reconnect=True,
        reconnect_delay=1.0,
        max_reconnect_attempts=5,
        max_message_size=1024 * 1024,
        compression=True,
    )
    SSEConfig(
        timeout_seconds=0,
        auto_reconnect=True,
        reconnect_delay=3.0,
        headers={"Authorization": "Bearer token"},
    )
    MQTTConfig(
        host="broker.example.com",
        port=1883,
        client_id="agent_client_01",
        username="user",
        password="password",
        use_tls=True,
        ca_certs="/path/to/ca.pem",
        default_qos=1,
        keepalive=60,
        clean_session=True,
    )
    GRPCConfig(
        target="localhost:50051",
        secure=True,
        root_certificates="/path/to/ca.pem",
        private_key="/path/to/key.pem",
        certificate_chain="/path/to/cert.pem",
        max_message_length=4 * 1024 * 1024,
        compression="gzip",
        timeout_seconds=30,
        max_retries=3,
        retry_delay=1.0,
    )
    STDIOConfig(
        command=["node", "agent.js"],
        working_dir="./agents",
        env={"NODE_ENV": "production"},
        encoding="utf-8",
        line_buffered=True,
        startup_timeout=10,
        response_timeout=60,
        message_format="json",
        delimiter="\n",
    )


def test_merge_config() -> None:
    base = HTTPConfig(timeout_seconds=5)
    merged = merge_config(HTTPConfig, base, {"max_retries": 1})
    assert (merged.timeout_seconds, merged.max_retries) == (5, 1)
    assert merge_config(HTTPConfig, base, {}) is base
    assert merge_config(HTTPConfig, None, {"max_retries": 0}).max_retries == 0
    with pytest.raises(errors.ConfigError, match="expected HTTPConfig"):
        merge_config(HTTPConfig, SSEConfig(), {})
    with pytest.raises(errors.ConfigError, match="bogus: not a field of HTTPConfig"):
        merge_config(HTTPConfig, None, {"bogus": 1})
    with pytest.raises(errors.ConfigError, match="retry_delay"):
        merge_config(HTTPConfig, base, {"retry_delay": -1})


def test_config_repr_hides_secrets() -> None:
    cfg = MQTTConfig(username="u", password="hunter2")
    assert "hunter2" not in repr(cfg) and "username='u'" in repr(cfg)
    cfg2 = WebSocketConfig(
        headers={"Authorization": "Bearer abc", "X-Trace": "t"},
        auth={"type": "bearer", "token": "abc"},
    )
    assert "abc" not in repr(cfg2) and "'X-Trace': 't'" in repr(cfg2)


def test_retry_config_derivation() -> None:
    assert HTTPConfig(max_retries=2, retry_delay=0.5).retry_config().max_retries == 2
    # Attempts count the first try of each outage; retries are the ones after it.
    assert WebSocketConfig(max_reconnect_attempts=7).retry_config().max_retries == 6
    assert SSEConfig(reconnect_delay=2).retry_config().retry_delay == 2


# -- security -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost."]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "localhost.evil.com",
        "evil-localhost",
        "10.0.0.1",
        "0.0.0.0",
        "example.com",
        "127.0.0.1.nip.io",
        "::ffff:10.0.0.1",
    ],
)
def test_not_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "ws://example.com/x", "mqtt://broker:1883", "http://localhost.evil.com"],
)
def test_plain_text_to_remote_refused(url: str) -> None:
    with pytest.raises(errors.SecurityError) as info:
        check_url(url)
    assert info.value.code == "ERR_SECURITY"
    check_url(url, allow_insecure=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "wss://x.org/ws",
        "mqtts://b:8883",
        "http://127.0.0.1:8/x",
        "ws://[::1]:9/",
        "http://localhost/",
    ],
)
def test_tls_or_loopback_allowed(url: str) -> None:
    check_url(url)


def test_scheme_and_host_required() -> None:
    with pytest.raises(errors.SecurityError, match="unsupported URL scheme 'ftp'"):
        check_url("ftp://127.0.0.1/x", schemes=frozenset({"http", "https"}))
    with pytest.raises(errors.SecurityError, match="no host"):
        check_url("http:///path")


def test_userinfo_never_in_error_message() -> None:
    with pytest.raises(errors.SecurityError) as info:
        check_url("mqtt://user:pa55word@broker.example.com:1883")
    assert "pa55word" not in str(info.value)


def test_check_endpoint_for_targets() -> None:
    check_endpoint(
        secure=False, host="localhost", allow_insecure=False, what="grpc localhost:50051"
    )
    check_endpoint(secure=True, host="api.example.com", allow_insecure=False, what="grpc")
    with pytest.raises(errors.SecurityError):
        check_endpoint(secure=False, host="api.example.com", allow_insecure=False, what="grpc")


def test_origins_and_credential_stripping() -> None:
    assert origin_of("https://a.com/x") == origin_of("https://A.com:443/y")
    assert origin_of("http://a.com") != origin_of("https://a.com")
    headers = {"Authorization": "x", "X-API-Key": "k", "Accept": "*/*", "X-Custom": "c"}
    strip_credentials(headers, ["x-custom"])
    assert headers == {"Accept": "*/*"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:pw-1@a.example/x?page=2", "https://bob:***@a.example/x?page=2"),
        ("https://tok-1@a.example/x", "https://***@a.example/x"),
        (
            "https://a.example/x?api_key=k-1&token=t-1&sig=s-1&X-Amz-Signature=z-1&q=ok",
            "https://a.example/x?api_key=***&token=***&sig=***&X-Amz-Signature=***&q=ok",
        ),
        (
            "https://a.example/cb#access_token=t-1&state=ok",
            "https://a.example/cb#access_token=***&state=ok",
        ),
        ("http://bob:pw-1@[::1", "http://bob:***@[::1"),
        ("https://a.example/x?page=2", "https://a.example/x?page=2"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_headers_and_credential_names() -> None:
    text = "GET https://bob:pw-1@a.example/?token=t-1 failed; sent Bearer abcdef123456"
    assert redact_text(text) == "GET https://bob:***@a.example/?token=*** failed; sent Bearer ***"
    assert redact_headers(
        {"Authorization": "Basic x", "Private-Token": "p", "X-Tenant": "t", "Accept": "a"},
        extra=["x-tenant"],
    ) == {"Authorization": "***", "Private-Token": "***", "X-Tenant": "***", "Accept": "a"}
    for name in ("Private-Token", "X-Goog-Api-Key", "X-Auth-Token", "X-Amz-Security-Token"):
        assert is_credential_header(name)
    for name in ("Accept", "Content-Type", "X-Trace", "User-Agent", "X-Request-Id"):
        assert not is_credential_header(name)
    assert is_credential_header("X-Tenant", ["x-TENANT"])


def test_redacting_filter_rewrites_third_party_records() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("GET", "https://a.example/?api_key=k-1"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: GET https://a.example/?api_key=***"
    headers = logging.LogRecord(
        "websockets.client",
        logging.DEBUG,
        __file__,
        1,
        "> Authorization: Bearer t-123456\n> Host: a",
        None,
        None,
    )
    RedactingFilter().filter(headers)
    assert "t-123456" not in headers.getMessage() and "Host: a" in headers.getMessage()


# -- codecs -------------------------------------------------------------------


def test_encode_rules() -> None:
    assert codecs.encode({"a": 1, "b": "é"}) == '{"a":1,"b":"é"}'
    assert codecs.encode([1, 2]) == "[1,2]"
    assert codecs.encode("hi") == "hi"
    assert codecs.encode(b"\x00\x01") == b"\x00\x01"
    assert codecs.encode(bytearray(b"ab")) == b"ab"
    assert codecs.encode_bytes({"x": 1}) == b'{"x":1}'
    with pytest.raises(errors.ProtocolError, match="cannot send a int"):
        codecs.encode(5)
    with pytest.raises(errors.ProtocolError, match="JSON"):
        codecs.encode({"x": object()})


def test_decode_rules() -> None:
    assert codecs.decode('{"a": 1}') == {"a": 1}
    assert codecs.decode(" [1]") == [1]
    assert codecs.decode("84") == "84"
    assert codecs.decode("{not json") == "{not json"
    assert codecs.decode(b"\xff") == b"\xff"
    assert codecs.decode(b"ab", "text") == "ab"
    assert codecs.decode("ab", "bytes") == b"ab"
    assert codecs.decode_payload(b'{"a":2}') == {"a": 2}
    assert codecs.decode_payload(b"\xff\xfe") == b"\xff\xfe"
    with pytest.raises(errors.ProtocolError, match="invalid JSON"):
        codecs.decode("nope", "json")
    with pytest.raises(errors.ProtocolError, match="UTF-8"):
        codecs.decode(b"\xff", "text")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values) | st.lists(json_values))
def test_json_round_trip(value: object) -> None:
    assert codecs.decode(codecs.encode(value)) == value


# -- retry --------------------------------------------------------------------


def test_backoff_delays() -> None:
    policy = RetryConfig(retry_delay=1, retry_backoff=2, max_delay=5, jitter=0)
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    jittery = RetryConfig(retry_delay=1, retry_backoff=1, jitter=0.5)
    rng = random.Random(1)
    delays = [backoff_delay(jittery, 1, rand=rng.random) for _ in range(200)]
    assert 0.5 <= min(delays) < 0.6 and 1.4 < max(delays) <= 1.5


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


async def test_retrying_stops_after_max_retries() -> None:
    calls = 0
    policy = RetryConfig(max_retries=2, retry_delay=0.001)
    with pytest.raises(errors.ConnectionError):
        async for attempt in retrying(
            policy, retry_if=lambda e: isinstance(e, errors.ConnectionError)
        ):
            with attempt:
                calls += 1
                raise errors.ConnectionError("down")
    assert calls == 3


async def test_retrying_does_not_retry_other_errors() -> None:
    calls = 0
    with pytest.raises(errors.AuthenticationError):
        async for attempt in retrying(
            RetryConfig(retry_delay=0), retry_if=lambda e: isinstance(e, errors.ConnectionError)
        ):
            with attempt:
                calls += 1
                raise errors.AuthenticationError("no")
    assert calls == 1


# -- events -------------------------------------------------------------------


async def test_emitter_sync_async_and_raising_handlers(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter(["message", "error"], logging.getLogger("test.events"))
    seen: list[object] = []

    @emitter.on("message")
    def sync_handler(data: object) -> None:
        seen.append(("sync", data))

    @emitter.on("message")
    async def async_handler(data: object) -> None:
        await asyncio.sleep(0)
        seen.append(("async", data))

    @emitter.on("message")
    def broken(data: object) -> None:
        raise RuntimeError("handler bug")

    errors_seen: list[BaseException] = []
    emitter.on("error", errors_seen.append)
    await emitter.emit("message", 1)
    await emitter.emit("message", 2)
    assert seen == [("sync", 1), ("async", 1), ("sync", 2), ("async", 2)]
    assert [str(e) for e in errors_seen] == ["handler bug", "handler bug"]
    assert "handler bug" in caplog.text
    with pytest.raises(ValueError, match="unknown event 'mesage'"):
        emitter.on("mesage")
    emitter.off("message", broken)
    assert emitter.has("message") and emitter.has("error")
    emitter.off("message", sync_handler)
    emitter.off("message", async_handler)
    assert not emitter.has("message")


async def test_raising_error_handler_does_not_recurse() -> None:
    emitter = EventEmitter(["message", "error"], logging.getLogger("test.events"))
    emitter.on("message", lambda d: 1 / 0)
    calls = []

    def bad_error_handler(exc: BaseException) -> None:
        calls.append(exc)
        raise RuntimeError("again")

    emitter.on("error", bad_error_handler)
    await emitter.emit("message", "x")
    assert len(calls) == 1


# -- health -------------------------------------------------------------------


async def test_run_probe_verdicts() -> None:
    async def ok() -> str:
        return "fine"

    async def hang() -> None:
        await asyncio.sleep(10)

    async def boom() -> None:
        raise errors.ConnectionError("refused")

    good = await run_probe(ok, timeout=1, what="t")
    assert good.is_healthy and good.detail == "fine"
    slow = await run_probe(hang, timeout=0.05, what="t")
    assert not slow.is_healthy and "no answer within 0.05s" in slow.detail and slow.latency_ms >= 50
    bad = await run_probe(boom, timeout=1, what="t")
    assert not bad.is_healthy and "ERR_CONNECTION" in bad.detail


# -- errors and exports ------------------------------------------------------


def test_error_codes_are_stable() -> None:
    assert {
        cls.__name__: cls.code
        for cls in (
            errors.SecurityError,
            errors.TimeoutError,
            errors.ConnectionError,
            errors.AuthenticationError,
            errors.ProtocolError,
            errors.RemoteError,
            errors.ClosedError,
            errors.QueueFullError,
            errors.PoolTimeoutError,
        )
    } == {
        "SecurityError": "ERR_SECURITY",
        "TimeoutError": "ERR_TIMEOUT",
        "ConnectionError": "ERR_CONNECTION",
        "AuthenticationError": "ERR_AUTH",
        "ProtocolError": "ERR_PROTOCOL",
        "RemoteError": "ERR_REMOTE",
        "ClosedError": "ERR_CLOSED",
        "QueueFullError": "ERR_QUEUE_FULL",
        "PoolTimeoutError": "ERR_TIMEOUT",
    }
    assert issubclass(errors.TimeoutError, TimeoutError)
    assert issubclass(errors.ConnectionError, ConnectionError)
    assert str(errors.RemoteError("boom", remote_code=-32601)) == "[ERR_REMOTE] boom"


DOCUMENTED = {
    "HTTPClient",
    "HTTPConfig",
    "HTTPResponse",
    "WebSocketClient",
    "WebSocketConfig",
    "SSEClient",
    "SSEConfig",
    "SSEEvent",
    "MQTTClient",
    "MQTTConfig",
    "MQTTMessage",
    "GRPCClient",
    "GRPCConfig",
    "generate_grpc_client",
    "STDIOClient",
    "STDIOConfig",
    "ConnectionPool",
    "ConnectionManager",
    "HealthStatus",
    "RetryConfig",
    "OAuth2Auth",
    "BearerAuth",
    "BasicAuth",
    "APIKeyAuth",
    "CommunicationError",
}


def test_exported_members() -> None:
    assert set(comm.__all__) >= DOCUMENTED
    for name in comm.__all__:
        assert getattr(comm, name) is not None, name


# -- codecs: orjson when installed, json's output and errors -------------------------

_json_reference = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # NaN, +-Infinity, 1e-05, 1e+16 ...
    | st.text(),  # control characters, lone surrogates, U+2028
    lambda children: (
        st.lists(children)
        | st.dictionaries(st.text(), children)
        | st.dictionaries(st.integers() | st.booleans() | st.none() | st.floats(), children)
    ),
    max_leaves=25,
)


@given(any_json)
def test_dumps_writes_exactly_what_json_writes(value: object) -> None:
    assert codecs.dumps(value) == _json_reference.encode(value)


@given(any_json)
def test_loads_reads_exactly_what_json_reads(value: object) -> None:
    text = _json_reference.encode(value)
    # Compared as json text, so NaN equals NaN and 1 is not 1.0.
    for data in (text, text.encode("utf-8", "surrogatepass")):
        try:
            expected = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            with pytest.raises(errors.ProtocolError):
                codecs.loads(data)
            continue
        assert _json_reference.encode(codecs.loads(data)) == _json_reference.encode(expected)


def test_orjson_is_the_engine_when_installed() -> None:
    pytest.importorskip("orjson")
    assert codecs._orjson is not None


def test_ids_that_look_like_exponents_stay_on_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    # UUIDs and hex ids hold "<digit>e" nearly always; only numbers may send a message to json.
    pytest.importorskip("orjson")
    slow: list[object] = []
    monkeypatch.setattr(codecs, "_json_dumps", lambda value: slow.append(value) or "slow")
    ids = {"id": "3f2e4e1f-1e23-4e5a-9e0e-0e0e0e0e0e0e", "trace": "0e1e2e", "n": [1, 2.5]}
    assert codecs.dumps(ids) == json.dumps(ids, separators=(",", ":"))
    assert codecs.dumps({"x": 1e16}) == "slow"
    assert codecs.dumps([-2.5e-7]) == "slow"
    assert codecs.dumps(3e20) == "slow"
    assert len(slow) == 3


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"x": float("nan"), "y": None}, '{"x":NaN,"y":null}'),
        ([float("inf"), float("-inf")], "[Infinity,-Infinity]"),
        ([1e16, 1e-7, 1.5e-05, 0.0001], "[1e+16,1e-07,1.5e-05,0.0001]"),
        (
            {"big": 2**64, "small": -(2**63) - 1},
            '{"big":18446744073709551616,"small":-9223372036854775809}',
        ),
        ({1: "a", None: "b", False: "c", 1.5: "d"}, '{"1":"a","null":"b","false":"c","1.5":"d"}'),
        ({"é": "\u2028\x7f\x00"}, '{"é":"\u2028\x7f\\u0000"}'),
        ("\ud800", '"\ud800"'),
        (("t", 1), '["t",1]'),
    ],
)
def test_dumps_values_orjson_writes_differently(value: object, text: str) -> None:
    assert codecs.dumps(value) == text


@pytest.mark.parametrize(
    ("text", "value_text"),
    [
        (
            "[18446744073709551616,-9223372036854775809]",
            "[18446744073709551616,-9223372036854775809]",
        ),
        ("[NaN,Infinity,-Infinity,1e400]", "[NaN,Infinity,-Infinity,Infinity]"),
        ('["\\ud800"]', '["\ud800"]'),
    ],
)
def test_loads_values_orjson_reads_differently(text: str, value_text: str) -> None:
    assert _json_reference.encode(codecs.loads(text)) == value_text
    assert _json_reference.encode(codecs.decode(text)) == value_text


def test_what_json_cannot_encode_is_the_same_protocol_error() -> None:
    with pytest.raises(errors.ProtocolError) as caught:
        codecs.dumps({("a", "b"): 1})
    assert caught.value.message == (
        "cannot encode message as JSON: keys must be str, int, float, bool or None, not tuple"
    )
    for value, named in (
        (object(), "object"),
        (datetime.date(2026, 1, 1), "date"),
        ({1, 2}, "set"),
    ):
        with pytest.raises(
            errors.ProtocolError, match=f"Object of type {named} is not JSON serializable"
        ):
            codecs.dumps({"x": value})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(errors.ProtocolError, match="Circular reference detected"):
        codecs.dumps(loop)


def test_json_nested_too_deeply_is_a_protocol_error_both_ways() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(errors.ProtocolError, match="nested too deeply"):
        codecs.dumps(deep)
    text = "[" * 100_000 + "]" * 100_000
    for data in (text, text.encode()):
        with pytest.raises(errors.ProtocolError, match="nested too deeply"):
            codecs.loads(data)
    with pytest.raises(errors.ProtocolError, match="nested too deeply"):
        codecs.decode(text)
    wide = [{"a": [1]}] * 600  # as many brackets, but flat: decoded as always
    assert codecs.loads(json.dumps(wide)) == wide == codecs.decode(json.dumps(wide))


def test_invalid_json_keeps_the_standard_librarys_message() -> None:
    with pytest.raises(errors.ProtocolError) as caught:
        codecs.loads("[1,]")
    assert caught.value.message == "invalid JSON: Expecting value: line 1 column 4 (char 3)"
    with pytest.raises(errors.ProtocolError, match="invalid JSON: 'utf-8' codec can't decode"):
        codecs.loads(b'["\xff"]')
    assert codecs.decode("[1,]") == "[1,]"
