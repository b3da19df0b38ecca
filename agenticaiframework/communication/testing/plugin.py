"""The pytest plugin: loopback servers and the fault proxy as fixtures.

Installing the package is enough: pytest loads this module through the
``pytest11`` entry point. Importing it costs next to nothing: every server
module is imported by the first fixture that needs it.

The servers run in an event loop of their own, in a thread the plugin starts
on first use and stops at the end of the session, so a fixture works the
same from async tests (whatever loop pytest-asyncio or anyio gives each
test) and from plain ones, at function or session scope. Function-scoped
fixtures stop their server when the test ends; ``*_session`` fixtures when
the session ends. Every name starts with ``agentcomm_`` so it never clashes
with a fixture of yours:

* ``agentcomm_http_server[_session]``: the echo + SSE app, an
  :class:`~agenticaiframework.communication.testing.http.EchoServer`;
* ``agentcomm_ws_server[_session]``: a WebSocket echo server, a
  :class:`~agenticaiframework.communication.testing.websocket.WebSocketServer`;
* ``agentcomm_mqtt_broker[_session]``: Mosquitto or amqtt, an
  :class:`~agenticaiframework.communication.testing.mqtt.MQTTBroker`;
* ``agentcomm_fault_proxy[_session]``: ``make(target) -> FaultProxy``, started;
* ``agentcomm_serve_asgi``: ``serve(app) -> url``;
* ``agentcomm_serve_websocket``: ``serve(handler) -> WebSocketServer``;
* ``agentcomm_serve_grpc``: ``serve(proto_file, servicers) -> GRPCServer``;
* ``agentcomm_stdio_echo_command``: the line-echo child's command line;
* ``agentcomm_mcp_server_command``: an MCP server child's command line.

A handler or servicer you pass runs in the servers' thread: share state with
the test through plain objects, not asyncio primitives of the test's loop.
The proxy's commands can be called from the test's loop (``await
proxy.cut()``); they run in the proxy's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    import os
    import threading
    from collections.abc import Mapping
    from contextlib import AbstractAsyncContextManager

    from .grpc import GRPCServer
    from .http import EchoServer
    from .mqtt import MQTTBroker
    from .proxy import FaultProxy
    from .websocket import WebSocketServer

__all__ = ["ServerThread"]

_START_TIMEOUT = 30.0


class ServerThread:
    """An event loop in a thread of its own that keeps servers running for fixtures."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self._loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._thread: threading.Thread = threading.Thread(
            target=self._loop.run_forever, name="agentcomm-test-servers", daemon=True
        )
        self._thread.start()

    def hold(
        self, factory: Callable[[], AbstractAsyncContextManager[Any]]
    ) -> tuple[Any, Callable[[], None]]:
        """Enter ``factory()`` in the servers' loop and keep it entered.

        The context manager is entered and exited by one task, so everything
        it does (timeouts, task groups) stays in one place.

        Args:
            factory: Makes the async context manager (a server).

        Returns:
            ``(value, release)``: what it yields, and a call that exits it.

        Raises:
            Exception: Whatever starting the server raised.
        """
        import asyncio
        import concurrent.futures

        ready: concurrent.futures.Future[tuple[Any, asyncio.Event]] = concurrent.futures.Future()

        async def keeper() -> None:
            stop = asyncio.Event()
            try:
                async with factory() as value:
                    ready.set_result((value, stop))
                    await stop.wait()
            except BaseException as exc:
                if ready.done():
                    raise
                ready.set_exception(exc)

        done = asyncio.run_coroutine_threadsafe(keeper(), self._loop)
        try:
            value, stop = ready.result(_START_TIMEOUT)
        except concurrent.futures.TimeoutError:
            done.cancel()
            raise RuntimeError(f"the test server did not start in {_START_TIMEOUT} s") from None

        def release() -> None:
            self._loop.call_soon_threadsafe(stop.set)
            done.result(_START_TIMEOUT)

        return value, release

    def close(self) -> None:
        """Stop the loop and the thread (every held server must be released first).

        As ``asyncio.run`` ends: any task still running in the loop is
        cancelled and awaited (its ``finally`` blocks close what it holds),
        then async generators and the default executor are shut down.
        """
        import asyncio

        async def drain() -> None:
            current = asyncio.current_task()
            left = [task for task in asyncio.all_tasks() if task is not current]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            await self._loop.shutdown_asyncgens()
            await self._loop.shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(drain(), self._loop).result(_START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._loop.close()


@pytest.fixture(scope="session")
def agentcomm_server_thread() -> Iterator[ServerThread]:
    """The thread whose event loop runs every server of these fixtures."""
    thread = ServerThread()
    try:
        yield thread
    finally:
        thread.close()


def _held(
    thread: ServerThread, factory: Callable[[], AbstractAsyncContextManager[Any]]
) -> Iterator[Any]:
    value, release = thread.hold(factory)
    try:
        yield value
    finally:
        release()


class _Factory:
    """A fixture value that starts servers on demand and stops them all at teardown."""

    def __init__(self, thread: ServerThread) -> None:
        self._thread = thread
        self._releases: list[Callable[[], None]] = []

    def start(self, factory: Callable[[], AbstractAsyncContextManager[Any]]) -> Any:
        value, release = self._thread.hold(factory)
        self._releases.append(release)
        return value

    def __enter__(self) -> _Factory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._releases:
            self._releases.pop()()


# -- HTTP ----------------------------------------------------------------------------------


def _echo_app() -> AbstractAsyncContextManager[EchoServer]:
    from .http import serve_echo_app

    return serve_echo_app()


@pytest.fixture
def agentcomm_http_server(agentcomm_server_thread: ServerThread) -> Iterator[EchoServer]:
    """The echo + SSE app (``/events`` resumes after ``Last-Event-ID``) on a free port."""
    yield from _held(agentcomm_server_thread, _echo_app)


@pytest.fixture(scope="session")
def agentcomm_http_server_session(agentcomm_server_thread: ServerThread) -> Iterator[EchoServer]:
    """As ``agentcomm_http_server``, one for the whole session."""
    yield from _held(agentcomm_server_thread, _echo_app)


@pytest.fixture
def agentcomm_serve_asgi(agentcomm_server_thread: ServerThread) -> Iterator[Callable[[Any], str]]:
    """``serve(app) -> base_url``: serve your ASGI app under uvicorn until the test ends."""
    from .http import serve_asgi

    with _Factory(agentcomm_server_thread) as factory:

        def serve(app: Any) -> str:
            return str(factory.start(lambda: serve_asgi(app)))

        yield serve


# -- WebSocket -----------------------------------------------------------------------------


def _echo_ws() -> AbstractAsyncContextManager[WebSocketServer]:
    from .websocket import serve_websocket

    return serve_websocket()


@pytest.fixture
def agentcomm_ws_server(agentcomm_server_thread: ServerThread) -> Iterator[WebSocketServer]:
    """A WebSocket echo server on a free port (its ``.url``)."""
    yield from _held(agentcomm_server_thread, _echo_ws)


@pytest.fixture(scope="session")
def agentcomm_ws_server_session(
    agentcomm_server_thread: ServerThread,
) -> Iterator[WebSocketServer]:
    """As ``agentcomm_ws_server``, one for the whole session."""
    yield from _held(agentcomm_server_thread, _echo_ws)


@pytest.fixture
def agentcomm_serve_websocket(
    agentcomm_server_thread: ServerThread,
) -> Iterator[Callable[..., WebSocketServer]]:
    """``serve(handler, **options) -> WebSocketServer``: your handler, until the test ends."""
    from .websocket import serve_websocket

    with _Factory(agentcomm_server_thread) as factory:

        def serve(handler: Any = None, **options: Any) -> WebSocketServer:
            server: WebSocketServer = factory.start(lambda: serve_websocket(handler, **options))
            return server

        yield serve


# -- MQTT ----------------------------------------------------------------------------------


def _broker() -> AbstractAsyncContextManager[MQTTBroker]:
    from .mqtt import serve_mqtt_broker

    return serve_mqtt_broker()


@pytest.fixture
def agentcomm_mqtt_broker(agentcomm_server_thread: ServerThread) -> Iterator[MQTTBroker]:
    """An MQTT broker on a free port: Mosquitto when installed, else amqtt."""
    yield from _held(agentcomm_server_thread, _broker)


@pytest.fixture(scope="session")
def agentcomm_mqtt_broker_session(agentcomm_server_thread: ServerThread) -> Iterator[MQTTBroker]:
    """As ``agentcomm_mqtt_broker``, one for the whole session."""
    yield from _held(agentcomm_server_thread, _broker)


# -- gRPC ----------------------------------------------------------------------------------


@pytest.fixture
def agentcomm_serve_grpc(
    agentcomm_server_thread: ServerThread,
) -> Iterator[Callable[..., GRPCServer]]:
    """``serve(proto_file, servicers) -> GRPCServer``: with reflection and health."""
    from .grpc import serve_grpc_proto

    with _Factory(agentcomm_server_thread) as factory:

        def serve(
            proto_file: str | os.PathLike[str], servicers: Mapping[str, object], **kwargs: Any
        ) -> GRPCServer:
            server: GRPCServer = factory.start(
                lambda: serve_grpc_proto(proto_file, servicers, **kwargs)
            )
            return server

        yield serve


# -- STDIO ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def agentcomm_stdio_echo_command() -> list[str]:
    """The command line of a child that echoes each stdin line (JSON lines) to stdout."""
    from .stdio import echo_command

    return echo_command()


@pytest.fixture(scope="session")
def agentcomm_mcp_server_command() -> list[str]:
    """The command line of an MCP server over stdio (tools ``add``, ``word_count``).

    Raises:
        RuntimeError: The ``mcp`` package is not installed.
    """
    import importlib.util

    from .stdio import mcp_server_command

    if importlib.util.find_spec("mcp") is None:
        raise RuntimeError("the MCP server child needs the mcp package: pip install mcp")
    return mcp_server_command()


# -- the fault proxy -----------------------------------------------------------------------


def _proxy_factory(thread: ServerThread) -> Iterator[Callable[..., FaultProxy]]:
    from .proxy import FaultProxy

    with _Factory(thread) as factory:

        def make(target: int | str, target_host: str = "127.0.0.1") -> FaultProxy:
            proxy: FaultProxy = factory.start(lambda: FaultProxy(target, target_host))
            return proxy

        yield make


@pytest.fixture
def agentcomm_fault_proxy(
    agentcomm_server_thread: ServerThread,
) -> Iterator[Callable[..., FaultProxy]]:
    """``make(target) -> FaultProxy``: a started proxy in front of a port, host:port or URL."""
    yield from _proxy_factory(agentcomm_server_thread)


@pytest.fixture(scope="session")
def agentcomm_fault_proxy_session(
    agentcomm_server_thread: ServerThread,
) -> Iterator[Callable[..., FaultProxy]]:
    """As ``agentcomm_fault_proxy``; the proxies live until the session ends."""
    yield from _proxy_factory(agentcomm_server_thread)
