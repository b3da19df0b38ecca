"""gRPC descriptors: .proto files compiled in memory, and the service index.

:func:`compile_protos` runs grpcio-tools' bundled protoc on .proto files and
returns the ``FileDescriptorSet`` (imports included); results are cached per
(files, include paths, modification times). :class:`Schema` turns a set of
``FileDescriptorProto`` (from protoc or from server reflection) into a private
descriptor pool and indexes its services and methods, so a call can name a
service by short name (``AgentService``) or full name (``agents.v1.AgentService``).

Only :func:`compile_protos` touches the file system; the rest does no I/O.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

from ..core.errors import ConfigError

__all__ = [
    "CALL_SHAPES",
    "MethodInfo",
    "Schema",
    "compile_protos",
    "schema_from_protos",
    "well_known_include",
]

CALL_SHAPES = {
    (False, False): ("unary", "call"),
    (False, True): ("server_streaming", "stream_call"),
    (True, False): ("client_streaming", "stream_send"),
    (True, True): ("bidi_streaming", "bidirectional_stream"),
}
"""(client_streaming, server_streaming) -> (shape name, GRPCClient method to use)."""

_cache: dict[tuple[Any, ...], Schema] = {}
_cache_lock = threading.Lock()


def well_known_include() -> str:
    """The directory of the well-known .proto files bundled with grpcio-tools."""
    import grpc_tools

    return os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")


def _protoc_error(files: Sequence[str], includes: Sequence[str]) -> str:
    """Ask grpcio-tools for protoc's error text (``main`` only prints it).

    Args:
        files: File names relative to the include roots.
        includes: The include roots.
    """
    from grpc_tools import _protoc_compiler

    for rel in files:
        try:
            _protoc_compiler.get_protos(rel.encode(), [i.encode() for i in includes])
        except Exception as exc:  # protoc's own error type; we only want its text
            return str(exc)
    return "protoc failed (see its output on stderr)"


def _relative(path: str, includes: Sequence[str]) -> str:
    for inc in includes:
        rel = os.path.relpath(path, inc)
        if not rel.startswith(".."):
            return rel
    return path


def _layout(
    proto_files: Sequence[str], include_paths: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """Absolute files, include roots, and each file's name as protoc sees it."""
    files = [os.path.abspath(p) for p in proto_files]
    includes: list[str] = []
    for inc in [*map(os.path.abspath, include_paths), *(os.path.dirname(p) for p in files)]:
        if inc not in includes:
            includes.append(inc)
    includes.append(well_known_include())
    return files, includes, [_relative(p, includes) for p in files]


def compile_protos(
    proto_files: Sequence[str], include_paths: Sequence[str] = ()
) -> descriptor_pb2.FileDescriptorSet:
    """Compile .proto files into a FileDescriptorSet in memory (blocking).

    Args:
        proto_files: The .proto files.
        include_paths: Extra import roots; each file's own directory and the
            well-known types are always searched.

    Returns:
        The descriptor set, dependencies first, source comments included.

    Raises:
        ConfigError: A file is missing or does not compile (protoc's message).
    """
    files, includes, names = _layout(proto_files, include_paths)
    for path in files:
        if not os.path.isfile(path):
            raise ConfigError(f"proto_files: no such file {path!r}")
    from grpc_tools import protoc  # imported late: it installs import hooks

    with tempfile.TemporaryDirectory(prefix="agentcomm-protoc-") as tmp:
        out = os.path.join(tmp, "descriptors.pb")
        args = [
            "protoc",
            *(f"-I{inc}" for inc in includes),
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            *names,
        ]
        if protoc.main(args) != 0 or not os.path.exists(out):
            raise ConfigError(f"proto_files: cannot compile: {_protoc_error(names, includes)}")
        with open(out, "rb") as fh:
            return descriptor_pb2.FileDescriptorSet.FromString(fh.read())


def schema_from_protos(proto_files: Sequence[str], include_paths: Sequence[str] = ()) -> Schema:
    """Compile (or take from the cache) the schema of some .proto files (blocking).

    Args:
        proto_files: The .proto files.
        include_paths: Extra import roots.

    Returns:
        The schema with the services those files define (not their imports').

    Raises:
        ConfigError: A file is missing or does not compile.
    """
    if isinstance(proto_files, str):
        proto_files = (proto_files,)
    if not proto_files:
        raise ConfigError("proto_files: at least one .proto file is needed")
    files, _, names = _layout(proto_files, include_paths)
    key: tuple[Any, ...] = (
        tuple(files),
        tuple(include_paths),
        tuple(os.stat(p).st_mtime_ns if os.path.exists(p) else 0 for p in files),
    )
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    fds = compile_protos(files, include_paths)
    schema = Schema(fds.file, service_files=names, source="proto")
    with _cache_lock:
        _cache[key] = schema
    return schema


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """One RPC method, ready to call.

    Attributes:
        service: Full service name (``agents.v1.AgentService``).
        name: Method name (``ExecuteTask``).
        path: The wire path (``/agents.v1.AgentService/ExecuteTask``).
        client_streaming: Whether the client sends a stream.
        server_streaming: Whether the server answers with a stream.
        request_type: The request message class.
        response_type: The response message class.
        descriptor: The method descriptor.
        description: The method's leading comment, when known.
    """

    service: str
    name: str
    path: str
    client_streaming: bool
    server_streaming: bool
    request_type: Any
    response_type: Any
    descriptor: MethodDescriptor
    description: str = ""

    @property
    def shape(self) -> str:
        """``unary``, ``server_streaming``, ``client_streaming`` or ``bidi_streaming``."""
        return CALL_SHAPES[(self.client_streaming, self.server_streaming)][0]

    @property
    def client_method(self) -> str:
        """The GRPCClient method that makes this kind of call."""
        return CALL_SHAPES[(self.client_streaming, self.server_streaming)][1]


class Schema:
    """A private descriptor pool plus an index of services and methods.

    Args:
        files: FileDescriptorProtos, each after the files it imports
            (out-of-order input is sorted).
        service_files: Names of the files whose services are offered
            (default: every file's).
        services: Full names of the services offered (default: all in
            ``service_files``); used with reflection's ``list_services``.
        source: ``proto`` or ``reflection`` (for messages and ``describe()``).

    Raises:
        ConfigError: The descriptors are inconsistent (a missing import...).
    """

    def __init__(
        self,
        files: Iterable[descriptor_pb2.FileDescriptorProto],
        *,
        service_files: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
        source: str = "proto",
    ) -> None:
        self.source = source
        self.pool = descriptor_pool.DescriptorPool()
        ordered = _topological(list(files))
        comments: dict[str, str] = {}
        for fdp in ordered:
            try:
                self.pool.Add(fdp)
            except (TypeError, ValueError, KeyError) as exc:
                raise ConfigError(f"descriptors: cannot load {fdp.name!r}: {exc}") from exc
            comments.update(_comments(fdp))
        self.comments = comments
        wanted_files = set(service_files) if service_files is not None else None
        wanted_services = set(services) if services is not None else None
        self.services: dict[str, ServiceDescriptor] = {}
        for fdp in ordered:
            if wanted_files is not None and fdp.name not in wanted_files:
                continue
            for svc in fdp.service:
                full = f"{fdp.package}.{svc.name}" if fdp.package else svc.name
                if wanted_services is not None and full not in wanted_services:
                    continue
                self.services[full] = self.pool.FindServiceByName(full)
        self._short: dict[str, list[str]] = {}
        for full in self.services:
            self._short.setdefault(full.rsplit(".", 1)[-1], []).append(full)
        self._methods: dict[tuple[str, str], MethodInfo] = {}

    def service_names(self) -> list[str]:
        """Full names of the services offered, sorted."""
        return sorted(self.services)

    def resolve_service(self, service: str) -> ServiceDescriptor:
        """Find a service by full or short name.

        Args:
            service: ``agents.v1.AgentService`` or ``AgentService``.

        Returns:
            The service descriptor.

        Raises:
            ConfigError: No such service, or the short name is ambiguous;
                the message lists the services that exist.
        """
        found = self.services.get(service)
        if found is not None:
            return found
        candidates = self._short.get(service, [])
        if len(candidates) == 1:
            return self.services[candidates[0]]
        known = ", ".join(self.service_names()) or "none"
        if candidates:
            raise ConfigError(
                f"service: {service!r} is ambiguous; use one of {', '.join(sorted(candidates))}"
            )
        raise ConfigError(f"service: unknown service {service!r}; services: {known}")

    def method(self, service: str, method: str) -> MethodInfo:
        """Find a method and its message classes (cached).

        Args:
            service: Full or short service name.
            method: Method name.

        Returns:
            The method, ready to call.

        Raises:
            ConfigError: Unknown service or method; the message lists what exists.
        """
        key = (service, method)
        info = self._methods.get(key)
        if info is not None:
            return info
        svc = self.resolve_service(service)
        desc = svc.methods_by_name.get(method)
        if desc is None:
            known = ", ".join(m.name for m in svc.methods) or "none"
            raise ConfigError(f"method: {svc.full_name} has no method {method!r}; methods: {known}")
        info = MethodInfo(
            service=svc.full_name,
            name=desc.name,
            path=f"/{svc.full_name}/{desc.name}",
            client_streaming=bool(desc.client_streaming),
            server_streaming=bool(desc.server_streaming),
            request_type=self.message_class(desc.input_type),
            response_type=self.message_class(desc.output_type),
            descriptor=desc,
            description=self.comments.get(f"{svc.full_name}.{desc.name}", ""),
        )
        self._methods[key] = info
        return info

    def methods(self, service: str) -> list[MethodInfo]:
        """Every method of a service, in declaration order.

        Args:
            service: Full or short service name.

        Returns:
            The methods.
        """
        svc = self.resolve_service(service)
        return [self.method(svc.full_name, m.name) for m in svc.methods]

    @staticmethod
    def message_class(desc: Descriptor) -> Any:
        """The Python class of a message descriptor (from this pool)."""
        return message_factory.GetMessageClass(desc)


def _topological(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> list[descriptor_pb2.FileDescriptorProto]:
    by_name = {f.name: f for f in files}
    done: set[str] = set()
    out: list[descriptor_pb2.FileDescriptorProto] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in done or name not in by_name:
            return
        if name in trail:
            raise ConfigError(f"descriptors: import cycle through {name!r}")
        for dep in by_name[name].dependency:
            visit(dep, (*trail, name))
        done.add(name)
        out.append(by_name[name])

    for f in files:
        visit(f.name, ())
    return out


def _comments(fdp: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Leading comments of services (path 6,i) and methods (6,i,2,j), by full name."""
    prefix = f"{fdp.package}." if fdp.package else ""
    out: dict[str, str] = {}
    for loc in fdp.source_code_info.location:
        path = list(loc.path)
        text = loc.leading_comments.strip()
        if not text or not path or path[0] != 6:
            continue
        if len(path) == 2:
            out[prefix + fdp.service[path[1]].name] = text
        elif len(path) == 4 and path[2] == 2:
            svc = fdp.service[path[1]]
            out[f"{prefix}{svc.name}.{svc.method[path[3]].name}"] = text
    return out
