"""The ``http`` call template on :class:`~agenticaiframework.communication.HTTPClient`.

Discovery GETs the manual URL (with the template's method, headers and auth)
and accepts a UTCP manual or an OpenAPI 3 / Swagger 2 document in JSON or
YAML. A call fills ``{name}`` path parameters from the arguments (URL-encoded,
never in the host), sends ``header_fields`` as headers, ``body_field`` as the
body and every other argument as a query parameter.

Each manual gets one HTTPClient per distinct auth, built from the tool
client's ``http_config`` with that auth; the auth goes only to the URL the
template names, and the HTTPClient drops it on a redirect to another origin.
The manual body is read up to the tool client's ``max_manual_size`` and each
result up to ``max_result_size`` (counted after decompression; past it,
:class:`~agenticaiframework.communication.errors.MessageTooLargeError`); the
document is parsed and converted in a thread, so a large one does not stall
the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from ..core import codecs, errors
from ..core.config import HTTPConfig, merge_config
from ..core.security import check_url, redact_url
from ..http.client import HTTPClient, HTTPResponse
from .base import Discovery, Transport
from .manual import Tool, is_utcp_manual, parse_manual_parts
from .openapi import convert_openapi_parts, is_openapi, load_document
from .remote import check_hop, is_remote_url
from .templates import CallTemplate, HttpCallTemplate, auth_from_utcp

__all__ = [
    "HTTPRequestParts",
    "HttpTransport",
    "build_request",
    "decode_response",
    "fill_path",
    "raise_for_tool",
]

_HTTP_SCHEMES = frozenset({"http", "https"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_DOT_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


class HTTPRequestParts:
    """The pieces of one HTTP tool request (built without I/O).

    Attributes:
        method: HTTP method.
        url: Absolute URL with path parameters filled in.
        params: Query parameters.
        headers: Request headers.
        content: The encoded body, or None.
        data: A form body, or None.
    """

    __slots__ = ("content", "data", "headers", "method", "params", "url")

    def __init__(
        self,
        method: str,
        url: str,
        params: dict[str, Any],
        headers: dict[str, str],
        content: bytes | str | None,
        data: Mapping[str, Any] | None,
    ) -> None:
        self.method = method
        self.url = url
        self.params = params
        self.headers = headers
        self.content = content
        self.data = data


def fill_path(url_template: str, args: dict[str, Any], tool_name: str) -> str:
    """Replace ``{name}`` in a URL with URL-encoded arguments (popped from ``args``).

    Every character but the unreserved ones is percent-encoded (``/`` too), and
    a value that is a dot segment (``.`` or ``..``) is encoded as well, so an
    argument always stays one path segment and never climbs the path.

    Args:
        url_template: The template URL.
        args: Remaining arguments; used ones are removed.
        tool_name: For error messages.

    Returns:
        The URL.

    Raises:
        SecurityError: A placeholder sits in the scheme, host or port.
        ConfigError: A path argument is missing.
    """
    if "{" not in url_template:
        return url_template
    netloc = urlsplit(url_template.replace("{", "%7B").replace("}", "%7D")).netloc
    if "%7B" in netloc:
        raise errors.SecurityError(
            f"tool {tool_name!r}: URL {url_template!r} has a placeholder in its host; "
            "arguments may not choose where a request goes"
        )

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in args:
            raise errors.ConfigError(f"tool {tool_name!r}: missing path argument {name!r}")
        value = args.pop(name)
        text = value if isinstance(value, str) else codecs.dumps(value)
        encoded = quote(text, safe="")
        # "." and ".." are unreserved, so quote() keeps them, and a URL library
        # would then remove them as dot segments: /users/../profile becomes /profile.
        return _DOT_SEGMENTS.get(encoded, encoded)

    return _PLACEHOLDER.sub(replace, url_template)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return codecs.dumps(value)
    return value


def build_request(
    template: HttpCallTemplate, args: Mapping[str, Any], tool_name: str
) -> HTTPRequestParts:
    """Map tool arguments onto an HTTP request as UTCP does.

    Args:
        template: The tool's call template.
        args: The arguments.
        tool_name: For error messages.

    Returns:
        The request pieces.

    Raises:
        ConfigError: A path argument is missing, or a header value has CR/LF.
        SecurityError: A placeholder in the host.
    """
    remaining = dict(args)
    headers = dict(template.headers)
    for field in template.header_fields:
        if field in remaining:
            value = remaining.pop(field)
            text = value if isinstance(value, str) else codecs.dumps(value)
            if "\r" in text or "\n" in text:
                raise errors.ConfigError(
                    f"tool {tool_name!r}: header argument {field!r} contains CR or LF"
                )
            headers[field] = text
    has_body = template.body_field is not None and template.body_field in remaining
    body = remaining.pop(template.body_field) if has_body and template.body_field else None
    url = fill_path(template.url, remaining, tool_name)
    params = {k: _query_value(v) for k, v in remaining.items() if v is not None}
    content: bytes | str | None = None
    data: Mapping[str, Any] | None = None
    if has_body:
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = template.content_type
        ctype = template.content_type.lower()
        if "json" in ctype:
            content = codecs.dumps(body)
        elif "x-www-form-urlencoded" in ctype and isinstance(body, Mapping):
            data = {k: _query_value(v) for k, v in body.items()}
        elif isinstance(body, bytes | str):
            content = body
        else:
            content = codecs.dumps(body)
    return HTTPRequestParts(template.http_method, url, params, headers, content, data)


def decode_response(response: HTTPResponse) -> Any:
    """Decode a tool response: JSON when the server says so, else text.

    Args:
        response: The response.

    Returns:
        The decoded JSON value, or the body text (JSON that fails to parse
        is returned as text, as the UTCP reference does).
    """
    ctype = response.headers.get("content-type", "").lower()
    if "json" in ctype:
        try:
            return response.json()
        except errors.ProtocolError:
            return response.text
    return response.text


def raise_for_tool(response: HTTPResponse, tool_name: str) -> None:
    """Raise HTTPStatusError naming the tool when the status is not 2xx.

    Args:
        response: The response.
        tool_name: The tool (or manual) name.

    Raises:
        HTTPStatusError: With the status and the start of the body kept.
    """
    if response.is_success:
        return
    try:
        response.raise_for_status()
    except errors.HTTPStatusError as exc:
        detail = f": {exc.body_preview[:200]}" if exc.body_preview else ""
        raise errors.HTTPStatusError(
            f"tool {tool_name!r} failed: {exc.message}{detail}",
            status_code=exc.status_code,
            body_preview=exc.body_preview,
        ) from exc


class _ToolHTTPClient(HTTPClient):
    """An HTTPClient for one manual: while the manual is remote, no redirect leads here."""

    def __init__(self, *, config: HTTPConfig, manual_name: str, remote_manuals: set[str]) -> None:
        super().__init__(config=config)
        self._manual_name = manual_name
        self._remote_manuals = remote_manuals

    async def _check_redirect(self, url: str) -> None:
        if self._manual_name in self._remote_manuals:
            await check_hop(url)


class HttpTransport(Transport):
    """``http`` manuals and tools (UTCP manuals and OpenAPI documents)."""

    type_name = "http"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, dict[str, HTTPClient]] = {}

    def _client(self, manual_name: str, auth: Mapping[str, Any] | None) -> HTTPClient:
        key = codecs.dumps(sorted(auth.items())) if auth else ""
        per_manual = self._clients.setdefault(manual_name, {})
        client = per_manual.get(key)
        if client is None:
            base = self.context.http_config
            allow = base.allow_insecure or self.context.allow_insecure
            config = merge_config(
                type(base),
                base,
                {
                    "auth": auth_from_utcp(auth, allow_insecure=allow),
                    "allow_insecure": allow,
                    "base_url": None,
                },
            )
            client = _ToolHTTPClient(
                config=config,
                manual_name=manual_name,
                remote_manuals=self.context.remote_manuals,
            )
            per_manual[key] = client
        return client

    def _check(self, url: str) -> None:
        check_url(url, allow_insecure=self.context.allow_insecure, schemes=_HTTP_SCHEMES)

    async def register_manual(self, manual_name: str, template: CallTemplate) -> Discovery:
        """GET the manual URL; accept a UTCP manual or an OpenAPI document."""
        assert isinstance(template, HttpCallTemplate)
        self._check(template.url)
        if "{" in template.url:
            raise errors.ConfigError(f"{manual_name}.url: a manual URL takes no placeholders")
        if await is_remote_url(template.url):
            # Known before the request, so that its redirect hops are checked too.
            self.context.remote_manuals.add(manual_name)
        client = self._client(manual_name, template.auth)
        headers = dict(template.headers)
        headers.setdefault("Accept", "application/json, application/yaml;q=0.9, */*;q=0.5")
        response = await client.request(
            template.http_method,
            template.url,
            headers=headers,
            max_response_size=self.context.max_manual_size,
        )
        raise_for_tool(response, manual_name)
        remote = manual_name in self.context.remote_manuals or await is_remote_url(response.url)
        if remote:
            self.context.remote_manuals.add(manual_name)
        # Parsing and converting a large document takes long enough to stall
        # every other client on the loop: it runs in a thread.
        found = await asyncio.to_thread(self._read_manual, manual_name, template, response, remote)
        return dataclasses.replace(found, source_url=response.url)

    def _read_manual(
        self, manual_name: str, template: HttpCallTemplate, response: HTTPResponse, remote: bool
    ) -> Discovery:
        limit = self.context.max_expanded_nodes
        document = load_document(
            response.text,
            content_type=response.headers.get("content-type", ""),
            url=response.url,
            max_nodes=limit,
        )
        if is_utcp_manual(document):
            manual, problems, skipped = parse_manual_parts(document)
            return Discovery(manual=manual, problems=tuple(problems), skipped=tuple(skipped))
        if is_openapi(document):
            manual, warnings, skipped = convert_openapi_parts(
                document,
                spec_url=response.url,
                manual_name=manual_name,
                auth_tools=template.auth_tools,
                source_is_remote=remote,
                max_expanded_nodes=limit,
            )
            return Discovery(manual=manual, skipped=tuple(skipped), warnings=tuple(warnings))
        raise errors.ProtocolError(
            f"{redact_url(template.url)} served neither a UTCP manual (tools + utcp_version) "
            "nor an OpenAPI document (openapi + paths)"
        )

    async def deregister_manual(self, manual_name: str) -> None:
        """Close the manual's HTTP clients."""
        clients = self._clients.pop(manual_name, {})
        for client in clients.values():
            await client.close()

    async def call_tool(
        self, manual_name: str, tool: Tool, template: CallTemplate, args: Mapping[str, Any]
    ) -> Any:
        """Send the tool's HTTP request and decode the answer."""
        assert isinstance(template, HttpCallTemplate)
        parts = build_request(template, args, tool.name)
        self._check(parts.url)
        client = self._client(manual_name, template.auth)
        response = await client.request(
            parts.method,
            parts.url,
            params=parts.params or None,
            headers=parts.headers,
            content=parts.content,
            data=parts.data,
            max_response_size=self.context.max_result_size,
        )
        raise_for_tool(response, tool.name)
        return decode_response(response)

    async def close(self) -> None:
        """Close every client still open."""
        for name in list(self._clients):
            await self.deregister_manual(name)
