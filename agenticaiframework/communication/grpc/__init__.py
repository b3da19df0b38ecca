"""gRPC: :class:`GRPCClient` and :func:`generate_grpc_client` on grpc.aio.

``client.py`` is the client; ``descriptors.py`` compiles .proto files and
holds descriptor pools; ``reflection.py`` reads them from a server;
``convert.py`` turns messages into dicts and back.
"""

from .client import (
    UNSET,
    GeneratedGRPCClient,
    GRPCClient,
    MethodProxy,
    ResponseStream,
    ServiceProxy,
    generate_grpc_client,
    parse_target,
    translate_rpc_error,
)

__all__ = [
    "UNSET",
    "GRPCClient",
    "GeneratedGRPCClient",
    "MethodProxy",
    "ResponseStream",
    "ServiceProxy",
    "generate_grpc_client",
    "parse_target",
    "translate_rpc_error",
]
