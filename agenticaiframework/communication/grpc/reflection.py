"""Descriptors from a server's reflection service (v1, falling back to v1alpha).

The service list is asked in a unary-stream call (the question travels with
the call's headers, so a server without that version answers with its real
status); one bidirectional ``ServerReflectionInfo`` call then asks for the
file defining each service and for any imported file not sent yet. The v1 and
v1alpha messages are identical on the wire, so grpcio-reflection's v1alpha
classes serve both paths. gRPC errors are left to the caller's single
translation boundary.

Which version to use is learnt per target: a server that offers only v1alpha
answers v1 with UNIMPLEMENTED, and some report INTERNAL. Both codes fall
through to the next version, and the version that worked is tried first on
the next load from the same target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from ..core.errors import ProtocolError
from .descriptors import Schema

__all__ = ["REFLECTION_PATHS", "load_schema"]

REFLECTION_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
_HIDDEN_PREFIX = "grpc.reflection."
# A version the server may not offer: UNIMPLEMENTED, or INTERNAL from servers
# (and grpcio versions) that report a missing method that way.
_TRY_NEXT = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL})
_MAX_REMEMBERED = 256
_worked: dict[str, str] = {}
"""Target -> the reflection path that last worked there (oldest dropped first)."""


async def load_schema(
    channel: grpc.aio.Channel,
    *,
    timeout: float | None,
    metadata: Sequence[tuple[str, str]] | None,
    target: str | None = None,
) -> Schema:
    """Load every service the server lists, with the files they need.

    Args:
        channel: An open channel.
        timeout: Deadline of each version's exchange, in seconds.
        metadata: Call metadata (auth).
        target: The channel's target: the version that worked there is
            remembered and tried first next time.

    Returns:
        A schema of the listed services (the reflection service itself left out).

    Raises:
        grpc.aio.AioRpcError: The server failed the call: UNIMPLEMENTED on
            every version when it offers no reflection; a version's INTERNAL
            when the other version is not offered either; any other status
            at once.
        ProtocolError: The server answered with an error or with nonsense.
    """
    known = _worked.get(target) if target is not None else None
    paths = (
        REFLECTION_PATHS if known is None else (known, *(p for p in REFLECTION_PATHS if p != known))
    )
    failed: list[grpc.aio.AioRpcError] = []
    for path in paths:
        try:
            schema = await _load(channel, path, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _TRY_NEXT:
                raise
            failed.append(exc)
            continue
        if target is not None and known != path:
            _remember(target, path)
        return schema
    # No version worked: an INTERNAL is news, UNIMPLEMENTED everywhere means no reflection.
    raise next((e for e in failed if e.code() != grpc.StatusCode.UNIMPLEMENTED), failed[-1])


def _remember(target: str, path: str) -> None:
    _worked.pop(target, None)
    while len(_worked) >= _MAX_REMEMBERED:
        del _worked[next(iter(_worked))]
    _worked[target] = path


async def _load(
    channel: grpc.aio.Channel,
    path: str,
    *,
    timeout: float | None,
    metadata: Sequence[tuple[str, str]] | None,
) -> Schema:
    services = await _list_services(channel, path, timeout=timeout, metadata=metadata)
    stub = channel.stream_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = stub(timeout=timeout, metadata=metadata)
    try:
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


async def _list_services(
    channel: grpc.aio.Channel,
    path: str,
    *,
    timeout: float | None,
    metadata: Sequence[tuple[str, str]] | None,
) -> list[str]:
    # The first question goes out with the call's headers in one batch (a unary-stream
    # call), so a server without this reflection version answers with its real status.
    # Written on an open stream instead, it races the server's UNIMPLEMENTED: grpc.aio
    # then reports the failed write as INTERNAL and the real status is lost.
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    stub = channel.unary_stream(
        path,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = stub(request, timeout=timeout, metadata=metadata)
    try:
        reply = _checked(await call.read(), request)
    finally:
        call.cancel()
    return [
        s.name
        for s in reply.list_services_response.service
        if not s.name.startswith(_HIDDEN_PREFIX)
    ]


async def _ask(call: Any, request: Any) -> Any:
    await call.write(request)
    return _checked(await call.read(), request)


def _checked(reply: Any, request: Any) -> Any:
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
