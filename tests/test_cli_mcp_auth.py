"""``agentcomm mcp URL`` against an MCP server that asks for authorization.

The server is the official SDK's authorization and resource server
(tests/servers/mcp_auth_server.py) in a child process. The user step is real:
``BROWSER`` names tests/servers/browser.py (through a small wrapper), which
``webbrowser`` runs with the authorization URL, as it runs a terminal
browser; it follows the consent redirect to the CLI's loopback callback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.agents.test_mcp_auth import AuthServer
from tests.test_cli import CLI, Result, assert_error

BROWSER = Path(__file__).resolve().parent / "servers" / "browser.py"
MACHINE_SECRET = "m4chine-s3cret-value"
TOKEN = re.compile(r"\b[ar]t-[A-Za-z0-9_-]{16,}")


@pytest.fixture(scope="module")
def server() -> Iterator[AuthServer]:
    auth_server = AuthServer("--client-credentials", f"machine:{MACHINE_SECRET}")
    try:
        yield auth_server
    finally:
        auth_server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment that makes our headless browser the user's, and its log."""
    program = tmp_path / "browser"
    program.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(BROWSER))} "$@"\n'
    )
    program.chmod(0o755)
    log = tmp_path / "visited"
    return {"BROWSER": str(program), "BROWSER_LOG": str(log)}, log


async def run(*args: str, env: dict[str, str], timeout: float = 45) -> Result:
    """Run ``agentcomm ARGS`` with ``env`` added, stdout and stderr piped."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_mcp_authorizes_through_the_browser_on_401(
    server: AuthServer, browser: tuple[dict[str, str], Path]
) -> None:
    env, log = browser
    before = len((await server.stats())["authorize"])
    listed, called = await asyncio.gather(
        run("mcp", server.url, env=env),
        run("mcp", server.url, "call", "add", "a=1", "b=2", env=env),
    )
    assert listed.returncode == 0, listed
    assert [tool["name"] for tool in listed.docs] == ["add"]
    assert called.returncode == 0, called
    assert called.docs[0]["structuredContent"] == {"result": 3}
    # Each run sent the user to the server's authorization endpoint once, with PKCE
    # and the resource, and the redirect came back to its own loopback listener.
    lines = log.read_text().splitlines()
    visited = [line for line in lines if not line.startswith("answered ")]
    assert len(visited) == 2, lines
    # The browser got the listener's page: the CLI served the redirect while the
    # browser was still running (webbrowser waits for a BROWSER program to exit).
    answers = [line for line in lines if line.startswith("answered ")]
    assert len(answers) == 2 and all("Authorization received" in a for a in answers), lines
    assert all(a.startswith("answered 200 ") for a in answers), lines
    for url in visited:
        assert url.startswith(f"{server.base}/authorize?"), url
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["resource"] == [server.url]
        assert urlsplit(query["redirect_uri"][0]).hostname == "127.0.0.1"
    stats = await server.stats()
    assert len(stats["authorize"]) - before == 2
    assert {t["grant"] for t in stats["token"][-2:]} == {"authorization_code"}
    for result in (listed, called):
        assert not TOKEN.search(result.stdout + result.stderr), result
        assert "Open this URL" not in result.stderr  # the browser took it


async def test_mcp_token_file_spares_the_browser_on_the_next_run(
    server: AuthServer, browser: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = browser
    token_file = tmp_path / "agentcomm" / "mcp-tokens.json"
    for _ in range(2):
        listed = await run("mcp", "--token-file", str(token_file), server.url, env=env)
        assert listed.returncode == 0, listed
        assert [tool["name"] for tool in listed.docs] == ["add"]
    visited = [line for line in log.read_text().splitlines() if not line.startswith("answered")]
    assert len(visited) == 1  # the second run used the file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["tokens"].keys() == {server.url}


async def test_mcp_client_credentials_need_no_browser(
    server: AuthServer, browser: tuple[dict[str, str], Path]
) -> None:
    env, log = browser
    flagged, from_env = await asyncio.gather(
        run(
            "mcp",
            "--client-id",
            "machine",
            "--client-secret",
            MACHINE_SECRET,
            server.url,
            "call",
            "add",
            "a=2",
            "b=3",
            env=env,
        ),
        run(
            "mcp",
            "--client-id",
            "machine",
            server.url,
            env={**env, "AGENTCOMM_MCP_CLIENT_SECRET": MACHINE_SECRET},
        ),
    )
    assert flagged.returncode == 0, flagged
    assert flagged.docs[0]["structuredContent"] == {"result": 5}
    assert from_env.returncode == 0, from_env
    assert [tool["name"] for tool in from_env.docs] == ["add"]
    assert not log.exists()  # no browser was opened
    grants = [t["grant"] for t in (await server.stats())["token"]]
    assert grants.count("client_credentials") >= 2
    for result in (flagged, from_env):
        assert MACHINE_SECRET not in result.stdout + result.stderr
        assert not TOKEN.search(result.stdout + result.stderr), result


async def test_mcp_without_auth_reports_the_401_and_bad_options_are_config_errors(
    server: AuthServer, browser: tuple[dict[str, str], Path]
) -> None:
    env, log = browser
    refused, secret_alone = await asyncio.gather(
        run("mcp", "--no-auth", server.url, env=env),
        run("mcp", "--client-secret", "x", server.url, env=env),
    )
    assert_error(refused, "ERR_AUTH")
    assert "requires authorization" in refused.stderr
    assert_error(secret_alone, "ERR_CONFIG")
    assert "client_id" in secret_alone.stderr
    assert not log.exists()
