"""MCPClient over HTTP reports the failure that really happened, in our error hierarchy.

The failure comes from an auth object of the user's (our ``Auth`` with its own
``headers()``) that asks a local token agent on loopback for each request's
token, as a credential helper does. The agent is a real TCP server of the
test's that, on command, resets the connection, closes it mid-request,
stalls, or is gone (refused). Whatever that code raises must reach the caller
as the matching error of ours (never "the client was closed", never a hang),
and the client stays usable once the agent is back.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from agenticaiframework.communication.agents.mcp import MCPClient
from agenticaiframework.communication.core import errors
from agenticaiframework.communication.core.auth import Auth
from tests.servers.mcp_hostile import HostileState, make_app
from tests.servers.uvicorn_server import serve_asgi

_ENDPOINT_EVENT = b"event: endpoint\ndata: /mcp-legacy-post\n\n"


class TokenAgent:
    """A loopback token agent: one line in, one token line out, per connection.

    ``ok_left`` connections are answered; after that each connection gets
    ``fault``: ``"reset"`` (TCP RST), ``"close"`` (closed before the answer),
    ``"stall"`` (never answers). ``stop()`` closes the listener (refused).
    """

    def __init__(self) -> None:
        self.ok_left = 1_000_000
        self.fault = "reset"
        self.port = 0
        self.served = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await reader.readline()
            if self.ok_left > 0:
                self.ok_left -= 1
                self.served += 1
                writer.write(b"agent-token\n")
                await writer.drain()
            elif self.fault == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            elif self.fault == "stall":
                await reader.read()  # until the client gives up
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class AgentAuth(Auth):
    """The user's auth: a Bearer token from the local agent for every request."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def headers(self) -> dict[str, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"token please\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readuntil(b"\n"), 1.0)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        return {"Authorization": f"Bearer {line.decode().strip()}"}


@pytest.fixture
async def agent() -> AsyncIterator[TokenAgent]:
    token_agent = TokenAgent()
    await token_agent.start()
    try:
        yield token_agent
    finally:
        await token_agent.stop()


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[str, HostileState]]:
    state = HostileState()
    async with serve_asgi(make_app(state)) as base:
        yield base, state


# fault -> (error the caller gets, its code, the cause's type named in the message)
FAULTS = {
    "reset": (errors.ConnectionError, "ERR_CONNECTION", "ConnectionResetError"),
    "close": (errors.ConnectionError, "ERR_CONNECTION", "IncompleteReadError"),
    "refused": (errors.ConnectionError, "ERR_CONNECTION", "ConnectionRefusedError"),
    "stall": (errors.TimeoutError, "ERR_TIMEOUT", "TimeoutError"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_failing_auth_is_reported_as_what_happened_and_the_client_recovers(
    hostile: tuple[str, HostileState], agent: TokenAgent, fault: str
) -> None:
    base, _ = hostile
    kind, code, cause = FAULTS[fault]
    async with MCPClient(f"{base}/mcp", auth=AgentAuth(agent.port)) as mcp:
        await mcp.ping()
        agent.ok_left = 0
        agent.fault = fault
        port = agent.port
        if fault == "refused":
            await agent.stop()
        with pytest.raises(errors.CommunicationError) as info:
            await mcp.call_tool("add", {"a": 1, "b": 2}, timeout=20)
        error = info.value
        assert type(error) is kind, repr(error)
        assert error.code == code
        assert "closed" not in error.message
        assert error.message.startswith("tools/call:"), error.message
        assert cause in error.message, error.message
        assert type(error.__cause__).__name__ == cause
        # The agent is back: the same client goes on (it was never closed).
        if fault == "refused":
            agent.port = port
            await agent.start()
        agent.ok_left = 1_000_000
        assert await mcp.call_tool("add", {"a": 1, "b": 2}, timeout=20) == {}


async def test_closing_with_a_failing_auth_does_not_raise(
    hostile: tuple[str, HostileState], agent: TokenAgent
) -> None:
    base, state = hostile
    deletes = sum(1 for verb, _, _ in state.seen if verb == "DELETE")
    mcp = MCPClient(f"{base}/mcp", auth=AgentAuth(agent.port))
    async with mcp:
        await mcp.ping()
        agent.ok_left = 0  # the DELETE of close() cannot get a token
    # close() finished quietly: the DELETE never reached the server, the client is closed.
    assert sum(1 for verb, _, _ in state.seen if verb == "DELETE") == deletes
    with pytest.raises(errors.ClosedError):
        await mcp.ping()


async def test_legacy_sse_stream_with_a_failing_auth_fails_at_once_with_the_cause(
    hostile: tuple[str, HostileState], agent: TokenAgent
) -> None:
    base, state = hostile
    state.legacy_events = _ENDPOINT_EVENT
    agent.ok_left = 1  # the POST of initialize (answered 405); the GET of the stream fails
    agent.fault = "reset"
    mcp = MCPClient(f"{base}/old", auth=AgentAuth(agent.port), timeout=20)
    with pytest.raises(errors.ConnectionError) as info:
        await asyncio.wait_for(mcp.connect(), 15)  # not the 30 s wait for an endpoint event
    assert "ConnectionResetError" in info.value.message
    assert type(info.value.__cause__) is ConnectionResetError
    await mcp.close()
