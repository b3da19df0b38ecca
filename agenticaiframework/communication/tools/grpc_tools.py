"""The ``grpc`` call template on :class:`~agenticaiframework.communication.GRPCClient`.

Registering opens one GRPCClient for the manual (server reflection, or the
template's ``proto_files``) and turns every method, of every shape, into a
tool ``<manual>.<Service>.<Method>`` whose input and output schemas are the
JSON Schemas of :meth:`GRPCClient.describe`:

- unary: the arguments are the request message; the response comes back;
- server streaming: the same request; ``call_tool_streaming`` yields each
  response as it arrives, ``call_tool`` returns them as a list;
- client streaming: the arguments are ``{"requests": [<message>, ...]}``
  (input schema: an array of the request schema), sent in order; the one
  response comes back. Arguments without ``requests`` are one message, sent
  as a one-item list;
- bidirectional: the requests as for client streaming; the responses as for
  server streaming.

A status other than OK raises our error with the status name in
``remote_code``. The reflection and health services are left out. A tool
template written by hand that names ``service`` and ``method`` but not the
shape (``client_streaming``/``server_streaming``) gets it from the server's
schema on its first call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core import codecs
from ..core.config import GRPCConfig
from ..core.errors import ConfigError
from .base import Discovery, Transport, connect_cached
from .manual import Manual, Tool
from .templates import CallTemplate, GrpcCallTemplate, auth_from_utcp

if TYPE_CHECKING:
    from ..grpc.client import GRPCClient

__all__ = ["GrpcTransport", "request_messages", "requests_schema"]

_SKIPPED_SERVICES = ("grpc.reflection.", "grpc.health.")

Shape = tuple[bool, bool]
"""(client_streaming, server_streaming) of a method."""


def requests_schema(request_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The input schema of a client-streaming or bidirectional tool.

    Args:
        request_schema: The JSON Schema of one request message.

    Returns:
        ``{"type": "object", "properties": {"requests": {"type": "array",
        "items": <request schema>}}}``.
    """
    return {
        "type": "object",
        "properties": {
            "requests": {
                "type": "array",
                "items": dict(request_schema),
                "description": "The request messages, sent in this order.",
            }
        },
    }


def request_messages(tool_name: str, args: Mapping[str, Any]) -> list[Any]:
    """The request messages of a client-streaming or bidirectional call.

    Args:
        tool_name: For the error message.
        args: ``{"requests": [...]}``, or the fields of one message.

    Returns:
        The messages to send, in order.

    Raises:
        ConfigError: ``requests`` is given alone but is not a list.
    """
    if len(args) == 1 and "requests" in args:
        requests = args["requests"]
        if not isinstance(requests, list):
            raise ConfigError(
                f"tool {tool_name!r}: 'requests' must be a list of request messages, "
                f"got {type(requests).__name__} (to send one message that has a field "
                "'requests', wrap it: {'requests': [message]})"
            )
        return list(requests)
    return [dict(args)]


class GrpcTransport(Transport):
    """``grpc`` manuals: one GRPCClient per manual and endpoint."""

    type_name = "grpc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, dict[str, GRPCClient]] = {}
        # per manual, per client: the shapes of the methods, for templates without them
        self._shapes: dict[str, dict[GRPCClient, dict[tuple[str, str], Shape]]] = {}

    async def _client(self, manual_name: str, template: GrpcCallTemplate) -> GRPCClient:
        from ..grpc.client import GRPCClient

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
                client_streaming = bool(method["client_streaming"])
                server_streaming = bool(method["server_streaming"])
                tags = [service["short_name"], "grpc"]
                if server_streaming:
                    tags.append("streaming")
                inputs = (
                    requests_schema(method["request_schema"])
                    if client_streaming
                    else dict(method["request_schema"])
                )
                tools.append(
                    Tool(
                        name=f"{service['short_name']}.{method['name']}",
                        description=method.get("description") or service.get("description") or "",
                        inputs=inputs,
                        outputs=dict(method["response_schema"]),
                        tags=tuple(tags),
                        tool_call_template={
                            **base,
                            "service": full,
                            "method": method["name"],
                            "client_streaming": client_streaming,
                            "server_streaming": server_streaming,
                        },
                    )
                )
        manual = Manual(
            info={"target": template.target, "source": described.get("source")}, tools=tuple(tools)
        )
        return Discovery(manual=manual)

    async def deregister_manual(self, manual_name: str) -> None:
        """Close the manual's channels."""
        self._shapes.pop(manual_name, None)
        for client in self._clients.pop(manual_name, {}).values():
            await client.close()

    @staticmethod
    def _names(tool: Tool, template: GrpcCallTemplate) -> tuple[str, str]:
        if template.service and template.method:
            return template.service, template.method
        service, _, method = tool.name.rpartition(".")
        return service.rsplit(".", 1)[-1], method

    async def _shape(
        self,
        manual_name: str,
        client: GRPCClient,
        template: GrpcCallTemplate,
        names: tuple[str, str],
    ) -> Shape:
        raw = template.raw
        if "client_streaming" in raw or "server_streaming" in raw:
            return bool(raw.get("client_streaming")), bool(raw.get("server_streaming"))
        per_client = self._shapes.setdefault(manual_name, {})
        shapes = per_client.get(client)
        if shapes is None:
            shapes = {}
            for service in (await client.describe())["services"]:
                for method in service["methods"]:
                    shape = (bool(method["client_streaming"]), bool(method["server_streaming"]))
                    shapes[(service["name"], method["name"])] = shape
                    shapes.setdefault((service["short_name"], method["name"]), shape)
            per_client[client] = shapes
        # unknown here: let the call itself name what is missing
        return shapes.get(names, (False, False))

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """Call the method; a server-streaming or bidirectional one's responses as a list."""
        assert isinstance(template, GrpcCallTemplate)
        client = await self._client(manual_name, template)
        service, method = names = self._names(tool, template)
        client_streaming, server_streaming = await self._shape(manual_name, client, template, names)
        timeout = template.timeout or None
        if server_streaming:
            return [r async for r in self.call_tool_streaming(manual_name, tool, template, args)]
        if client_streaming:
            requests = request_messages(tool.name, args)
            return await client.stream_send(service, method, requests, timeout=timeout)
        return await client.call(service, method, dict(args), timeout=timeout)

    async def call_tool_streaming(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> AsyncIterator[Any]:
        """Yield each response of a server-streaming or bidirectional method (one otherwise)."""
        assert isinstance(template, GrpcCallTemplate)
        client = await self._client(manual_name, template)
        service, method = names = self._names(tool, template)
        client_streaming, server_streaming = await self._shape(manual_name, client, template, names)
        if not server_streaming:
            yield await self.call_tool(manual_name, tool, template, args)
            return
        timeout = template.timeout or None
        if client_streaming:
            requests = request_messages(tool.name, args)
            stream = client.bidirectional_stream(service, method, requests, timeout=timeout)
        else:
            stream = client.stream_call(service, method, dict(args), timeout=timeout)
        async with stream as replies:
            async for reply in replies:
                yield reply

    async def close(self) -> None:
        """Close every channel still open."""
        for name in list(self._clients):
            await self.deregister_manual(name)
