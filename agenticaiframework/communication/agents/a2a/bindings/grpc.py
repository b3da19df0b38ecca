"""The A2A gRPC binding, through :class:`~agenticaiframework.communication.GRPCClient`.

The service is ``lf.a2a.v1.A2AService`` of the public A2A ``.proto``, vendored
beside this module (``a2a.proto``, A2A v1.0.1, Apache-2.0) and compiled at run
time by GRPCClient's own machinery (grpcio-tools, in memory, cached): no
generated stubs, no server reflection needed. Requests and results cross
this edge as ProtoJSON dicts (``google.protobuf.json_format``), exactly the
shapes the JSON-RPC binding carries, so the client above sees no difference.

The interface URL of the card is a gRPC address: ``host:port`` (TLS, except
to a loopback host), or ``grpcs://``/``https://`` (TLS) and
``grpc://``/``http://`` (plain text; refused to a non-loopback host unless
``allow_insecure=True``, by GRPCClient's policy). Service parameters
(``A2A-Version``, ``A2A-Extensions``), the caller's ``headers`` and the auth
from the card's security scheme travel as call metadata.

Errors: the A2A error of a failed call is read from the status details
(``grpc-status-details-bin``: a ``google.rpc.Status`` whose
``google.rpc.ErrorInfo`` names the reason, e.g. ``TASK_NOT_FOUND``), else
from the status code; ``UNAUTHENTICATED`` and ``PERMISSION_DENIED`` become
:class:`~..errors.A2AAuthError`; ``UNAVAILABLE`` is a ConnectionError (a
dropped stream is then resumed by the client). Calls are not retried here:
a message is never sent twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import urlsplit

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError

from ....core import errors
from ....core.config import GRPCConfig
from ....core.security import is_loopback_host, redact_url
from ....grpc.client import GRPCClient
from ....grpc.descriptors import Schema, schema_from_protos
from ..errors import A2AAuthError, from_grpc_status
from .base import BindingContext

__all__ = ["PROTO_FILE", "SERVICE", "GRPCBinding", "grpc_target", "stream_response_dict"]

PROTO_FILE: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), "a2a.proto")
"""The vendored A2A ``.proto`` (``lf.a2a.v1``)."""

SERVICE: Final = "lf.a2a.v1.A2AService"
"""The full name of the A2A gRPC service."""

_STATUS_DETAILS = "grpc-status-details-bin"
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
_AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# Set by the binding itself, whatever the caller's options say.
_OWN_FIELDS = frozenset(
    {"target", "proto_files", "proto_include_paths", "metadata", "auth", "max_message_length"}
)
# The caller's options that GRPCClient understands too (TLS files, allow_insecure, ...).
_GRPC_FIELDS = frozenset(f.name for f in dataclasses.fields(GRPCConfig)) - _OWN_FIELDS


def stream_response_dict(reply: Any) -> dict[str, Any]:
    """A ``StreamResponse`` as its ProtoJSON dict, exactly as ``json_format.MessageToDict``.

    A status update without a message or metadata (the bulk of a long task's
    stream) is built directly, at a fraction of MessageToDict's cost; any
    other event goes through MessageToDict.

    Args:
        reply: An ``lf.a2a.v1.StreamResponse``.

    Returns:
        ``{"statusUpdate": {...}}``, ``{"task": {...}}`` ...
    """
    if reply.WhichOneof("payload") == "status_update":
        event = reply.status_update
        status = event.status
        if not event.HasField("metadata") and not status.HasField("message"):
            state = status.state
            name = _state_name(status, state) if state else None
            if name is not None or not state:
                out: dict[str, Any] = {}
                if event.task_id:
                    out["taskId"] = event.task_id
                if event.context_id:
                    out["contextId"] = event.context_id
                if event.HasField("status"):
                    wire: dict[str, Any] = {}
                    if name is not None:
                        wire["state"] = name
                    if status.HasField("timestamp"):
                        wire["timestamp"] = status.timestamp.ToJsonString()
                    out["status"] = wire
                return {"statusUpdate": out}
    result: dict[str, Any] = json_format.MessageToDict(reply)
    return result


_STATE_NAMES: dict[Any, dict[int, str]] = {}


def _state_name(status: Any, state: int) -> str | None:
    """The ``TaskState`` name of ``state`` (None for a number the proto does not name)."""
    names = _STATE_NAMES.get(status.DESCRIPTOR)
    if names is None:
        enum = status.DESCRIPTOR.fields_by_name["state"].enum_type
        names = _STATE_NAMES[status.DESCRIPTOR] = {v.number: v.name for v in enum.values}
    return names.get(state)


def grpc_target(url: str) -> str:
    """The GRPCClient target for a card's gRPC interface URL.

    ``host:port`` gets TLS (``grpcs://``) unless the host is loopback;
    ``https://`` means ``grpcs://`` and ``http://`` means ``grpc://``.

    Args:
        url: The interface URL from the card.

    Returns:
        ``grpc://host:port`` or ``grpcs://host:port``.

    Raises:
        ConfigError: Not a gRPC address (no host or port, another scheme, a path).
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    scheme = scheme.lower()
    if scheme not in ("", "grpc", "grpcs", "http", "https"):
        raise errors.ConfigError(
            f"interface: {redact_url(url)!r} is not a gRPC address (host:port, grpc://, grpcs://)"
        )
    try:
        parts = urlsplit(f"//{rest}")
        port = parts.port
    except ValueError as exc:
        raise errors.ConfigError(f"interface: bad gRPC address {redact_url(url)!r}: {exc}") from exc
    host = parts.hostname
    if not host or parts.path.strip("/") or parts.query:
        raise errors.ConfigError(
            f"interface: {redact_url(url)!r} is not a gRPC address (expected host:port)"
        )
    if port is None:
        port = 443 if scheme in ("", "grpcs", "https") else 80
    secure = scheme in ("grpcs", "https") or (scheme == "" and not is_loopback_host(host))
    shown = f"[{host}]" if ":" in host else host
    return f"{'grpcs' if secure else 'grpc'}://{shown}:{port}"


def _status_classes() -> tuple[Any, Any]:
    """``google.rpc.Status`` and ``google.rpc.ErrorInfo`` look-alikes, wire-compatible.

    Built in a private pool so that decoding the status details needs neither
    googleapis-common-protos nor a clash with another copy of ``google/rpc``.
    """
    fdp = descriptor_pb2.FileDescriptorProto(
        name="agentcomm/a2a_grpc_status.proto", package="agentcomm.a2a.rpc", syntax="proto3"
    )
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    message = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    int32 = descriptor_pb2.FieldDescriptorProto.TYPE_INT32
    raw = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES

    def add(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        msg = fdp.message_type.add(name=name)
        for field_name, number, label, kind, type_name in fields:
            field = msg.field.add(name=field_name, number=number, label=label, type=kind)
            if type_name:
                field.type_name = type_name

    add("Any", [("type_url", 1, optional, string, ""), ("value", 2, optional, raw, "")])
    add(
        "Status",
        [
            ("code", 1, optional, int32, ""),
            ("message", 2, optional, string, ""),
            ("details", 3, repeated, message, ".agentcomm.a2a.rpc.Any"),
        ],
    )
    add("Entry", [("key", 1, optional, string, ""), ("value", 2, optional, string, "")])
    add(
        "ErrorInfo",
        [
            ("reason", 1, optional, string, ""),
            ("domain", 2, optional, string, ""),
            ("metadata", 3, repeated, message, ".agentcomm.a2a.rpc.Entry"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("agentcomm.a2a.rpc.Status")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("agentcomm.a2a.rpc.ErrorInfo")),
    )


_STATUS_CLASSES: tuple[Any, Any] | None = None


def _error_info(trailers: Any) -> tuple[str | None, dict[str, str] | None]:
    """The ``ErrorInfo`` reason and metadata in a call's trailing metadata, if any."""
    global _STATUS_CLASSES
    raw = None
    for key, value in trailers or ():
        if key == _STATUS_DETAILS and isinstance(value, bytes):
            raw = value
            break
    if raw is None:
        return None, None
    if _STATUS_CLASSES is None:
        _STATUS_CLASSES = _status_classes()
    status_cls, info_cls = _STATUS_CLASSES
    try:
        status = status_cls.FromString(raw)
        for detail in status.details:
            if detail.type_url == _ERROR_INFO_TYPE:
                info = info_cls.FromString(detail.value)
                return info.reason or None, {e.key: e.value for e in info.metadata}
    except DecodeError:
        return None, None
    return None, None


class GRPCBinding:
    """A2A over gRPC (``lf.a2a.v1.A2AService``); see the module docstring.

    Args:
        context: The interface, service parameters and transport options.

    Raises:
        ConfigError: The interface URL is not a gRPC address; a bad option.
        SecurityError: Plain text to a non-loopback host (GRPCClient's policy).
    """

    def __init__(self, context: BindingContext) -> None:
        self.context = context
        options: dict[str, Any] = {
            "max_retries": 0,  # UNAVAILABLE may come after the agent got the message
            "timeout_seconds": context.timeout or 0,
        }
        options.update((k, v) for k, v in context.options.items() if k in _GRPC_FIELDS)
        metadata = {**dict(context.options.get("headers") or {}), **context.service_params}
        self._client = GRPCClient(
            grpc_target(context.url),
            proto_files=[PROTO_FILE],
            metadata={k.lower(): str(v) for k, v in metadata.items()},
            auth=context.options.get("auth"),
            max_message_length=context.max_message_size,
            **options,
        )
        self._schema: Schema | None = None

    async def open(self) -> None:
        """Compile the ``.proto`` (once per process) and open the channel."""
        # Compiled here first: GRPCClient then takes the same cached schema, so the message
        # classes built below are the ones it serialises.
        self._schema = await asyncio.to_thread(schema_from_protos, [PROTO_FILE])
        await self._client.connect()

    async def close(self) -> None:
        """Close the channel and cancel every call in flight (safe twice)."""
        await self._client.close()

    # -- edges ---------------------------------------------------------------------------

    def _request(self, method: str, request: dict[str, Any]) -> Any:
        assert self._schema is not None, "GRPCBinding used before open()"
        cls = self._schema.method(SERVICE, method).request_type
        try:
            return json_format.ParseDict(request, cls())
        except json_format.ParseError as exc:
            raise errors.ConfigError(
                f"{method}: the request does not fit the proto: {exc}"
            ) from exc

    def _error(self, exc: errors.CommunicationError, method: str) -> errors.CommunicationError:
        """Our error for a failed call: the A2A error, the auth error, or as GRPCClient said."""
        cause = exc.__cause__
        status = getattr(exc, "remote_code", None)
        if isinstance(exc, errors.AuthenticationError) or status in _AUTH_STATUSES:
            code = status or "UNAUTHENTICATED"
            message = f"{method}: the agent refused the credentials (gRPC {code})"
            if self.context.auth_hint:
                message += f"; {self.context.auth_hint}"
            return A2AAuthError(message, status_code=code)
        if not isinstance(exc, errors.RemoteError) or not isinstance(status, str):
            return exc
        rpc_error: Any = cause
        trailers = rpc_error.trailing_metadata() if hasattr(cause, "trailing_metadata") else None
        reason, metadata = _error_info(trailers)
        details = rpc_error.details() if hasattr(cause, "details") else str(exc.data or "")
        return from_grpc_status(status, details or "", reason=reason, data=metadata, what=method)

    async def _unary(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        message = self._request(method, request)
        try:
            reply = await self._client.call(
                SERVICE, method, message, as_message=True, timeout=self.context.timeout
            )
        except errors.CommunicationError as exc:
            err = self._error(exc, method)
            if err is exc:
                raise
            raise err from exc
        result: dict[str, Any] = json_format.MessageToDict(reply)
        return result

    async def _stream(self, method: str, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        message = self._request(method, request)
        silence = self.context.stream_timeout
        stream = self._client.stream_call(SERVICE, method, message, as_message=True, timeout=None)
        try:
            while True:
                try:
                    if silence is None:
                        reply = await anext(stream)
                    else:
                        async with asyncio.timeout(silence):
                            reply = await anext(stream)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise errors.TimeoutError(
                        f"{method}: no event from {redact_url(self.context.url)} for {silence} s"
                    ) from exc
                except errors.CommunicationError as exc:
                    err = self._error(exc, method)
                    if err is exc:
                        raise
                    raise err from exc
                yield stream_response_dict(reply)
        finally:
            await stream.aclose()

    # -- the operations ------------------------------------------------------------------

    async def send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        """``SendMessage``."""
        return await self._unary("SendMessage", request)

    def send_streaming_message(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``SendStreamingMessage``: ``StreamResponse`` dicts."""
        return self._stream("SendStreamingMessage", request)

    async def get_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTask``."""
        return await self._unary("GetTask", request)

    async def cancel_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CancelTask``."""
        return await self._unary("CancelTask", request)

    def subscribe_to_task(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``SubscribeToTask``: the task, then its updates."""
        return self._stream("SubscribeToTask", request)

    async def list_tasks(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTasks``."""
        return await self._unary("ListTasks", request)

    async def get_extended_agent_card(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetExtendedAgentCard``."""
        return await self._unary("GetExtendedAgentCard", request)

    async def create_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CreateTaskPushNotificationConfig``."""
        return await self._unary("CreateTaskPushNotificationConfig", request)

    async def get_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTaskPushNotificationConfig``."""
        return await self._unary("GetTaskPushNotificationConfig", request)

    async def list_push_configs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTaskPushNotificationConfigs``."""
        return await self._unary("ListTaskPushNotificationConfigs", request)

    async def delete_push_config(self, request: dict[str, Any]) -> None:
        """``DeleteTaskPushNotificationConfig``."""
        await self._unary("DeleteTaskPushNotificationConfig", request)

    def __repr__(self) -> str:
        return f"<GRPCBinding {redact_url(self.context.url)}>"
