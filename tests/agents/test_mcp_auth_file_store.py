"""FileTokenStore: MCP tokens in a private JSON file, written atomically, shared by processes.

The end-to-end test runs MCP authorization against the official SDK's
authorization and resource server (tests/servers/mcp_auth_server.py): a
second client, with a new store on the same file (a new run of a CLI), needs
neither the user nor a new registration.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agenticaiframework.communication import FileTokenStore, MCPClient, MCPOAuth, TokenStore
from agenticaiframework.communication.agents.mcp.auth import ClientInfo, OAuthTokens
from agenticaiframework.communication.core import errors
from tests.agents.test_mcp_auth import AuthServer

ROOT = Path(__file__).resolve().parents[2]
TOKENS = OAuthTokens(
    access_token="at-secret-access",
    refresh_token="rt-secret-refresh",
    expires_at=1_900_000_000.5,
    scope="mcp extra",
    issuer="https://as.example",
)
CLIENT = ClientInfo(
    client_id="client-1",
    client_secret="cs-secret-client",
    auth_method="client_secret_basic",
    redirect_uris=("http://127.0.0.1:8765/callback",),
    issuer="https://as.example",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_round_trip_in_a_private_file_created_with_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "tokens.json"
    store = FileTokenStore(path)
    assert isinstance(store, TokenStore)
    assert await store.get_tokens("https://mcp.example/mcp") is None  # no file yet: empty
    assert not path.exists()
    await store.set_tokens("https://mcp.example/mcp", TOKENS)
    await store.set_client("https://as.example", CLIENT)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    # Another store on the same file (the next run) reads the same values.
    again = FileTokenStore(str(path))
    assert await again.get_tokens("https://mcp.example/mcp") == TOKENS
    assert await again.get_client("https://as.example") == CLIENT
    assert await again.get_client("https://other.example") is None
    await again.set_tokens("https://mcp.example/mcp", None)
    assert await store.get_tokens("https://mcp.example/mcp") is None
    assert await store.get_client("https://as.example") == CLIENT
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == [
        "tokens.json"
    ]  # no temporary file left behind
    shown = repr(store)
    assert "tokens.json" in shown and "secret" not in shown


async def test_concurrent_processes_lose_no_entry_and_readers_never_see_half_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.json"
    writer = (
        "import asyncio, sys\n"
        "from agenticaiframework.communication.agents.mcp.auth import OAuthTokens\n"
        "from agenticaiframework.communication.agents.mcp.auth.file_store import FileTokenStore\n"
        "async def main():\n"
        "    store = FileTokenStore(sys.argv[1])\n"
        "    for i in range(15):\n"
        "        token = OAuthTokens(access_token='x' * 2000 + str(i))\n"
        "        await store.set_tokens(f'https://mcp{sys.argv[2]}.example/{i}', token)\n"
        "asyncio.run(main())\n"
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", writer, str(path), str(n), cwd=ROOT, env=dict(os.environ)
        )
        for n in range(6)
    ]
    waits = asyncio.gather(*(child.wait() for child in children))
    reader = FileTokenStore(path)
    reads = 0
    while not waits.done():
        await reader.get_tokens("https://mcp0.example/0")  # never a partial file
        reads += 1
        await asyncio.sleep(0.005)
    assert await waits == [0] * 6
    data = json.loads(path.read_text())
    assert len(data["tokens"]) == 6 * 15  # every process's every entry kept
    assert reads > 0 and mode(path) == 0o600


async def test_a_file_open_to_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    await store.set_tokens("https://mcp.example/mcp", TOKENS)
    path.chmod(0o644)
    with pytest.raises(errors.SecurityError) as info:
        await store.get_tokens("https://mcp.example/mcp")
    assert str(path) in info.value.message and "0644" in info.value.message
    with pytest.raises(errors.SecurityError):
        await store.set_client("https://as.example", CLIENT)
    assert "secret" not in path.read_text().replace("secret-access", "").replace(
        "secret-refresh", ""
    )  # the refused write changed nothing
    path.chmod(0o600)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(errors.SecurityError, match="directory"):
        await FileTokenStore(shared / "tokens.json").set_tokens("https://m.example/", TOKENS)
    assert not (shared / "tokens.json").exists()


async def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"version": 1, "tokens": {}, "clients": {}}')
    target.chmod(0o600)
    link = tmp_path / "tokens.json"
    link.symlink_to(target)
    with pytest.raises(errors.ConfigError, match="cannot open"):
        await FileTokenStore(link).get_tokens("https://mcp.example/mcp")


async def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    os.mkfifo(path, 0o600)
    with pytest.raises(errors.ConfigError, match="not a regular file"):
        await asyncio.wait_for(FileTokenStore(path).get_tokens("r"), 10)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'{"version": 7, "tokens": {}}', "not a token file"),
        (b'{"version": 1, "tokens": []}', "not a token file"),
        (b'{"version": 1, "tokens": {"r": {"access_token": 12}}}', "damaged"),
        (b'{"version": 1, "tokens": {"r": {"access_token": "a", "x": 1}}}', "damaged"),
        (b'{"version": 1, "tokens": {"r": "at-1"}}', "damaged"),
        (b" " * (1024 * 1024 + 10), "larger than"),
    ],
    ids=["syntax", "utf8", "deep", "version", "shape", "type", "field", "entry", "huge"],
)
async def test_a_damaged_file_is_a_config_error_naming_it(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(errors.ConfigError) as info:
        await FileTokenStore(path).get_tokens("r")
    assert str(path) in info.value.message and reason in info.value.message
    assert "at-1" not in info.value.message


async def test_a_path_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = FileTokenStore(blocker / "tokens.json")  # its "directory" is a file
    with pytest.raises(errors.ConfigError, match="cannot write"):
        await store.set_tokens("https://mcp.example/mcp", TOKENS)
    with pytest.raises(errors.ConfigError):
        FileTokenStore("")


@pytest.fixture(scope="module")
def server() -> Iterator[AuthServer]:
    auth_server = AuthServer()
    try:
        yield auth_server
    finally:
        auth_server.stop()


async def test_a_second_run_reuses_the_file_without_the_user_or_a_registration(
    server: AuthServer, tmp_path: Path
) -> None:
    path = tmp_path / "agentcomm" / "mcp-tokens.json"
    visits: list[str] = []

    async def browser(url: str) -> str:  # the user, headless: consent redirects at once
        visits.append(url)
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    before = await server.stats()
    for _ in range(2):  # two runs: a new store and a new MCPOAuth each
        oauth = MCPOAuth(authorize=browser, store=FileTokenStore(path))
        async with MCPClient(server.url, auth=oauth) as mcp:
            result = await mcp.call_tool("add", {"a": 1, "b": 2})
            assert result["structuredContent"] == {"result": 3}
    assert len(visits) == 1
    after = await server.stats()
    assert len(after["registered"]) - len(before["registered"]) == 1
    assert len(after["authorize"]) - len(before["authorize"]) == 1
    data = json.loads(path.read_text())
    assert list(data["tokens"]) == [server.url]
    assert list(data["clients"]) == [server.base]
    assert mode(path) == 0o600
