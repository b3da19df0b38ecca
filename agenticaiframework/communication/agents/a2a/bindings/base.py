"""The seam between A2AClient and a protocol binding (JSON-RPC, HTTP+JSON, gRPC).

A binding moves the A2A operations over one wire protocol and nothing else.
Everything above it (the agent card, interface choice, message building,
stream resume and de-duplication, auth from the card's security schemes,
the security policy on every URL) lives in the client. The contract:

* A binding is built as ``SomeBinding(context)`` from a :class:`BindingContext`
  (the interface URL, tenant, service parameters, transport options) and has
  ``async open()`` / ``async close()`` (close is idempotent and releases every
  socket and task).
* Requests and results are ProtoJSON dicts of the ``lf.a2a.v1`` messages
  (camelCase keys, enum names as strings), exactly as the JSON-RPC ``params``
  / ``result`` carry them: ``send_message({"message": {...}, "configuration":
  {...}})`` returns the ``SendMessageResponse`` dict (``{"task": {...}}`` or
  ``{"message": {...}}``); ``get_task``/``cancel_task`` return the ``Task``
  dict; ``list_tasks`` the ``ListTasksResponse`` dict. A gRPC binding converts
  with ``google.protobuf.json_format`` at its edge. The ``tenant`` of the
  interface is already set in each request by the client.
* ``send_streaming_message`` and ``subscribe_to_task`` are async iterators of
  ``StreamResponse`` dicts (``{"task"|"message"|"statusUpdate"|"artifactUpdate":
  {...}}``). They end quietly when the agent ends the stream, and raise
  :class:`~agenticaiframework.communication.core.errors.ConnectionError` /
  ``TimeoutError`` when the connection drops: the client then re-subscribes
  and de-duplicates (a binding never retries a stream by itself). Closing the
  iterator (``aclose()``) releases the stream.
* Errors: an A2A error answered by the agent is raised as the class of
  :mod:`..errors` (``from_jsonrpc_error``, ``from_rest_error``,
  ``from_grpc_status``/``from_reason`` do the mapping); a refused credential
  as :class:`~..errors.A2AAuthError` (message from ``context.auth_hint``);
  anything malformed as ``ProtocolError``; oversized as
  ``MessageTooLargeError`` (``context.max_message_size``). Every URL in a
  message goes through ``redact_url``/``redact_text``.
* Service parameters (``A2A-Version``, ``A2A-Extensions``) travel as HTTP
  headers or gRPC metadata: ``context.service_params``.
* The URL policy: the client checks an HTTP interface URL (``check_url``)
  before building the binding, and for a card from another machine
  (``context.refuse_local``) refuses any interface on this machine or a
  private network (``check_not_local``, for a gRPC ``host:port`` too). A
  gRPC binding applies the TLS policy to its target itself (GRPCClient does,
  with ``allow_insecure`` from ``context.options``).

Bindings are found by the card's ``protocolBinding`` name through
:data:`BINDINGS`: ``"GRPC"`` -> module ``bindings/grpc.py``, class
``GRPCBinding``. A binding whose module cannot be imported (a missing
optional dependency) is skipped when the client chooses an interface itself.
A new binding module is listed in ``docs/reference/a2a.md`` (one ``:::`` line).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ....core.errors import ConfigError

__all__ = [
    "ALIASES",
    "BINDINGS",
    "Binding",
    "BindingContext",
    "EventStream",
    "load_binding",
]

EventStream = AsyncGenerator[dict[str, Any], None]
"""What the streaming operations return: ``StreamResponse`` dicts."""

BINDINGS: dict[str, tuple[str, str]] = {
    "JSONRPC": ("jsonrpc", "JSONRPCBinding"),
    "HTTP+JSON": ("rest", "RESTBinding"),
    "GRPC": ("grpc", "GRPCBinding"),
}
"""``protocolBinding`` name -> (module in this package, class name)."""

ALIASES: dict[str, str] = {
    "jsonrpc": "JSONRPC",
    "json-rpc": "JSONRPC",
    "rest": "HTTP+JSON",
    "http+json": "HTTP+JSON",
    "http": "HTTP+JSON",
    "grpc": "GRPC",
}
"""The names a user may pass as ``binding=`` -> the card's ``protocolBinding``."""


@dataclass(frozen=True)
class BindingContext:
    """What a binding needs to talk to one interface.

    Attributes:
        url: The interface URL from the card (already checked by the policy).
        protocol_binding: The card's name for the binding (``JSONRPC`` ...).
        protocol_version: The interface's A2A version (``1.0``).
        tenant: The interface's tenant (``""`` for none).
        service_params: ``A2A-Version``, ``A2A-Extensions`` ...: HTTP headers
            or gRPC metadata on every call.
        options: Transport settings: :class:`HTTPConfig` fields (``headers``,
            ``auth``, ``allow_insecure``, ``verify_ssl``, ``timeout_seconds``
            ...); a gRPC binding takes what applies (TLS, ``auth`` headers as
            metadata).
        max_message_size: Largest response body or stream event, in bytes.
        timeout: Seconds one unary call may take (None: no limit).
        stream_timeout: Seconds a stream may stay silent before it counts as
            dropped (None: no limit; agents may work long between events).
        auth_hint: What the agent card asks for, for the message of a 401.
        refuse_local: The card came from another machine: no request may go
            to this machine or a private network (a redirect hop included).
        logger: Where the binding logs.
    """

    url: str
    protocol_binding: str
    protocol_version: str = "1.0"
    tenant: str = ""
    service_params: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    max_message_size: int = 16 * 1024 * 1024
    timeout: float | None = 60.0
    stream_timeout: float | None = None
    auth_hint: str = ""
    refuse_local: bool = False
    logger: logging.Logger = field(
        default_factory=lambda: logging.getLogger("agenticaiframework.communication.a2a")
    )


@runtime_checkable
class Binding(Protocol):
    """One A2A protocol binding; see the module docstring for the contract."""

    async def open(self) -> None:
        """Prepare the connection (nothing is sent yet)."""

    async def close(self) -> None:
        """Release every socket and task; safe twice."""

    async def send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        """``SendMessage``: a ``SendMessageRequest`` -> ``SendMessageResponse``."""

    def send_streaming_message(self, request: dict[str, Any]) -> EventStream:
        """``SendStreamingMessage``: ``StreamResponse`` dicts until the agent ends the stream."""

    async def get_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTask``: ``{"id", "historyLength"?}`` -> ``Task``."""

    async def cancel_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CancelTask``: ``{"id", "metadata"?}`` -> ``Task``."""

    def subscribe_to_task(self, request: dict[str, Any]) -> EventStream:
        """``SubscribeToTask``: ``{"id"}`` -> the Task first, then its updates."""

    async def list_tasks(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTasks``: ``ListTasksRequest`` -> ``ListTasksResponse``."""

    async def get_extended_agent_card(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetExtendedAgentCard`` -> ``AgentCard``."""

    async def create_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CreateTaskPushNotificationConfig``: ``{"taskId", "url", "token"?...}``."""

    async def get_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTaskPushNotificationConfig``: ``{"taskId", "id"}``."""

    async def list_push_configs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTaskPushNotificationConfigs``: ``{"taskId"}``."""

    async def delete_push_config(self, request: dict[str, Any]) -> None:
        """``DeleteTaskPushNotificationConfig``: ``{"taskId", "id"}``."""


def load_binding(protocol_binding: str) -> type[Binding]:
    """The binding class for a card's ``protocolBinding`` name.

    Args:
        protocol_binding: ``JSONRPC``, ``HTTP+JSON`` or ``GRPC``.

    Returns:
        The class (built as ``cls(context)``).

    Raises:
        ConfigError: No such binding, or its module cannot be imported (the
            message says why, e.g. a missing optional dependency).
    """
    entry = BINDINGS.get(protocol_binding.upper())
    if entry is None:
        raise ConfigError(
            f"binding: unknown A2A protocol binding {protocol_binding!r}; "
            f"known: {', '.join(BINDINGS)}"
        )
    module_name, class_name = entry
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ImportError as exc:
        raise ConfigError(
            f"binding: the {protocol_binding} binding is not available here: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"binding: {module.__name__} defines no {class_name}")
    return cls  # type: ignore[no-any-return]
