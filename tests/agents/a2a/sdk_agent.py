"""A test A2A agent served by the official Python ``a2a-sdk`` (1.3): its JSON-RPC and REST apps.

The agent's behaviour is chosen by the first word of the user's text:

* ``hello ...`` - a direct Message reply (``Hello! You said: ...``), no task;
* ``task ...`` - a task: submitted -> working -> an artifact -> completed;
* ``chunks N [DELAY]`` - a task that appends N text chunks to one artifact,
  DELAY seconds apart (default 0), then completes;
* ``events N`` - a task that sends N status updates (working, with a
  message each) and completes (the benchmark's stream);
* ``wait`` - a task that works until canceled (or released by the test
  through ``AgentState.release``), then completes with an artifact;
* ``ask`` - a task that needs input (``input-required``); the next message on
  the same task completes it, echoing the answer;
* ``fail`` - a task that fails.

``serve_agent()`` runs it under uvicorn on 127.0.0.1 and a free port, with
the card at ``/.well-known/agent-card.json``, JSON-RPC at ``/a2a/jsonrpc``
and REST at ``/a2a/rest``; ``token=`` protects the two endpoints (not the
card) with a bearer token the card declares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from a2a.server.agent_execution.agent_executor import AgentExecutor
from a2a.server.agent_execution.context import RequestContext
from a2a.server.events.event_queue import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import (
    create_agent_card_routes,
    create_jsonrpc_routes,
    create_rest_routes,
)
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    APIKeySecurityScheme,
    ClientCredentialsOAuthFlow,
    HTTPAuthSecurityScheme,
    Message,
    OAuth2SecurityScheme,
    OAuthFlows,
    Part,
    Role,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from agenticaiframework.communication.testing.http import serve_asgi

__all__ = ["AgentState", "RunningAgent", "SDKAgentExecutor", "build_app", "serve_agent"]


@dataclass
class AgentState:
    """What the test can see and steer.

    Attributes:
        release: Set to let every ``wait`` task complete.
        started: Task ids whose work began (``wait`` and ``chunks``).
        headers: The headers of each A2A request (not the card's).
        paths: The path of each A2A request.
        failing_subscribes: Answer this many REST subscriptions with 503 first.
        card_requests: The headers of each agent card request.
        token_requests: Headers and form body of each OAuth2 token request.
        canceled: Task ids canceled.
    """

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    failing_subscribes: int = 0
    card_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    canceled: set[str] = field(default_factory=set)


def _text(value: str) -> Part:
    return Part(text=value)


class SDKAgentExecutor(AgentExecutor):
    """The test agent's logic (see the module docstring)."""

    def __init__(self, state: AgentState) -> None:
        self.state = state

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Cancel a task."""
        task_id = context.task_id or ""
        self.state.canceled.add(task_id)
        updater = TaskUpdater(event_queue, task_id, context.context_id or "")
        await updater.cancel()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Run one request."""
        text = context.get_user_input()
        words = text.split()
        verb = words[0].lower() if words else ""
        task_id = context.task_id or ""
        context_id = context.context_id or ""
        current = context.current_task
        if verb == "hello":
            await event_queue.enqueue_event(
                Message(
                    message_id=f"reply-{context.message.message_id if context.message else ''}",
                    role=Role.ROLE_AGENT,
                    parts=[_text(f"Hello! You said: {text}")],
                    context_id=context_id,
                )
            )
            return
        updater = TaskUpdater(event_queue, task_id, context_id)
        if current is not None and current.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            await updater.start_work()
            await updater.add_artifact([_text(f"answer: {text}")], name="answer")
            await updater.complete()
            return
        if current is None:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message] if context.message else [],
                )
            )
        if verb == "task":
            await updater.start_work(updater.new_agent_message([_text("working on it")]))
            await updater.add_artifact([_text("the result")], name="result", last_chunk=True)
            await updater.complete()
        elif verb == "chunks":
            count = int(words[1])
            delay = float(words[2]) if len(words) > 2 else 0.0
            await updater.start_work()
            self.state.started.append(task_id)
            for index in range(count):
                if task_id in self.state.canceled:
                    return
                await updater.add_artifact(
                    [_text(f"chunk {index};")],
                    artifact_id="stream",
                    name="stream",
                    append=index > 0,
                    last_chunk=index == count - 1,
                )
                if delay:
                    await asyncio.sleep(delay)
            await updater.complete()
        elif verb == "events":
            count = int(words[1])
            for index in range(count):
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING,
                    updater.new_agent_message([_text(f"step {index}")]),
                )
            await updater.complete()
        elif verb == "wait":
            await updater.start_work()
            self.state.started.append(task_id)
            waiter = asyncio.ensure_future(self.state.release.wait())
            while not waiter.done() and task_id not in self.state.canceled:
                await asyncio.wait({waiter}, timeout=0.02)
            waiter.cancel()
            if task_id in self.state.canceled:
                return
            await updater.add_artifact([_text("released")], name="result")
            await updater.complete()
        elif verb == "ask":
            await updater.requires_input(updater.new_agent_message([_text("what is your name?")]))
        elif verb == "fail":
            await updater.failed(updater.new_agent_message([_text("it went wrong")]))
        else:
            await updater.complete(updater.new_agent_message([_text(f"done: {text}")]))


def build_card(
    base: str, *, token: str | None = None, auth_kind: str = "bearer", streaming: bool = True
) -> AgentCard:
    """The agent card, JSON-RPC first, then REST; ``auth_kind``: bearer, apikey or oauth2."""
    card = AgentCard(
        name="SDK test agent",
        description="An a2a-sdk agent for the A2AClient tests.",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=streaming, push_notifications=False),
        default_input_modes=["text/plain", "application/json", "application/pdf", "image/png"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(id="echo", name="Echo", description="Echoes.", tags=["test"]),
        ],
        supported_interfaces=[
            AgentInterface(
                protocol_binding="JSONRPC", protocol_version="1.0", url=f"{base}/a2a/jsonrpc"
            ),
            AgentInterface(
                protocol_binding="HTTP+JSON", protocol_version="1.0", url=f"{base}/a2a/rest"
            ),
        ],
    )
    if token is not None:
        if auth_kind == "bearer":
            scheme = SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="Bearer")
            )
        elif auth_kind == "apikey":
            scheme = SecurityScheme(
                api_key_security_scheme=APIKeySecurityScheme(location="header", name="X-Agent-Key")
            )
        else:
            flow = ClientCredentialsOAuthFlow(
                token_url=f"{base}/oauth/token", scopes={"agent.use": "use the agent"}
            )
            scheme = SecurityScheme(
                oauth2_security_scheme=OAuth2SecurityScheme(
                    flows=OAuthFlows(client_credentials=flow)
                )
            )
        card.security_schemes[auth_kind].CopyFrom(scheme)
        requirement = SecurityRequirement()
        requirement.schemes[auth_kind].CopyFrom(
            StringList(list=["agent.use"] if auth_kind == "oauth2" else [])
        )
        card.security_requirements.append(requirement)
    return card


class _Guard:
    """Records the headers of A2A requests and checks the bearer token, when there is one."""

    def __init__(self, app: Any, state: AgentState, token: str | None, auth_kind: str) -> None:
        self.app = app
        self.state = state
        self.token = token
        self.auth_kind = auth_kind

    def _allowed(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        if self.auth_kind == "apikey":
            return headers.get("x-agent-key") == self.token
        return headers.get("authorization") == f"Bearer {self.token}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/oauth/token":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.state.token_requests.append((headers, body.decode()))
            response = JSONResponse(
                {"access_token": self.token, "token_type": "Bearer", "expires_in": 3600}
            )
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith("/.well-known/"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.state.card_requests.append(headers)
        if scope["type"] == "http" and scope["path"].startswith("/a2a/"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.state.headers.append(headers)
            self.state.paths.append(scope["path"])
            if self.state.failing_subscribes and scope["path"].endswith(":subscribe"):
                self.state.failing_subscribes -= 1
                await JSONResponse({"error": "restarting"}, status_code=503)(scope, receive, send)
                return
            if not self._allowed(headers):
                response = JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="a2a"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(
    base: str,
    state: AgentState,
    *,
    token: str | None = None,
    auth_kind: str = "bearer",
    streaming: bool = True,
) -> Any:
    """The ASGI app: card, JSON-RPC and REST routes over one request handler."""
    card = build_card(base, token=token, auth_kind=auth_kind, streaming=streaming)
    handler = DefaultRequestHandlerV2(
        agent_executor=SDKAgentExecutor(state),
        task_store=InMemoryTaskStore(),
        agent_card=card,
        validate_input_modes=True,
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url="/a2a/jsonrpc"),
        *create_rest_routes(handler, path_prefix="/a2a/rest"),
    ]
    return _Guard(Starlette(routes=routes), state, token, auth_kind)


class _Late:
    """An ASGI app set once the port is known (the card names the server's own URL)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class RunningAgent:
    """A served agent: its base URL and state.

    Attributes:
        url: The server's base URL.
        state: What the agent saw.
    """

    url: str
    state: AgentState
    _late: _Late
    _token: str | None
    _auth_kind: str = "bearer"

    def advertise(self, base: str, *, streaming: bool = True) -> None:
        """Serve a card whose interfaces are under ``base`` (a FaultProxy's URL, say).

        The agent starts afresh (no tasks); the state is kept.

        Args:
            base: The base URL of the interfaces.
            streaming: What the card's ``capabilities.streaming`` says.
        """
        self._late.app = build_app(
            base, self.state, token=self._token, auth_kind=self._auth_kind, streaming=streaming
        )


@contextlib.asynccontextmanager
async def serve_agent(
    *, token: str | None = None, auth_kind: str = "bearer"
) -> AsyncIterator[RunningAgent]:
    """Serve the test agent on 127.0.0.1 and a free port.

    Args:
        token: Protect the A2A endpoints with this credential.
        auth_kind: How the card asks for it: ``bearer``, ``apikey`` (header
            ``X-Agent-Key``) or ``oauth2`` (client credentials at
            ``/oauth/token``, which hands out ``token``).

    Yields:
        The running agent.
    """
    state = AgentState()
    late = _Late()
    async with serve_asgi(late) as url:
        agent = RunningAgent(url, state, late, token, auth_kind)
        agent.advertise(url)
        yield agent
