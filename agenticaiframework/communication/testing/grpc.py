"""A gRPC server for tests from a ``.proto`` file and your servicer, with reflection and health.

No generated code: the ``.proto`` file is compiled to descriptors at run time
with grpcio-tools, each method of each service is bound to the method of the
same name on your servicer object (``async def ExecuteTask(self, request,
context)``; an async generator for server streaming; the request iterator
for client streaming), and message classes come from the same descriptors.
A method returns (or yields) a response message or a dict of its fields.
The server offers reflection (``grpc.reflection.v1alpha``) over those
descriptors and ``grpc.health.v1`` with every service ``SERVING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GRPCServer", "compile_proto", "serve_grpc_descriptors", "serve_grpc_proto"]


def compile_proto(
    proto_file: str | os.PathLike[str], include: Sequence[str | os.PathLike[str]] = ()
) -> bytes:
    """Compile a ``.proto`` file (and what it imports) to a serialized FileDescriptorSet.

    Args:
        proto_file: The file.
        include: More import folders (its own folder and the well-known
            types are always searched).

    Returns:
        The ``FileDescriptorSet`` bytes.

    Raises:
        RuntimeError: protoc failed (its message is on stderr).
    """
    from grpc_tools import protoc

    source = Path(proto_file).resolve()
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    with tempfile.TemporaryDirectory(prefix="agentcomm-proto-") as directory:
        out = Path(directory) / "descriptors.pb"
        args = [
            "protoc",
            f"-I{source.parent}",
            *(f"-I{Path(p).resolve()}" for p in include),
            f"-I{well_known}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            str(source),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"grpcio-tools could not compile {source}")
        return out.read_bytes()


@dataclass(frozen=True)
class GRPCServer:
    """A running server from :func:`serve_grpc_proto`.

    Attributes:
        target: ``127.0.0.1:<port>``, what a gRPC client dials.
        port: The port.
        messages: Message class by full name (``"demo.v1.TaskRequest"``), to
            build requests and replies.
    """

    target: str
    port: int
    messages: Mapping[str, Any]


def _reply(value: Any, response: Any) -> Any:
    """A dict returned by a servicer becomes the response message."""
    if isinstance(value, Mapping):
        from google.protobuf import json_format

        return json_format.ParseDict(value, response())
    return value


def _handler(method: Any, impl: Any, messages: Mapping[str, Any]) -> Any:
    import grpc

    request = messages[method.input_type.full_name]
    response = messages[method.output_type.full_name]
    if method.server_streaming:

        async def call(request_or_iterator: Any, context: Any) -> AsyncIterator[Any]:
            async for item in impl(request_or_iterator, context):
                yield _reply(item, response)

        factory = (
            grpc.stream_stream_rpc_method_handler
            if method.client_streaming
            else grpc.unary_stream_rpc_method_handler
        )
    else:

        async def call(request_or_iterator: Any, context: Any) -> Any:  # type: ignore[misc]
            return _reply(await impl(request_or_iterator, context), response)

        factory = (
            grpc.stream_unary_rpc_method_handler
            if method.client_streaming
            else grpc.unary_unary_rpc_method_handler
        )
    return factory(
        call,
        request_deserializer=request.FromString,
        response_serializer=response.SerializeToString,
    )


@contextlib.asynccontextmanager
async def serve_grpc_proto(
    proto_file: str | os.PathLike[str],
    servicers: Mapping[str, object],
    *,
    include: Sequence[str | os.PathLike[str]] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> AsyncIterator[GRPCServer]:
    """Serve the services of a ``.proto`` file on 127.0.0.1 and a free port.

    Args:
        proto_file: The ``.proto`` file.
        servicers: Full service name (``"demo.v1.AgentService"``) to the
            object whose methods implement it. A method the object lacks
            answers ``UNIMPLEMENTED``.
        include: More import folders for protoc.
        options: More ``grpc.aio.server`` channel options.

    Yields:
        The running server (stopped, calls in flight cancelled, when the block ends).

    Raises:
        ValueError: A service in ``servicers`` is not in the file.
        RuntimeError: protoc could not compile the file.
    """
    data = await asyncio.to_thread(compile_proto, proto_file, include)
    async with serve_grpc_descriptors(data, servicers, options=options) as server:
        yield server


@contextlib.asynccontextmanager
async def serve_grpc_descriptors(
    descriptor_set: bytes,
    servicers: Mapping[str, object],
    *,
    options: Sequence[tuple[str, Any]] = (),
) -> AsyncIterator[GRPCServer]:
    """Serve services from a compiled ``FileDescriptorSet`` (see :func:`compile_proto`).

    Args:
        descriptor_set: The serialized ``FileDescriptorSet``, imports included.
        servicers: Full service name to the object whose methods implement it.
        options: More ``grpc.aio.server`` channel options.

    Yields:
        The running server (stopped, calls in flight cancelled, when the block ends).

    Raises:
        ValueError: A service in ``servicers`` is not in the descriptors.
    """
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection, reflection_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    pool = descriptor_pool.DescriptorPool()
    for module in (health_pb2, reflection_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    loaded = {module.DESCRIPTOR.name for module in (health_pb2, reflection_pb2)}
    for file_proto in files.file:
        if file_proto.name not in loaded:
            pool.Add(file_proto)
    messages: dict[str, Any] = {}
    handlers = []
    for name, servicer in servicers.items():
        try:
            service = pool.FindServiceByName(name)
        except KeyError:
            raise ValueError(f"service {name!r} is not in the descriptors") from None
        methods = {}
        for method in service.methods:
            for message in (method.input_type, method.output_type):
                messages.setdefault(message.full_name, message_factory.GetMessageClass(message))
            impl = getattr(servicer, method.name, None)
            if impl is not None:
                methods[method.name] = _handler(method, impl, messages)
        handlers.append(grpc.method_handlers_generic_handler(name, methods))
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *options])
    server.add_generic_rpc_handlers(tuple(handlers))
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in servicers:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*servicers, health.SERVICE_NAME, reflection.SERVICE_NAME], server, pool=pool
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield GRPCServer(f"127.0.0.1:{port}", port, messages)
    finally:
        # A short grace lets calls still running end cleanly; with none, grpcio cancels
        # them and the clients' C core logs a GOAWAY line on stderr.
        await server.stop(grace=0.5)
