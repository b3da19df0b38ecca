"""Descriptors from a server's reflection service (v1, falling back to v1alpha).

One bidirectional ``ServerReflectionInfo`` call lists the services, then asks
for the file defining each one and for any imported file not sent yet. The
v1 and v1alpha messages are identical on the wire, so grpcio-reflection's
v1alpha classes serve both paths. gRPC errors are left to the caller's single
translation boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from ._grpc_descriptors import Schema
from .errors import ProtocolError

__all__ = ["REFLECTION_PATHS", "load_schema"]

REFLECTION_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
_HIDDEN_PREFIX = "grpc.reflection."


async def load_schema(
    channel: grpc.aio.Channel,
    *,
    timeout: float | None,
    metadata: Sequence[tuple[str, str]] | None,
) -> Schema:
    """Load every service the server lists, with the files they need.

    Args:
        channel: An open channel.
        timeout: Deadline of the whole exchange, in seconds.
        metadata: Call metadata (auth).

    Returns:
        A schema of the listed services (the reflection service itself left out).

    Raises:
        grpc.aio.AioRpcError: The server failed the call (UNIMPLEMENTED on
            both versions when it offers no reflection).
        ProtocolError: The server answered with an error or with nonsense.
    """
    last: grpc.aio.AioRpcError | None = None
    for path in REFLECTION_PATHS:
        try:
            return await _load(channel, path, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            last = exc
    assert last is not None
    raise last


async def _load(
    channel: grpc.aio.Channel,
    path: str,
    *,
    timeout: float | None,
    metadata: Sequence[tuple[str, str]] | None,
) -> Schema:
    stub = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = stub(timeout=timeout, metadata=metadata)
    try:
        reply = await _ask(call, reflection_pb2.ServerReflectionRequest(list_services=""))
        services = [
            s.name
            for s in reply.list_services_response.service
            if not s.name.startswith(_HIDDEN_PREFIX)
        ]
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        defined: set[str] = set()
        for name in services:
            if name in defined:
                continue
            reply = await _ask(
                call, reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)
            )
            _collect(reply, files, defined)
        missing = _missing(files)
        while missing:
            for dep in missing:
                reply = await _ask(
                    call, reflection_pb2.ServerReflectionRequest(file_by_filename=dep)
                )
                _collect(reply, files, defined)
            still = _missing(files)
            if still & missing:
                raise ProtocolError(f"reflection: server did not send {sorted(still & missing)}")
            missing = still
        await call.done_writing()
    finally:
        call.cancel()
    return Schema(files.values(), services=services, source="reflection")


async def _ask(call: Any, request: Any) -> Any:
    await call.write(request)
    reply = await call.read()
    if reply is grpc.aio.EOF:
        raise ProtocolError("reflection: server closed the stream early")
    if reply.HasField("error_response"):
        err = reply.error_response
        raise ProtocolError(
            f"reflection: server refused {request.WhichOneof('message_request')} "
            f"{getattr(request, request.WhichOneof('message_request') or 'host')!r}: "
            f"{err.error_message} (code {err.error_code})"
        )
    return reply


def _collect(
    reply: Any, files: dict[str, descriptor_pb2.FileDescriptorProto], defined: set[str]
) -> None:
    for raw in reply.file_descriptor_response.file_descriptor_proto:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
        if fdp.name in files:
            continue
        files[fdp.name] = fdp
        prefix = f"{fdp.package}." if fdp.package else ""
        defined.update(prefix + svc.name for svc in fdp.service)


def _missing(files: dict[str, descriptor_pb2.FileDescriptorProto]) -> set[str]:
    return {dep for fdp in files.values() for dep in fdp.dependency if dep not in files}
