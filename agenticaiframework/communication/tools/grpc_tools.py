"""The ``grpc`` call template on :class:`~agenticaiframework.communication.GRPCClient`.

Registering opens one GRPCClient for the manual (server reflection, or the
template's ``proto_files``) and turns every unary and server-streaming method
into a tool ``<manual>.<Service>.<Method>`` whose input and output schemas are
the JSON Schemas of :meth:`GRPCClient.describe`. Calls send the arguments as
the request message; a server-streaming method yields each reply through
``call_tool_streaming`` (``call_tool`` returns them as a list). A status other
than OK raises our error with the status name in ``remote_code``. The
reflection and health services are left out, and client-streaming methods are
reported and left out (a tool call has one argument object).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..config import GRPCConfig
from .base import Discovery, Transport, connect_cached
from .manual import Manual, Tool
from .templates import CallTemplate, GrpcCallTemplate, auth_from_utcp

if TYPE_CHECKING:
    from ..grpc import GRPCClient

__all__ = ["GrpcTransport"]

_SKIPPED_SERVICES = ("grpc.reflection.", "grpc.health.")


class GrpcTransport(Transport):
    """``grpc`` manuals: one GRPCClient per manual and endpoint."""

    type_name = "grpc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, dict[str, GRPCClient]] = {}

    async def _client(self, manual_name: str, template: GrpcCallTemplate) -> GRPCClient:
        from ..grpc import GRPCClient

        key = codecs.dumps(
            [
                template.target,
                template.secure,
                list(template.proto_files),
                list(template.proto_include_paths),
                sorted(template.metadata.items()),
                sorted((template.auth or {}).items()),
            ]
        )
        per_manual = self._clients.setdefault(manual_name, {})
        client = per_manual.get(key)
        if client is not None and not client.is_closed:
            return client
        base = self.context.http_config
        allow = self.context.allow_insecure or base.allow_insecure
        config = GRPCConfig(
            target=template.target,
            secure=template.secure,
            proto_files=template.proto_files,
            proto_include_paths=template.proto_include_paths,
            metadata=template.metadata,
            auth=auth_from_utcp(template.auth, allow_insecure=allow),
            timeout_seconds=template.timeout,
            allow_insecure=allow,
            root_certificates=base.ca_certs,
        )
        client = GRPCClient(config=config)
        return await connect_cached(per_manual, key, client, client)

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """Describe the server and make one tool per method."""
        assert isinstance(template, GrpcCallTemplate)
        client = await self._client(manual_name, template)
        described = await client.describe()
        base = template.to_dict()
        tools: list[Tool] = []
        problems: list[str] = []
        for service in described["services"]:
            full = service["name"]
            if full.startswith(_SKIPPED_SERVICES):
                continue
            if (
                template.services
                and full not in template.services
                and (service["short_name"] not in template.services)
            ):
                continue
            for method in service["methods"]:
                if method["client_streaming"]:
                    problems.append(
                        f"{full}/{method['name']}: client-streaming methods are not tools; left out"
                    )
                    continue
                tags = [service["short_name"], "grpc"]
                if method["server_streaming"]:
                    tags.append("streaming")
                tools.append(
                    Tool(
                        name=f"{service['short_name']}.{method['name']}",
                        description=method.get("description") or service.get("description") or "",
                        inputs=dict(method["request_schema"]),
                        outputs=dict(method["response_schema"]),
                        tags=tuple(tags),
                        tool_call_template={
                            **base,
                            "service": full,
                            "method": method["name"],
                            "server_streaming": bool(method["server_streaming"]),
                        },
                    )
                )
        manual = Manual(
            info={"target": template.target, "source": described.get("source")}, tools=tuple(tools)
        )
        return Discovery(manual=manual, problems=tuple(problems))

    async def deregister_manual(self, manual_name: str) -> None:
        """Close the manual's channels."""
        for client in self._clients.pop(manual_name, {}).values():
            await client.close()

    @staticmethod
    def _names(tool: Tool, template: GrpcCallTemplate) -> tuple[str, str]:
        if template.service and template.method:
            return template.service, template.method
        service, _, method = tool.name.rpartition(".")
        return service.rsplit(".", 1)[-1], method

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """A unary call (a streaming method's replies come back as a list)."""
        assert isinstance(template, GrpcCallTemplate)
        if template.raw.get("server_streaming"):
            return [r async for r in self.call_tool_streaming(manual_name, tool, template, args)]
        client = await self._client(manual_name, template)
        service, method = self._names(tool, template)
        return await client.call(service, method, dict(args), timeout=template.timeout or None)

    async def call_tool_streaming(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """Yield each reply of a server-streaming method (one for unary)."""
        assert isinstance(template, GrpcCallTemplate)
        if not template.raw.get("server_streaming"):
            yield await self.call_tool(manual_name, tool, template, args)
            return
        client = await self._client(manual_name, template)
        service, method = self._names(tool, template)
        async with client.stream_call(
            service, method, dict(args), timeout=template.timeout or None
        ) as replies:
            async for reply in replies:
                yield reply

    async def close(self) -> None:
        """Close every channel still open."""
        for name in list(self._clients):
            await self.deregister_manual(name)
