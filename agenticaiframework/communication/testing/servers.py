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
* :func:`serve_amqtt` — the fallback when Mosquitto is missing: the
  pure-Python amqtt broker, run as a child process from a virtual environment
  of its own (:func:`amqtt_venv_dir`, set up by ``scripts/setup``) so that its
  ``websockets==15.0.1`` pin never touches this environment;
  :func:`find_amqtt` says whether that environment is there.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .reaper import ChildReaper

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
    "serve_grpc",
    "serve_http",
    "serve_mosquitto",
    "serve_websocket",
]

MOSQUITTO_INSTALL_HINT = (
    "install Mosquitto 2.x (apt-get install -y mosquitto, brew install mosquitto)"
)

#: The amqtt release the fallback broker environment holds.
AMQTT_VERSION = "0.12.1"
#: Environment variable naming the amqtt virtual environment (see :func:`amqtt_venv_dir`).
AMQTT_VENV_ENV = "AGENTCOMM_AMQTT_VENV"
AMQTT_INSTALL_HINT = (
    "run scripts/setup, which puts the pure-Python amqtt broker in an environment of its own "
    f"(python3 -m venv DIR && DIR/bin/pip install amqtt=={AMQTT_VERSION}, DIR = ${AMQTT_VENV_ENV} "
    "or ~/.cache/agenticaiframework/amqtt-venv)"
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


# -- MQTT (Mosquitto, or amqtt as the fallback) -------------------------------------------


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


def amqtt_venv_dir() -> Path:
    """Where the amqtt broker's own virtual environment lives.

    ``$AGENTCOMM_AMQTT_VENV`` when set, else
    ``${XDG_CACHE_HOME:-~/.cache}/agenticaiframework/amqtt-venv`` (the same
    rule as ``scripts/setup``, which creates it).

    Returns:
        The environment's directory (it may not exist).
    """
    override = os.environ.get(AMQTT_VENV_ENV)
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agenticaiframework" / "amqtt-venv"


def find_amqtt(venv: str | os.PathLike[str] | None = None) -> str | None:
    """Locate the Python interpreter of an environment that has amqtt installed.

    The environment counts when its interpreter is executable and pip has
    installed amqtt's ``amqtt`` console script there (pip writes scripts
    last, so a half-finished install does not count).

    Args:
        venv: The environment's directory; :func:`amqtt_venv_dir` when None.

    Returns:
        The interpreter's path, or None when the environment is not there.
    """
    root = Path(venv) if venv is not None else amqtt_venv_dir()
    for scripts, python, amqtt in (
        ("bin", "python", "amqtt"),
        ("Scripts", "python.exe", "amqtt.exe"),
    ):
        interpreter = root / scripts / python
        if os.access(interpreter, os.X_OK) and (root / scripts / amqtt).is_file():
            return str(interpreter)
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


def _amqtt_config(port: int) -> dict[str, Any]:
    """The amqtt broker config: one TCP listener on 127.0.0.1, anonymous clients allowed.

    amqtt's own default binds 0.0.0.0:1883 and loads the packet logger and the
    ``$SYS`` plugin; naming the listener and the plugins replaces all of that.
    """
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


def _write_amqtt_config(directory: str, port: int) -> str:
    # JSON is YAML, so amqtt reads it and this environment needs no YAML library.
    path = Path(directory) / "amqtt.yaml"
    path.write_text(json.dumps(_amqtt_config(port), indent=2) + "\n")
    return str(path)


@contextlib.asynccontextmanager
async def _tied_folder(prefix: str, reaper: ChildReaper | None) -> AsyncIterator[str]:
    """A temporary folder, removed at the end of the block, or by ``reaper`` if we die."""
    directory = await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix)
    if reaper is not None:
        reaper.watch_dir(directory)
    try:
        yield directory
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)
        if reaper is not None:
            reaper.forget_dir(directory)


@contextlib.asynccontextmanager
async def _tied_child(
    proc: asyncio.subprocess.Process, reaper: ChildReaper | None
) -> AsyncIterator[None]:
    """Stop ``proc`` (a group leader) at the end of the block, or by ``reaper`` if we die."""
    if reaper is not None:
        reaper.watch_group(proc.pid)
    try:
        yield
    finally:
        await stop_child(proc)
        if reaper is not None:
            reaper.forget_group(proc.pid)


async def stop_child(proc: asyncio.subprocess.Process) -> None:
    """Stop a child server: SIGTERM, up to 5 s, then SIGKILL; always reaped."""
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


async def _wait_listening(
    proc: asyncio.subprocess.Process,
    port: int,
    *,
    name: str,
    timeout: float,
    stderr: Callable[[], Awaitable[bytes]],
) -> None:
    """Wait until ``127.0.0.1:port`` accepts a connection, or fail when ``proc`` exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if proc.returncode is not None:
            err = await stderr()
            raise RuntimeError(
                f"{name} exited with status {proc.returncode}: "
                f"{err.decode(errors='replace').strip()}"
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise RuntimeError(f"{name} did not listen on port {port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def serve_mosquitto(
    binary: str, *, timeout: float = 10.0, reaper: ChildReaper | None = None
) -> AsyncIterator[str]:
    """Run Mosquitto on a free loopback port until the block ends.

    Args:
        binary: The broker binary (see :func:`find_mosquitto`).
        timeout: Seconds to wait for the broker to listen.
        reaper: A watchdog that ends the broker and removes its folder if this
            process is killed before the block ends.

    Yields:
        ``mqtt://127.0.0.1:<port>``.

    Raises:
        RuntimeError: The broker exited or never listened.
    """
    async with _tied_folder("agentcomm-demo-mqtt-", reaper) as directory:
        port = _free_port()
        config = await asyncio.to_thread(_write_mosquitto_config, directory, port)
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            config,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

        async def stderr() -> bytes:
            return await proc.stderr.read() if proc.stderr else b""

        async with _tied_child(proc, reaper):
            await _wait_listening(proc, port, name="mosquitto", timeout=timeout, stderr=stderr)
            yield f"mqtt://127.0.0.1:{port}"


def _read_tail(path: Path, limit: int = 4000) -> bytes:
    try:
        return path.read_bytes()[-limit:]
    except OSError:
        return b""


@contextlib.asynccontextmanager
async def serve_amqtt(
    python: str, *, timeout: float = 20.0, reaper: ChildReaper | None = None
) -> AsyncIterator[str]:
    """Run the amqtt broker from its own environment on a free loopback port.

    The broker is ``python -m amqtt.scripts.broker_script`` (what amqtt's
    ``amqtt`` console script runs) with a generated config: one TCP listener
    on 127.0.0.1, anonymous clients allowed, no WebSocket listener. amqtt
    speaks MQTT 3.1.1 only (clients must use ``protocol_version=4``) and
    delivers QoS 0 publishes to QoS 1 subscribers at QoS 1. Its log goes to a
    file in the config's temporary directory, quoted when it fails to start.

    Args:
        python: The environment's interpreter (see :func:`find_amqtt`).
        timeout: Seconds to wait for the broker to listen.
        reaper: A watchdog that ends the broker and removes its folder if this
            process is killed before the block ends.

    Yields:
        ``mqtt://127.0.0.1:<port>``.

    Raises:
        RuntimeError: The broker exited or never listened.
    """
    async with _tied_folder("agentcomm-demo-amqtt-", reaper) as directory:
        port = _free_port()
        config = await asyncio.to_thread(_write_amqtt_config, directory, port)
        log_path = Path(directory) / "amqtt.log"
        log = await asyncio.to_thread(log_path.open, "wb")
        try:
            proc = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "amqtt.scripts.broker_script",
                "-c",
                config,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor

        async def stderr() -> bytes:
            return await asyncio.to_thread(_read_tail, log_path)

        async with _tied_child(proc, reaper):
            await _wait_listening(proc, port, name="amqtt", timeout=timeout, stderr=stderr)
            yield f"mqtt://127.0.0.1:{port}"


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
