"""Agent discovery: AID record parsing, DNS lookups against a real loopback DNS server, connect_agent."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import dns.asyncresolver
import pytest
import trustme

from agenticaiframework.communication import (
    CommunicationError,
    ConfigError,
    HTTPClient,
    SecurityError,
)
from agenticaiframework.communication.agents.discovery import (
    AgentRecord,
    DiscoveryError,
    DiscoverySecurityError,
    connect_agent,
    discover,
    local_command,
    parse_record,
)
from agenticaiframework.communication.core.lifecycle import ClientState
from tests.servers.dns_server import DNSServer, serve_dns
from tests.servers.http_app import make_app
from tests.servers.uvicorn_server import serve_asgi

PROPOSAL_TXT = "v=aid1;p=websocket;uri=wss://events.example.com/stream;desc=Real-time Agent Feed"
PKA_V2 = "A" * 43  # unpadded base64url of 32 zero bytes


def _has(module: str) -> bool:
    return importlib.util.find_spec(f"agenticaiframework.communication.{module}") is not None


# --------------------------------------------------------------------------
# Parsing (no I/O)
# --------------------------------------------------------------------------


def test_parses_the_proposal_example() -> None:
    record = parse_record(PROPOSAL_TXT)
    assert record == AgentRecord(
        v="aid1",
        proto="websocket",
        uri="wss://events.example.com/stream",
        desc="Real-time Agent Feed",
    )
    assert parse_record(record.to_txt()) == record


def test_short_keys_map_to_full_names() -> None:
    record = parse_record(
        "v=aid1;u=https://api.example.com/mcp;p=mcp;s=Assistant;d=https://docs.example.com;"
        "a=pat;e=2030-01-01T00:00:00Z;k=zKEY;i=g1"
    )
    assert (record.uri, record.proto, record.desc, record.docs) == (
        "https://api.example.com/mcp",
        "mcp",
        "Assistant",
        "https://docs.example.com",
    )
    assert (record.auth, record.dep, record.pka, record.kid) == (
        "pat",
        "2030-01-01T00:00:00Z",
        "zKEY",
        "g1",
    )
    assert record.deprecation == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert not record.is_deprecated(dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert record.is_deprecated(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


def test_keys_case_insensitive_values_case_sensitive_and_whitespace() -> None:
    record = parse_record("  V=aid1 ; PROTO = mcp ;URI=https://a.example/X;; Unknown=kept-out ")
    assert (record.v, record.proto, record.uri) == ("aid1", "mcp", "https://a.example/X")
    with pytest.raises(DiscoveryError) as info:
        parse_record("v=AID1;p=mcp;uri=https://a.example")
    assert info.value.code == "ERR_INVALID_TXT"
    with pytest.raises(DiscoveryError) as info:
        parse_record("v=aid1;p=WebSocket;uri=wss://a.example")
    assert info.value.code == "ERR_UNSUPPORTED_PROTO"


def test_multi_string_record_is_joined() -> None:
    record = parse_record([b"v=aid1;p=mc", b"p;uri=https://a.exa", "mple/mcp"])
    assert (record.proto, record.uri) == ("mcp", "https://a.example/mcp")


def test_aid2_records() -> None:
    record = parse_record(f"v=aid2;p=a2a;u=https://a.example/.well-known/agent.json;k={PKA_V2}")
    assert (record.v, record.pka, record.kid) == ("aid2", PKA_V2, None)


@pytest.mark.parametrize(
    ("txt", "code", "needle"),
    [
        ("p=mcp;uri=https://a.example", "ERR_INVALID_TXT", "v"),
        ("v=aid1;p=mcp", "ERR_INVALID_TXT", "uri"),
        ("v=aid1;uri=https://a.example", "ERR_INVALID_TXT", "proto"),
        ("v=aid3;p=mcp;uri=https://a.example", "ERR_INVALID_TXT", "version"),
        ("v=aid1;p=smtp;uri=https://a.example", "ERR_UNSUPPORTED_PROTO", "smtp"),
        ("v=aid1;p=mcp;p=a2a;uri=https://a.example", "ERR_INVALID_TXT", "duplicate"),
        (
            "v=aid1;p=mcp;uri=https://a.example;URI=https://b.example",
            "ERR_INVALID_TXT",
            "duplicate",
        ),
        ("v=aid1;proto=mcp;p=mcp;uri=https://a.example", "ERR_INVALID_TXT", "both"),
        ("v=aid1;p=mcp;u=https://a.example;uri=https://a.example", "ERR_INVALID_TXT", "both"),
        ("v=aid1;p=mcp;uri=https://a.example;junk", "ERR_INVALID_TXT", "junk"),
        ("v=aid1;p=mcp;uri=", "ERR_INVALID_TXT", "empty"),
        ("v=aid1;p=mcp;uri=http://a.example", "ERR_INVALID_TXT", "https"),
        ("v=aid1;p=mcp;uri=https://", "ERR_INVALID_TXT", "invalid"),
        ("v=aid1;p=mcp;uri=https://a.example;a=password", "ERR_INVALID_TXT", "auth"),
        ("v=aid1;p=mcp;uri=https://a.example;s=" + "x" * 61, "ERR_INVALID_TXT", "60"),
        ("v=aid1;p=mcp;uri=https://a.example;d=http://docs.example", "ERR_INVALID_TXT", "docs"),
        ("v=aid1;p=mcp;uri=https://a.example;e=2030-01-01", "ERR_INVALID_TXT", "dep"),
        ("v=aid1;p=mcp;uri=https://a.example;k=zKEY", "ERR_INVALID_TXT", "kid"),
        (f"v=aid2;p=mcp;uri=https://a.example;k={PKA_V2};i=g1", "ERR_INVALID_TXT", "kid"),
        ("v=aid2;p=mcp;uri=https://a.example;k=shortkey", "ERR_INVALID_TXT", "32 bytes"),
        ("v=aid2;p=mcp;uri=https://a.example;k=a+b/", "ERR_INVALID_TXT", "base64url"),
        ("v=aid1;p=local;uri=curl:https://evil.example/x.sh", "ERR_INVALID_TXT", "local"),
        ("v=aid1;p=zeroconf;uri=https://a.example", "ERR_INVALID_TXT", "zeroconf"),
    ],
)
def test_malformed_records_are_rejected(txt: str, code: str, needle: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_record(txt)
    assert info.value.code == code
    assert needle in str(info.value)
    assert isinstance(info.value, CommunicationError)
    assert not isinstance(info.value, SecurityError)


@pytest.mark.parametrize(
    "uri",
    [
        "ws://127.0.0.1:8080/feed",
        "ws://localhost/feed",
        "ws://events.example.com",
        "https://a.example",
    ],
)
def test_websocket_record_without_wss_is_a_security_error(uri: str) -> None:
    with pytest.raises(SecurityError) as info:
        parse_record(f"v=aid1;p=websocket;uri={uri}")
    assert info.value.code == "ERR_SECURITY"
    assert isinstance(info.value, DiscoveryError)
    assert info.value.aid_code == 1003


def test_error_codes_and_numbers() -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_record("v=aid1;p=nope;u=https://a.example")
    assert info.value.aid_code == 1002
    assert str(info.value).startswith("[ERR_UNSUPPORTED_PROTO] ")
    with pytest.raises(ValueError, match="AID error name"):
        DiscoveryError("x", code="ERR_WHATEVER")


def test_local_command_mapping_and_injection() -> None:
    assert local_command("docker:myorg/agent:latest") == [
        "docker",
        "run",
        "--rm",
        "-i",
        "myorg/agent:latest",
    ]
    assert local_command("npx:@myorg/agent-cli") == ["npx", "-y", "@myorg/agent-cli"]
    assert local_command("pip:my-agent") == ["pipx", "run", "my-agent"]
    for bad in ("npx:--yes", "docker:img; rm -rf /", "pip:"):
        with pytest.raises(DiscoverySecurityError):
            local_command(bad)
    with pytest.raises(DiscoveryError) as info:
        local_command("https://a.example")
    assert info.value.code == "ERR_INVALID_TXT"


# --------------------------------------------------------------------------
# DNS against a real server on loopback
# --------------------------------------------------------------------------


@pytest.fixture
async def dns_server() -> AsyncIterator[DNSServer]:
    async with serve_dns() as server:
        yield server


async def _discover(server: DNSServer, domain: str, protocol: str | None = None) -> AgentRecord:
    return await discover(
        domain, protocol=protocol, nameservers=["127.0.0.1"], port=server.port, timeout=2.0
    )


async def test_discover_reads_the_txt_record(dns_server: DNSServer) -> None:
    dns_server.set_txt("_agent.example.com", PROPOSAL_TXT, ttl=600)
    record = await _discover(dns_server, "example.com")
    assert (record.proto, record.uri, record.desc) == (
        "websocket",
        "wss://events.example.com/stream",
        "Real-time Agent Feed",
    )
    assert (record.ttl, record.name) == (600, "_agent.example.com")
    assert dns_server.names_queried() == ["_agent.example.com"]


async def test_discover_joins_a_multi_string_record(dns_server: DNSServer) -> None:
    dns_server.set_txt(
        "_agent.split.test", ["v=aid1;p=m", "cp;u=https://api.split.test/m", "cp;s=Split"]
    )
    record = await _discover(dns_server, "split.test.")
    assert (record.proto, record.uri, record.desc) == ("mcp", "https://api.split.test/mcp", "Split")


async def test_discover_large_record_falls_back_to_tcp(dns_server: DNSServer) -> None:
    pieces = ["v=aid1;p=mcp;u=https://big.test/mcp;"] + [f"x{i}={'y' * 200};" for i in range(4)]
    dns_server.set_txt("_agent.big.test", pieces)
    record = await _discover(dns_server, "big.test")
    assert record.uri == "https://big.test/mcp"
    assert ("tcp", "_agent.big.test") in dns_server.queries


async def test_missing_record_is_err_no_record(dns_server: DNSServer) -> None:
    with pytest.raises(DiscoveryError) as info:
        await _discover(dns_server, "missing.test")
    assert info.value.code == "ERR_NO_RECORD"
    assert info.value.aid_code == 1000
    dns_server.set_behaviour("_agent.nodata.test", "nodata")
    with pytest.raises(DiscoveryError) as info:
        await _discover(dns_server, "nodata.test")
    assert info.value.code == "ERR_NO_RECORD"


@pytest.mark.parametrize(
    ("txt", "code"),
    [
        ("v=aid1;uri=https://a.test", "ERR_INVALID_TXT"),
        ("v=aid1;p=mcp;p=mcp;uri=https://a.test", "ERR_INVALID_TXT"),
        ("v=aid1;p=carrier-pigeon;uri=https://a.test", "ERR_UNSUPPORTED_PROTO"),
        ("v=aid1;p=websocket;uri=ws://127.0.0.1:9/feed", "ERR_SECURITY"),
    ],
)
async def test_malformed_dns_records(dns_server: DNSServer, txt: str, code: str) -> None:
    dns_server.set_txt("_agent.bad.test", txt)
    with pytest.raises(DiscoveryError) as info:
        await _discover(dns_server, "bad.test")
    assert info.value.code == code
    assert isinstance(info.value, SecurityError) == (code == "ERR_SECURITY")


async def test_invalid_records_beside_one_valid_are_skipped(dns_server: DNSServer) -> None:
    dns_server.set_txt(
        "_agent.mixed.test",
        "google-site-verification=abc",
        "v=aid1;p=a2a;u=https://mixed.test/card",
        b"\xff\xfe",
    )
    record = await _discover(dns_server, "mixed.test")
    assert record.proto == "a2a"


async def test_two_valid_records_are_ambiguous(dns_server: DNSServer) -> None:
    dns_server.set_txt(
        "_agent.two.test", "v=aid1;p=mcp;u=https://two.test/a", "v=aid1;p=mcp;u=https://two.test/b"
    )
    with pytest.raises(DiscoveryError) as info:
        await _discover(dns_server, "two.test")
    assert info.value.code == "ERR_INVALID_TXT"
    assert "exactly one" in str(info.value)


async def test_protocol_specific_names(dns_server: DNSServer) -> None:
    dns_server.set_txt("_agent.multi.test", "v=aid1;p=mcp;u=https://multi.test/mcp")
    dns_server.set_txt("_agent._websocket.multi.test", "v=aid1;p=websocket;u=wss://multi.test/ws")
    record = await _discover(dns_server, "multi.test", protocol="websocket")
    assert (record.proto, record.name) == ("websocket", "_agent._websocket.multi.test")
    assert dns_server.names_queried() == ["_agent.multi.test", "_agent._websocket.multi.test"]

    dns_server.clear()
    dns_server.set_txt("_agent.multi.test", "v=aid1;p=mcp;u=https://multi.test/mcp")
    record = await _discover(dns_server, "multi.test", protocol="grpc")
    assert record.proto == "mcp"  # the base record is the last resort
    assert dns_server.names_queried() == [
        "_agent.multi.test",
        "_agent._grpc.multi.test",
        "_agent.grpc.multi.test",
    ]


async def test_servfail_and_silence_are_lookup_failures(dns_server: DNSServer) -> None:
    dns_server.set_behaviour("_agent.broken.test", "servfail")
    with pytest.raises(DiscoveryError) as info:
        await _discover(dns_server, "broken.test")
    assert info.value.code == "ERR_DNS_LOOKUP_FAILED"
    dns_server.set_behaviour("_agent.silent.test", "silent")
    with pytest.raises(DiscoveryError) as info:
        await discover("silent.test", nameservers=["127.0.0.1"], port=dns_server.port, timeout=0.3)
    assert info.value.code == "ERR_DNS_LOOKUP_FAILED"
    assert info.value.aid_code == 1004


async def test_idn_domain_is_queried_in_ascii(dns_server: DNSServer) -> None:
    dns_server.set_txt(
        "_agent.xn--bcher-kva.test", "v=aid1;p=openapi;u=https://xn--bcher-kva.test/openapi.json"
    )
    record = await _discover(dns_server, "bücher.test")
    assert record.proto == "openapi"


async def test_custom_resolver_and_bad_arguments(dns_server: DNSServer) -> None:
    dns_server.set_txt("_agent.res.test", "v=aid1;p=mcp;u=https://res.test/mcp")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_server.port
    assert (await discover("res.test", resolver=resolver)).uri == "https://res.test/mcp"
    with pytest.raises(ConfigError, match="resolver"):
        await discover("res.test", resolver=resolver, nameservers=["127.0.0.1"])
    with pytest.raises(ConfigError, match="domain"):
        await discover("", nameservers=["127.0.0.1"], port=dns_server.port)
    with pytest.raises(ConfigError, match="protocol"):
        await discover("res.test", protocol="smtp", nameservers=["127.0.0.1"], port=dns_server.port)
    with pytest.raises(ConfigError, match="timeout"):
        await discover("res.test", timeout=0, nameservers=["127.0.0.1"], port=dns_server.port)


# --------------------------------------------------------------------------
# connect_agent
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    base = tmp_path_factory.mktemp("tls")
    ca_path, cert_path, key_path = base / "ca.pem", base / "cert.pem", base / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    yield str(ca_path), str(cert_path), str(key_path)


@pytest.fixture
async def https_url(tls_files: tuple[str, str, str]) -> AsyncIterator[str]:
    _, cert_path, key_path = tls_files
    app, _state = make_app()
    async with serve_asgi(app, ssl_certfile=cert_path, ssl_keyfile=key_path) as url:
        yield url


async def test_connect_agent_from_dns_to_a_real_https_mcp_endpoint(
    dns_server: DNSServer, https_url: str, tls_files: tuple[str, str, str]
) -> None:
    dns_server.set_txt("_agent.agent.test", f"v=aid1;p=mcp;u={https_url}/echo;a=pat;s=Echo agent")
    client = await connect_agent(
        "agent.test", nameservers=["127.0.0.1"], port=dns_server.port, ca_certs=tls_files[0]
    )
    assert isinstance(client, HTTPClient)
    assert client.state is ClientState.UNOPENED
    assert client.base_url == f"{https_url}/echo"
    async with client:
        response = await client.post(
            f"{https_url}/echo", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert '"ping"' in response.json()["body"]


@pytest.mark.parametrize("proto", ["openapi", "a2a", "graphql", "ucp"])
async def test_http_protocols_give_an_http_client(proto: str) -> None:
    client = await connect_agent(
        AgentRecord(v="aid1", proto=proto, uri="https://api.example.com/x")
    )
    assert isinstance(client, HTTPClient)
    assert client.state is ClientState.UNOPENED
    await client.close()


async def test_connect_agent_takes_raw_txt_and_options() -> None:
    client = await connect_agent(
        "v=aid1;p=openapi;u=https://api.example.com/openapi.json", timeout_seconds=3.0
    )
    assert isinstance(client, HTTPClient)
    assert client.config.timeout_seconds == 3.0
    await client.close()


async def test_connect_agent_refuses_ws_records_even_built_by_hand() -> None:
    with pytest.raises(SecurityError) as info:
        await connect_agent("v=aid1;p=websocket;uri=ws://127.0.0.1:1/x")
    assert info.value.code == "ERR_SECURITY"
    with pytest.raises(SecurityError) as info:
        await connect_agent(AgentRecord(v="aid1", proto="websocket", uri="ws://localhost:1/x"))
    assert info.value.code == "ERR_SECURITY"


@pytest.mark.parametrize("proto", ["grpc", "mcp", "websocket"])
async def test_uri_with_a_port_out_of_range_is_err_invalid_txt(proto: str) -> None:
    scheme = "wss" if proto == "websocket" else "https"
    uri = f"{scheme}://agents.example.com:99999/x"
    with pytest.raises(DiscoveryError, match="uri") as parsed:
        parse_record(f"v=aid1;p={proto};u={uri}")
    with pytest.raises(DiscoveryError, match="uri") as built:
        await connect_agent(AgentRecord(v="aid1", proto=proto, uri=uri))
    for info in (parsed, built):
        assert info.value.code == "ERR_INVALID_TXT" and "65535" in str(info.value)


async def test_connect_agent_errors(dns_server: DNSServer) -> None:
    with pytest.raises(DiscoveryError) as info:
        await connect_agent(
            "nowhere.test", nameservers=["127.0.0.1"], port=dns_server.port, timeout=1.0
        )
    assert info.value.code == "ERR_NO_RECORD"
    with pytest.raises(DiscoveryError) as info:
        await connect_agent("v=aid1;p=zeroconf;u=zeroconf:_mcp._tcp")
    assert info.value.code == "ERR_UNSUPPORTED_PROTO"
    with pytest.raises(DiscoveryError) as info:
        await connect_agent(AgentRecord(v="aid1", proto="mcp", uri="http://127.0.0.1:1/mcp"))
    assert info.value.code == "ERR_INVALID_TXT"


async def test_local_records_need_consent() -> None:
    record = parse_record("v=aid1;p=local;u=npx:@myorg/agent;s=Local agent")
    with pytest.raises(SecurityError) as info:
        await connect_agent(record)
    assert info.value.code == "ERR_SECURITY"
    asked: list[tuple[AgentRecord, Sequence[str]]] = []

    async def refuse(rec: AgentRecord, argv: Sequence[str]) -> bool:
        asked.append((rec, argv))
        return False

    with pytest.raises(DiscoverySecurityError):
        await connect_agent(record, allow_local=refuse)
    assert asked == [(record, ["npx", "-y", "@myorg/agent"])]


_ECHO_SERVER = """
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" in msg:
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"echo": msg.get("method")}}), flush=True)
"""


@pytest.mark.skipif(not _has("stdio"), reason="STDIOClient not built yet")
async def test_local_record_with_consent_runs_a_stdio_client(tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(_ECHO_SERVER)
    record = parse_record("v=aid1;p=local;u=pip:my-agent")
    seen: list[Sequence[str]] = []

    def consent(rec: AgentRecord, argv: Sequence[str]) -> bool:
        seen.append(argv)
        return True

    client = await connect_agent(record, allow_local=consent, command=[sys.executable, str(script)])
    from agenticaiframework.communication.stdio.client import STDIOClient

    assert isinstance(client, STDIOClient)
    assert seen == [[sys.executable, str(script)]]
    assert client.state is ClientState.UNOPENED
    async with client:
        result = await client.request("ping", {})
    assert result == {"echo": "ping"}


@pytest.mark.skipif(not _has("websocket"), reason="WebSocketClient not built yet")
async def test_websocket_record_opens_a_wss_client(
    dns_server: DNSServer, tls_files: tuple[str, str, str]
) -> None:
    import ssl

    from websockets.asyncio.server import ServerConnection, serve

    from agenticaiframework.communication.websocket.client import WebSocketClient

    ca_path, cert_path, key_path = tls_files
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert_path, key_path)

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0, ssl=server_ssl) as server:
        ws_port = server.sockets[0].getsockname()[1]
        dns_server.set_txt(
            "_agent.live.test", f"v=aid1;p=websocket;uri=wss://127.0.0.1:{ws_port}/feed;s=Live"
        )
        client = await connect_agent(
            "live.test", nameservers=["127.0.0.1"], port=dns_server.port, ca_certs=ca_path
        )
        assert isinstance(client, WebSocketClient)
        assert client.state is ClientState.UNOPENED
        async with client:
            await client.send({"hello": "agent"})
            async for message in client:
                assert message == {"hello": "agent"}
                break


@pytest.mark.skipif(not _has("grpc"), reason="GRPCClient not built yet")
async def test_grpc_record_opens_a_tls_grpc_client(
    dns_server: DNSServer, tls_files: tuple[str, str, str]
) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    from agenticaiframework.communication.grpc.client import GRPCClient

    ca_path, cert_path, key_path = tls_files
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    credentials = grpc.ssl_server_credentials(
        [(Path(key_path).read_bytes(), Path(cert_path).read_bytes())]
    )
    grpc_port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        dns_server.set_txt(
            "_agent.rpc.test", f"v=aid1;p=grpc;u=https://127.0.0.1:{grpc_port};a=mtls"
        )
        client = await connect_agent(
            "rpc.test", nameservers=["127.0.0.1"], port=dns_server.port, ca_certs=ca_path
        )
        assert isinstance(client, GRPCClient)
        assert client.target == f"127.0.0.1:{grpc_port}"
        assert client.state is ClientState.UNOPENED
        async with client:
            status = await client.health_check(timeout=5.0)
        assert status.is_healthy, status.detail
    finally:
        await server.stop(None)


async def test_bad_nameserver_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nameservers"):
        await discover("a.test", nameservers=["not an address"])
    with pytest.raises(ConfigError, match="nameservers"):
        await discover("a.test", nameservers=[])
