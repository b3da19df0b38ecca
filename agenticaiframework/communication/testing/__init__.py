"""Real loopback servers, a fault proxy and a pytest plugin for testing code built on these clients.

Every server runs on 127.0.0.1 and a free port, and its ``async with`` block
stops it completely (no task, socket, child process or temporary folder left):

* :func:`serve_asgi` (any ASGI app under uvicorn) and :func:`serve_echo_app`
  (a JSON echo plus a Server-Sent Events stream that resumes after
  ``Last-Event-ID``) — module :mod:`~agenticaiframework.communication.testing.http`;
* :func:`serve_websocket` (echo, or your handler) — ``testing.websocket``;
* :func:`serve_mqtt_broker` (Mosquitto when installed, else amqtt) and
  :class:`MosquittoBroker` (stop and restart it to cause an outage) — ``testing.mqtt``;
* :func:`serve_grpc_proto` (a ``.proto`` file and your servicer, with
  reflection and health) — ``testing.grpc``;
* :func:`echo_command`, :func:`mcp_server_command` and :func:`run_child`
  (STDIO children) — ``testing.stdio``;
* :class:`FaultProxy` (cut, reset, stall, delay, refuse; byte counters) —
  ``testing.proxy``.

The pytest plugin (``testing.plugin``, loaded through the ``pytest11`` entry
point) offers each as a fixture named ``agentcomm_*``. Names are imported on
first use, so importing this package loads no server library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._process import LoopbackServer, free_port
    from .grpc import GRPCServer, compile_proto, serve_grpc_descriptors, serve_grpc_proto
    from .http import EchoAppState, EchoServer, EventStream, echo_app, serve_asgi, serve_echo_app
    from .mqtt import MosquittoBroker, MQTTBroker, find_amqtt, find_mosquitto, serve_mqtt_broker
    from .proxy import FaultProxy
    from .reaper import ChildReaper, child_reaper
    from .stdio import echo_command, mcp_server_command, run_child
    from .websocket import WebSocketServer, echo_handler, serve_websocket

_HOME = {
    "free_port": "_process",
    "LoopbackServer": "_process",
    "GRPCServer": "grpc",
    "compile_proto": "grpc",
    "serve_grpc_descriptors": "grpc",
    "serve_grpc_proto": "grpc",
    "EchoAppState": "http",
    "EchoServer": "http",
    "EventStream": "http",
    "echo_app": "http",
    "serve_asgi": "http",
    "serve_echo_app": "http",
    "MQTTBroker": "mqtt",
    "MosquittoBroker": "mqtt",
    "find_amqtt": "mqtt",
    "find_mosquitto": "mqtt",
    "serve_mqtt_broker": "mqtt",
    "FaultProxy": "proxy",
    "ChildReaper": "reaper",
    "child_reaper": "reaper",
    "echo_command": "stdio",
    "mcp_server_command": "stdio",
    "run_child": "stdio",
    "WebSocketServer": "websocket",
    "echo_handler": "websocket",
    "serve_websocket": "websocket",
}

__all__ = [
    "ChildReaper",
    "EchoAppState",
    "EchoServer",
    "EventStream",
    "FaultProxy",
    "GRPCServer",
    "LoopbackServer",
    "MQTTBroker",
    "MosquittoBroker",
    "WebSocketServer",
    "child_reaper",
    "compile_proto",
    "echo_app",
    "echo_command",
    "echo_handler",
    "find_amqtt",
    "find_mosquitto",
    "free_port",
    "mcp_server_command",
    "run_child",
    "serve_asgi",
    "serve_echo_app",
    "serve_grpc_descriptors",
    "serve_grpc_proto",
    "serve_mqtt_broker",
    "serve_websocket",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
