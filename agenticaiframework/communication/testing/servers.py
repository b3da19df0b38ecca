"""The demo's embedded servers, each on 127.0.0.1 and a free port.

Built from the public test servers of this package:

* :func:`serve_http` — one starlette app under uvicorn for HTTP and SSE
  (``POST /tasks``, ``GET /tasks/{id}``, ``GET /health``, ``GET /events``).
  ``/events`` (an :class:`~agenticaiframework.communication.testing.http.EventStream`)
  sends ``retry: 100`` and numbered ``progress`` events; the first connection
  is cut after event 3, a resumed one continues after its ``Last-Event-ID``
  and ends with a ``done`` event.
* :func:`serve_websocket` — a ``websockets`` server: ``{"type": "hello"}`` gets
  ``{"type": "welcome"}``; ``{"id": x, "method": "add", "params": [a, b]}`` gets
  ``{"id": x, "result": a + b}``; anything else is echoed.
* :func:`serve_mosquitto` — a Mosquitto broker child process with a generated
  config; :func:`find_mosquitto` says whether it is installed.
* :func:`serve_amqtt` — the fallback when Mosquitto is missing: the
  pure-Python amqtt broker, run as a child process from a virtual environment
  of its own (:func:`amqtt_venv_dir`, set up by ``scripts/setup``);
  :func:`find_amqtt` says whether that environment is there.
* :func:`serve_grpc` — ``demo.v1.AgentService`` (from :data:`DEMO_PROTO`) with
  server reflection and ``grpc.health.v1``.

Nothing here is contacted from outside this machine, and every context
manager stops what it started, child processes included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ._process import stop_child
from .grpc import compile_proto, serve_grpc_descriptors
from .http import EchoAppState, EventStream, serve_asgi
from .mqtt import (
    AMQTT_INSTALL_HINT,
    AMQTT_VENV_ENV,
    AMQTT_VERSION,
    MOSQUITTO_INSTALL_HINT,
    MosquittoBroker,
    _amqtt_config,
    amqtt_venv_dir,
    find_amqtt,
    find_mosquitto,
)
from .mqtt import serve_amqtt as _serve_amqtt
from .reaper import ChildReaper
from .websocket import serve_websocket as _serve_websocket

__all__ = [
    "AMQTT_INSTALL_HINT",
    "AMQTT_VENV_ENV",
    "AMQTT_VERSION",
    "DEMO_PROTO",
    "MOSQUITTO_INSTALL_HINT",
    "SSEState",
    "amqtt_venv_dir",
    "find_amqtt",
    "find_mosquitto",
    "serve_amqtt",
    "serve_asgi",
    "serve_grpc",
    "serve_http",
    "serve_mosquitto",
    "serve_websocket",
    "stop_child",
]

# Kept importable from here for the tests of the amqtt fallback.
_ = _amqtt_config

#: What the SSE endpoint saw (``last_event_ids``: the ``Last-Event-ID`` of each connection).
SSEState = EchoAppState

DEMO_PROTO = """\
syntax = "proto3";

package demo.v1;

// Runs agent tasks.
service AgentService {
  // Run one task and return its result.
  rpc ExecuteTask (TaskRequest) returns (TaskResponse);
}

message TaskRequest {
  string task_id = 1;
  string input = 2;
}

message TaskResponse {
  string task_id = 1;
  string result = 2;
  string status = 3;
}
"""

_SERVICE = "demo.v1.AgentService"


# -- HTTP + SSE ---------------------------------------------------------------------------


def _http_app(state: SSEState) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    tasks: dict[str, dict[str, Any]] = {}

    async def create_task(request: Request) -> Response:
        body = await request.json()
        task_id = str(len(tasks) + 1)
        tasks[task_id] = {"id": task_id, "status": "queued", **body}
        return JSONResponse(tasks[task_id], status_code=201)

    async def get_task(request: Request) -> Response:
        task = tasks.get(request.path_params["task_id"])
        if task is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(task)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    events = EventStream(state, count=6, cut_after=3, event="progress", field="step")
    return Starlette(
        routes=[
            Route("/tasks", create_task, methods=["POST"]),
            Route("/tasks/{task_id}", get_task),
            Route("/health", health),
            Route("/events", events),
        ]
    )


@contextlib.asynccontextmanager
async def serve_http() -> AsyncIterator[tuple[str, SSEState]]:
    """Serve the demo's HTTP + SSE app under uvicorn (no WebSocket support loaded).

    Yields:
        ``(base_url, sse_state)``.

    Raises:
        RuntimeError: The server did not start.
    """
    state = SSEState()
    async with serve_asgi(_http_app(state)) as url:
        yield url, state


# -- WebSocket ----------------------------------------------------------------------------


async def _ws_handler(connection: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    with contextlib.suppress(ConnectionClosed):  # the client left: nothing to answer
        async for frame in connection:
            try:
                message = json.loads(frame)
            except (TypeError, ValueError):
                await connection.send(frame)
                continue
            if isinstance(message, dict) and message.get("type") == "hello":
                reply: Any = {"type": "welcome", "agent": "demo-ws"}
            elif isinstance(message, dict) and message.get("method") == "add":
                reply = {"id": message.get("id"), "result": sum(message.get("params", []))}
            else:
                reply = message
            await connection.send(json.dumps(reply))


@contextlib.asynccontextmanager
async def serve_websocket() -> AsyncIterator[str]:
    """Serve the demo WebSocket endpoint with the ``websockets`` asyncio server.

    Yields:
        ``ws://127.0.0.1:<port>/agent``.
    """
    async with _serve_websocket(_ws_handler, path="/agent") as server:
        yield server.url


# -- MQTT (Mosquitto, or amqtt as the fallback) -------------------------------------------


@contextlib.asynccontextmanager
async def serve_mosquitto(
    binary: str, *, timeout: float = 10.0, reaper: ChildReaper | None = None
) -> AsyncIterator[str]:
    """Run Mosquitto (a :class:`MosquittoBroker`) on a free loopback port until the block ends.

    Yields:
        ``mqtt://127.0.0.1:<port>``.
    """
    broker = MosquittoBroker(binary, reaper=reaper, folder_prefix="agentcomm-demo-mqtt-")
    try:
        await broker.start(timeout)
        yield broker.url
    finally:
        await broker.close()


@contextlib.asynccontextmanager
async def serve_amqtt(
    python: str, *, timeout: float = 20.0, reaper: ChildReaper | None = None
) -> AsyncIterator[str]:
    """The amqtt broker, as :func:`agenticaiframework.communication.testing.mqtt.serve_amqtt`.

    Yields:
        ``mqtt://127.0.0.1:<port>``.
    """
    async with _serve_amqtt(
        python, timeout=timeout, reaper=reaper, folder_prefix="agentcomm-demo-amqtt-"
    ) as url:
        yield url


# -- gRPC ---------------------------------------------------------------------------------


class _AgentService:
    """``demo.v1.AgentService``: the reply class is set once the server has built it."""

    response: Any = None

    async def ExecuteTask(self, request: Any, context: Any) -> Any:
        words = len(request.input.split())
        return self.response(
            task_id=request.task_id,
            result=f"processed {words} words: {request.input}",
            status="completed",
        )


def _compile_demo_proto() -> bytes:
    with tempfile.TemporaryDirectory(prefix="agentcomm-demo-proto-") as directory:
        proto = Path(directory) / "demo_agent.proto"
        proto.write_text(DEMO_PROTO)
        return compile_proto(proto)


@contextlib.asynccontextmanager
async def serve_grpc() -> AsyncIterator[str]:
    """Serve ``demo.v1.AgentService`` with reflection and health on a free port.

    Yields:
        The target, ``127.0.0.1:<port>``.
    """
    descriptors = await asyncio.to_thread(_compile_demo_proto)
    service = _AgentService()
    async with serve_grpc_descriptors(descriptors, {_SERVICE: service}) as server:
        service.response = server.messages["demo.v1.TaskResponse"]
        yield server.target
