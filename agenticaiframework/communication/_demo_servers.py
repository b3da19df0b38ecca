"""The demo's embedded servers, each on 127.0.0.1 and a free port.

* :func:`serve_http` — one starlette app under uvicorn for HTTP and SSE
  (``POST /tasks``, ``GET /tasks/{id}``, ``GET /health``, ``GET /events``).
  ``/events`` sends ``retry: 100`` and numbered events; the first connection
  is cut after event 3, a resumed one continues after its ``Last-Event-ID``
  and ends with a ``done`` event.
* :func:`serve_websocket` — a ``websockets`` server: ``{"type": "hello"}`` gets
  ``{"type": "welcome"}``; ``{"id": x, "method": "add", "params": [a, b]}`` gets
  ``{"id": x, "result": a + b}``; anything else is echoed.
* :func:`serve_mosquitto` — a Mosquitto broker child process with a generated
  config; :func:`find_mosquitto` says whether it is installed.
* :func:`serve_grpc` — a grpc.aio server for ``demo.v1.AgentService`` (compiled
  at run time from :data:`DEMO_PROTO` with grpcio-tools), with server
  reflection and ``grpc.health.v1``.

Nothing here is contacted from outside this machine, and every context
manager stops what it started, child processes included.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_PROTO",
    "MOSQUITTO_INSTALL_HINT",
    "SSEState",
    "find_mosquitto",
    "serve_grpc",
    "serve_http",
    "serve_mosquitto",
    "serve_websocket",
]

MOSQUITTO_INSTALL_HINT = (
    "install Mosquitto 2.x (apt-get install -y mosquitto, brew install mosquitto)"
)

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
_SSE_EVENTS = 6
_SSE_CUT_AFTER = 3


# -- HTTP + SSE ---------------------------------------------------------------------------


@dataclass
class SSEState:
    """What the SSE endpoint saw: the ``Last-Event-ID`` of each connection."""

    last_event_ids: list[str | None] = field(default_factory=list)


def _http_app(state: SSEState) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
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

    async def events(request: Request) -> Response:
        last = request.headers.get("last-event-id")
        state.last_event_ids.append(last)
        first = int(last) + 1 if last and last.isdigit() else 1
        resumed = last is not None

        async def stream() -> AsyncIterator[str]:
            yield "retry: 100\n\n"
            for n in range(first, _SSE_EVENTS + 1):
                yield f"id: {n}\nevent: progress\ndata: {json.dumps({'step': n})}\n\n"
                if not resumed and n == _SSE_CUT_AFTER:
                    return  # the server drops the stream; the client resumes
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return Starlette(
        routes=[
            Route("/tasks", create_task, methods=["POST"]),
            Route("/tasks/{task_id}", get_task),
            Route("/health", health),
            Route("/events", events),
        ]
    )


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve an ASGI app under uvicorn in this event loop on 127.0.0.1, port 0.

    Args:
        app: The ASGI application.
        **config: Extra ``uvicorn.Config`` arguments (``ssl_certfile``...).

    Yields:
        The base URL, ``http://127.0.0.1:<port>`` (https when TLS is configured).

    Raises:
        RuntimeError: The server did not start.
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=1,
            **config,
        )
    )
    # Ctrl-C should reach the caller (which then stops every server), not uvicorn.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("the HTTP server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


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
    from websockets.asyncio.server import serve

    async with serve(_ws_handler, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/agent"


# -- MQTT (Mosquitto) ---------------------------------------------------------------------


def find_mosquitto() -> str | None:
    """Locate the ``mosquitto`` broker binary.

    Returns:
        Its path, or None when it is not installed.
    """
    for candidate in (
        shutil.which("mosquitto"),
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/opt/homebrew/sbin/mosquitto",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_mosquitto_config(directory: str, port: int) -> str:
    path = Path(directory) / "mosquitto.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        # Started as root, Mosquitto would switch to user "mosquitto" and lose
        # access to the temporary directory; stay the current user.
        f"user {getpass.getuser()}",
        "persistence false",
        "log_dest stderr",
        "log_type error",
        "set_tcp_nodelay true",
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.stderr is not None:
        await proc.stderr.read()


@contextlib.asynccontextmanager
async def serve_mosquitto(binary: str, *, timeout: float = 10.0) -> AsyncIterator[str]:
    """Run Mosquitto on a free loopback port until the block ends.

    Args:
        binary: The broker binary (see :func:`find_mosquitto`).
        timeout: Seconds to wait for the broker to listen.

    Yields:
        ``mqtt://127.0.0.1:<port>``.

    Raises:
        RuntimeError: The broker exited or never listened.
    """
    with tempfile.TemporaryDirectory(prefix="agentcomm-demo-mqtt-") as directory:
        port = _free_port()
        config = await asyncio.to_thread(_write_mosquitto_config, directory, port)
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            config,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                if proc.returncode is not None:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise RuntimeError(
                        f"mosquitto exited with status {proc.returncode}: "
                        f"{err.decode(errors='replace').strip()}"
                    )
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    if loop.time() > deadline:
                        raise RuntimeError(f"mosquitto did not listen on port {port}") from None
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                break
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            await _stop_process(proc)


# -- gRPC ---------------------------------------------------------------------------------


def _compile_proto() -> bytes:
    """Compile :data:`DEMO_PROTO` with grpcio-tools; return the FileDescriptorSet bytes."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory(prefix="agentcomm-demo-proto-") as directory:
        source = Path(directory) / "demo_agent.proto"
        source.write_text(DEMO_PROTO)
        out = Path(directory) / "demo_agent.pb"
        rc = protoc.main(["protoc", f"-I{directory}", f"--descriptor_set_out={out}", str(source)])
        if rc != 0:
            raise RuntimeError("grpcio-tools could not compile the demo proto")
        return out.read_bytes()


@contextlib.asynccontextmanager
async def serve_grpc() -> AsyncIterator[str]:
    """Serve ``demo.v1.AgentService`` with reflection and health on a free port.

    The service is built from descriptors alone (no generated code): the
    proto is compiled to a descriptor set at run time, and reflection
    serves it from the same descriptor pool.

    Yields:
        The target, ``127.0.0.1:<port>``.
    """
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection, reflection_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(await asyncio.to_thread(_compile_proto))
    pool = descriptor_pool.DescriptorPool()
    for module in (health_pb2, reflection_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    for file_proto in files.file:
        pool.Add(file_proto)
    request_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("demo.v1.TaskRequest"))
    response_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("demo.v1.TaskResponse")
    )

    async def execute_task(request: Any, context: Any) -> Any:
        words = len(request.input.split())
        return response_cls(
            task_id=request.task_id,
            result=f"processed {words} words: {request.input}",
            status="completed",
        )

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                _SERVICE,
                {
                    "ExecuteTask": grpc.unary_unary_rpc_method_handler(
                        execute_task,
                        request_deserializer=request_cls.FromString,
                        response_serializer=response_cls.SerializeToString,
                    )
                },
            ),
        )
    )
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], server, pool=pool
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=0.5)
