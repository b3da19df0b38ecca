"""OpenAPI 3 (and Swagger 2) documents converted to UTCP tools (no I/O).

One tool per operation: named by ``operationId``, or ``<method>_<path>`` when
there is none. Path, query and header parameters and the JSON request body
(as the ``body`` argument) are merged into one input schema; ``$ref`` is
resolved within the document. Expansion is budgeted: a document whose
references expand to more than ``max_expanded_nodes`` JSON nodes (a
"billion laughs" of ``$ref`` or YAML aliases), or nest deeper than
:data:`MAX_EXPANSION_DEPTH`, is refused with
:class:`~agenticaiframework.communication.errors.ProtocolError`; a reference
to a schema that is being expanded (a recursive schema) is not expanded again
but left as ``{"$comment": "recursive reference ..."}``. Security schemes
become UTCP auth dicts whose secrets are ``${VAR}`` placeholders (``${<SCHEME>_API_KEY}``,
``${<SCHEME>_USERNAME}``/``_PASSWORD``, ``${<SCHEME>_CLIENT_ID}``/``_CLIENT_SECRET``)
to be filled from the client's variables, unless the manual's template gives
``auth_tools``, which is then used for every operation that needs auth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from ..core import codecs
from ..core.errors import ConfigError, ProtocolError, SecurityError
from ..core.security import is_local_address, redact_url
from .manual import Manual, SkippedTool, Tool

__all__ = [
    "DEFAULT_MAX_EXPANDED_NODES",
    "MAX_EXPANSION_DEPTH",
    "convert_openapi",
    "convert_openapi_parts",
    "is_openapi",
    "load_document",
]

_METHODS = ("get", "post", "put", "delete", "patch")

DEFAULT_MAX_EXPANDED_NODES = 200_000
"""Default budget of JSON objects and arrays one document may expand to.

About 50 MB and a fraction of a second of work; a document that needs more is
refused rather than allowed to take the memory and time of a ``$ref`` bomb.
"""

MAX_EXPANSION_DEPTH = 100
"""Deepest nesting of objects and arrays a document may expand to."""


def load_document(
    text: str,
    *,
    content_type: str = "",
    url: str = "",
    max_nodes: int = DEFAULT_MAX_EXPANDED_NODES,
) -> Any:
    """Parse a discovery response as JSON, or YAML when it says so.

    Blocking work for a large document: call it in a thread
    (``asyncio.to_thread``) from async code, as the tool client does.

    Args:
        text: The response body.
        content_type: Its Content-Type header.
        url: Where it came from (a ``.yaml``/``.yml`` suffix means YAML).
        max_nodes: Budget of objects and arrays a YAML document may stand
            for once its aliases are expanded.

    Returns:
        The decoded document.

    Raises:
        ProtocolError: The body is neither valid JSON nor valid YAML, nests
            too deeply, or its YAML aliases expand past ``max_nodes``.
    """
    path = urlsplit(url).path.lower()
    is_yaml = "yaml" in content_type.lower() or path.endswith((".yaml", ".yml"))
    where = f"the document from {redact_url(url)}" if url else "the document"
    if not is_yaml:
        try:
            return codecs.loads(text)
        except ProtocolError:
            if "json" in content_type.lower():
                raise
    try:
        # The pure-Python loader on purpose: libyaml's CSafeLoader crashes the
        # process (segmentation fault) on deeply nested input such as
        # "[" * 100_000, where this one raises RecursionError.
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{where} is neither JSON nor YAML: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError(f"{where} (YAML) nests too deeply") from exc
    # Aliases make a small YAML text stand for a huge tree, which later walks
    # (conversion, variable substitution) would expand: measure it once here.
    if isinstance(document, dict | list):
        _check_tree_size(document, max_nodes, where)
    return document


def _check_tree_size(document: Any, max_nodes: int, where: str) -> None:
    """Count the objects and arrays of ``document`` as a tree, within a budget."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ProtocolError(
                f"{where} expands to more than {max_nodes} objects and arrays "
                "(YAML aliases); refused"
            )
        if depth >= MAX_EXPANSION_DEPTH:
            raise ProtocolError(
                f"{where} nests deeper than {MAX_EXPANSION_DEPTH} levels "
                "(or its YAML aliases refer to themselves); refused"
            )
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def is_openapi(data: Any) -> bool:
    """Tell whether a document is an OpenAPI 3 / Swagger 2 description.

    Args:
        data: A decoded document.

    Returns:
        True when it has ``openapi`` or ``swagger`` and ``paths``.
    """
    return (
        isinstance(data, Mapping)
        and ("openapi" in data or "swagger" in data)
        and isinstance(data.get("paths"), Mapping)
    )


class _Converter:
    def __init__(
        self,
        spec: Mapping[str, Any],
        spec_url: str,
        manual_name: str,
        auth_tools: Mapping[str, Any] | None,
        source_is_remote: bool | None,
        max_nodes: int,
    ) -> None:
        self.spec = spec
        self.spec_url = spec_url
        self.manual_name = manual_name
        self.auth_tools = dict(auth_tools) if auth_tools else None
        if source_is_remote is None:
            host = urlsplit(spec_url).hostname if spec_url else None
            source_is_remote = host is not None and not is_local_address(host)
        self.source_is_remote = source_is_remote
        self.max_nodes = max_nodes
        self.nodes = 0
        self._targets: dict[str, Any] = {}
        self.problems: list[str] = []
        self.skipped: list[SkippedTool] = []

    # -- $ref ------------------------------------------------------------------

    def resolve(self, obj: Any, depth: int = 0, active: tuple[str, ...] = ()) -> Any:
        """``obj`` with every local ``$ref`` expanded, within the node and depth budget."""
        if depth > MAX_EXPANSION_DEPTH:
            raise ProtocolError(
                f"OpenAPI document {self._where()}: references nest deeper than "
                f"{MAX_EXPANSION_DEPTH} levels; refused"
            )
        # dict and list first: the abstract Mapping check costs more than the
        # rest of a step, and decoded documents are made of dicts and lists.
        if isinstance(obj, dict) or (
            not isinstance(obj, str | int | float | list) and isinstance(obj, Mapping)
        ):
            ref = obj.get("$ref")
            if isinstance(ref, str):
                if ref in active:
                    return {"$comment": f"recursive reference {ref} not expanded"}
                return self.resolve(self._lookup(ref), depth + 1, (*active, ref))
            self._count()
            return {k: self.resolve(v, depth + 1, active) for k, v in obj.items()}
        if isinstance(obj, list):
            self._count()
            return [self.resolve(v, depth + 1, active) for v in obj]
        return obj

    def deref(self, obj: Any) -> Any:
        """Follow ``$ref`` at the top of ``obj`` only (a path item or operation)."""
        seen: set[str] = set()
        while isinstance(obj, Mapping) and isinstance(obj.get("$ref"), str):
            ref = obj["$ref"]
            if ref in seen:
                self.problems.append(f"$ref {ref!r}: refers to itself")
                return {}
            seen.add(ref)
            obj = self._lookup(ref)
        return obj

    def _count(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ProtocolError(
                f"OpenAPI document {self._where()}: its $ref expansion exceeds "
                f"{self.max_nodes} objects and arrays (a reference bomb?); refused. "
                "Raise max_expanded_nodes if the document is genuine"
            )

    def _where(self) -> str:
        return redact_url(self.spec_url) if self.spec_url else repr(self.manual_name)

    def _lookup(self, ref: str) -> Any:
        try:
            return self._targets[ref]
        except KeyError:
            target = self._targets[ref] = self._find(ref)
            return target

    def _find(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            self.problems.append(f"$ref {ref!r}: only local references are supported")
            return {}
        node: Any = self.spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                self.problems.append(f"$ref {ref!r}: not found in the document")
                return {}
            node = node[part]
        return node

    # -- servers and auth --------------------------------------------------------

    def base_url(self) -> str:
        servers = self.spec.get("servers")
        if isinstance(servers, list) and servers and isinstance(servers[0], Mapping):
            server = servers[0]
            url = str(server.get("url", ""))
            for name, var in (server.get("variables") or {}).items():
                if isinstance(var, Mapping) and "default" in var:
                    url = url.replace("{" + name + "}", str(var["default"]))
            base = urljoin(self.spec_url, url) if self.spec_url else url
        elif "swagger" in self.spec and self.spec.get("host"):
            scheme = (self.spec.get("schemes") or ["https"])[0]
            base = f"{scheme}://{self.spec['host']}{self.spec.get('basePath', '')}"
        elif self.spec_url:
            parts = urlsplit(self.spec_url)
            base = f"{parts.scheme}://{parts.netloc}"
        else:
            raise ConfigError("openapi: no servers and no document URL to call against")
        host = urlsplit(base).hostname or ""
        if self.source_is_remote and is_local_address(host):
            raise SecurityError(
                f"OpenAPI document from {redact_url(self.spec_url)} declares the server "
                f"{redact_url(base)!r}, on this machine or a private network: a remote "
                "document may not point tools there"
            )
        return base

    def scheme_auth(self, scheme_name: str) -> dict[str, Any] | None:
        schemes = (self.spec.get("components") or {}).get("securitySchemes") or self.spec.get(
            "securityDefinitions", {}
        )
        scheme = self.resolve(schemes.get(scheme_name)) if isinstance(schemes, Mapping) else None
        if not isinstance(scheme, Mapping):
            return None
        # A leading "_" would make the variable name cross into another
        # manual's namespace (see manual.substitute), so it is dropped.
        prefix = re.sub(r"\W", "_", scheme_name).upper().lstrip("_") or "AUTH"
        kind = str(scheme.get("type", "")).lower()
        if kind == "apikey":
            return {
                "auth_type": "api_key",
                "api_key": f"${{{prefix}_API_KEY}}",
                "var_name": scheme.get("name", "X-Api-Key"),
                "location": scheme.get("in", "header"),
            }
        http_scheme = str(scheme.get("scheme", "")).lower()
        if kind == "basic" or (kind == "http" and http_scheme == "basic"):
            return {
                "auth_type": "basic",
                "username": f"${{{prefix}_USERNAME}}",
                "password": f"${{{prefix}_PASSWORD}}",
            }
        if kind == "http" and http_scheme == "bearer":
            return {
                "auth_type": "api_key",
                "api_key": f"Bearer ${{{prefix}_TOKEN}}",
                "var_name": "Authorization",
                "location": "header",
            }
        if kind == "oauth2":
            flows = scheme.get("flows") or {}
            flow = flows.get("clientCredentials") if isinstance(flows, Mapping) else None
            if flow is None and scheme.get("flow") in ("application", "clientCredentials"):
                flow = scheme
            if isinstance(flow, Mapping) and flow.get("tokenUrl"):
                token_url = urljoin(self.spec_url, str(flow["tokenUrl"]))
                scopes = flow.get("scopes") or {}
                return {
                    "auth_type": "oauth2",
                    "token_url": token_url,
                    "client_id": f"${{{prefix}_CLIENT_ID}}",
                    "client_secret": f"${{{prefix}_CLIENT_SECRET}}",
                    "scope": " ".join(scopes) or None,
                }
        return None

    def operation_auth(self, operation: Mapping[str, Any]) -> dict[str, Any] | None:
        requirements = operation.get("security", self.spec.get("security"))
        if not isinstance(requirements, list) or not requirements:
            return None
        if self.auth_tools is not None:
            return self.auth_tools
        for requirement in requirements:
            if not isinstance(requirement, Mapping):
                continue
            for scheme_name in requirement:
                auth = self.scheme_auth(str(scheme_name))
                if auth is not None:
                    return auth
        return None

    # -- operations ------------------------------------------------------------

    def inputs(
        self, path_item: Mapping[str, Any], operation: Mapping[str, Any], where: str = ""
    ) -> tuple[dict[str, Any], list[str], str | None, str]:
        params: dict[tuple[str, str], Mapping[str, Any]] = {}
        for source in (path_item.get("parameters"), operation.get("parameters")):
            for param in source or []:
                param = self.resolve(param)
                if isinstance(param, Mapping) and param.get("name"):
                    params[(str(param["name"]), str(param.get("in", "query")))] = param
        properties: dict[str, Any] = {}
        required: list[str] = []
        header_fields: list[str] = []
        body_field: str | None = None
        content_type = "application/json"
        for (name, where), param in params.items():
            if where == "cookie":
                self.problems.append(
                    f"{where}: parameter {name!r} in cookie: cookie parameters are not "
                    "supported; the tool is registered without it"
                )
                continue
            if where == "body":  # Swagger 2
                body_field = "body"
                schema = dict(param.get("schema") or {})
            else:
                schema = dict(param.get("schema") or {})
                for key in ("type", "items", "enum", "format"):
                    if key in param and key not in schema:
                        schema[key] = param[key]
                if where == "header":
                    header_fields.append(name)
            if param.get("description"):
                schema.setdefault("description", param["description"])
            key = "body" if where == "body" else name
            properties[key] = schema
            if param.get("required") or where == "path":
                required.append(key)
        request_body = self.resolve(operation.get("requestBody"))
        if isinstance(request_body, Mapping):
            content = request_body.get("content") or {}
            media = None
            for candidate in content:
                if "json" in candidate:
                    media = candidate
                    break
            if media is None and content:
                media = next(iter(content))
            if media is not None:
                content_type = str(media)
                schema = dict((content.get(media) or {}).get("schema") or {})
                if request_body.get("description"):
                    schema.setdefault("description", request_body["description"])
                body_field = "body"
                properties["body"] = schema
                if request_body.get("required"):
                    required.append("body")
        inputs: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            inputs["required"] = required
        return inputs, header_fields, body_field, content_type

    def outputs(self, operation: Mapping[str, Any]) -> dict[str, Any]:
        responses = operation.get("responses") or {}
        for status in ("200", "201", "202", "default"):
            response = self.resolve(
                responses.get(status) or responses.get(int(status) if status.isdigit() else status)
            )
            if isinstance(response, Mapping):
                content = response.get("content") or {}
                for media, body in content.items():
                    if "json" in media and isinstance(body, Mapping) and body.get("schema"):
                        return dict(body["schema"])
                if isinstance(response.get("schema"), Mapping):  # Swagger 2
                    return dict(response["schema"])
        return {}

    def convert(self) -> Manual:
        base = self.base_url().rstrip("/")
        tools: list[Tool] = []
        seen: set[str] = set()
        for path, raw_item in (self.spec.get("paths") or {}).items():
            path_item = self.deref(raw_item)
            if not isinstance(path_item, Mapping):
                continue
            for method in _METHODS:
                operation = self.deref(path_item.get(method))
                if not isinstance(operation, Mapping):
                    continue
                name = operation.get("operationId") or f"{method}_{path}"
                name = re.sub(r"[\W_]+", "_", str(name)).strip("_")
                if name in seen:
                    self.skipped.append(
                        SkippedTool(
                            name, f"{method.upper()} {path}: duplicate name, the first one is kept"
                        )
                    )
                    continue
                seen.add(name)
                inputs, header_fields, body_field, content_type = self.inputs(
                    path_item, operation, f"{method.upper()} {path}"
                )
                template: dict[str, Any] = {
                    "name": self.manual_name,
                    "call_template_type": "http",
                    "url": base + "/" + str(path).lstrip("/"),
                    "http_method": method.upper(),
                    "content_type": content_type,
                    "body_field": body_field,
                }
                if header_fields:
                    template["header_fields"] = header_fields
                auth = self.operation_auth(operation)
                if auth is not None:
                    template["auth"] = auth
                tags = [str(t) for t in operation.get("tags") or []]
                tools.append(
                    Tool(
                        name=name,
                        description=str(
                            operation.get("summary") or operation.get("description") or ""
                        ),
                        inputs=inputs,
                        outputs=self.outputs(operation),
                        tags=tuple(tags),
                        tool_call_template=template,
                    )
                )
        info = self.spec.get("info") or {}
        return Manual(
            manual_version=str(info.get("version", "1.0.0"))
            if isinstance(info, Mapping)
            else "1.0.0",
            info=dict(info) if isinstance(info, Mapping) else {},
            tools=tuple(tools),
        )


def convert_openapi(
    spec: Mapping[str, Any],
    *,
    spec_url: str = "",
    manual_name: str = "openapi",
    auth_tools: Mapping[str, Any] | None = None,
    source_is_remote: bool | None = None,
    max_expanded_nodes: int = DEFAULT_MAX_EXPANDED_NODES,
) -> tuple[Manual, list[str]]:
    """Convert an OpenAPI 3 (or Swagger 2) document into a UTCP manual.

    Blocking work for a large document: call it in a thread
    (``asyncio.to_thread``) from async code, as the tool client does.

    Args:
        spec: The decoded document.
        spec_url: Where it was fetched from (relative servers and token URLs
            resolve against it).
        manual_name: The manual's name, put in every generated call template.
        auth_tools: A UTCP auth dict given to every operation that needs auth.
        source_is_remote: Whether the document came from outside this
            machine and its private networks; such a document may not name a
            server on them. None: judged by the spelling of ``spec_url``'s
            host (the tool client passes what DNS said).
        max_expanded_nodes: Budget of objects and arrays the ``$ref``
            expansion of the whole document may produce.

    Returns:
        The manual and a list of problems (parts of the document left out:
        a parameter, a ``$ref`` that does not resolve, an operation whose
        name an earlier one has).

    Raises:
        ConfigError: No server URL can be worked out.
        SecurityError: A remote document points at this machine or a private network.
        ProtocolError: The expansion exceeds ``max_expanded_nodes`` or
            :data:`MAX_EXPANSION_DEPTH`.
    """
    manual, warnings, skipped = convert_openapi_parts(
        spec,
        spec_url=spec_url,
        manual_name=manual_name,
        auth_tools=auth_tools,
        source_is_remote=source_is_remote,
        max_expanded_nodes=max_expanded_nodes,
    )
    return manual, warnings + [str(s) for s in skipped]


def convert_openapi_parts(
    spec: Mapping[str, Any],
    *,
    spec_url: str = "",
    manual_name: str = "openapi",
    auth_tools: Mapping[str, Any] | None = None,
    source_is_remote: bool | None = None,
    max_expanded_nodes: int = DEFAULT_MAX_EXPANDED_NODES,
) -> tuple[Manual, list[str], list[SkippedTool]]:
    """:func:`convert_openapi`, with skipped operations kept apart from other problems.

    Args:
        spec: As for :func:`convert_openapi`.
        spec_url: As for :func:`convert_openapi`.
        manual_name: As for :func:`convert_openapi`.
        auth_tools: As for :func:`convert_openapi`.
        source_is_remote: As for :func:`convert_openapi`.
        max_expanded_nodes: As for :func:`convert_openapi`.

    Returns:
        The manual; the parts of registered tools that were left out (a
        parameter, a ``$ref`` that does not resolve), one line each; and the
        operations left out because an earlier one has their name.

    Raises:
        ConfigError: As for :func:`convert_openapi`.
        SecurityError: As for :func:`convert_openapi`.
        ProtocolError: As for :func:`convert_openapi`.
    """
    converter = _Converter(
        spec, spec_url, manual_name, auth_tools, source_is_remote, max_expanded_nodes
    )
    manual = converter.convert()
    return manual, converter.problems, converter.skipped
