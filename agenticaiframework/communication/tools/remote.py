"""The rule for manuals served from elsewhere: they may not point tools at this machine.

A manual (UTCP manual, OpenAPI document, WebSocket discovery answer) is
*remote* when the host that served it is outside this machine and its private
networks: its name does not resolve to a loopback, unspecified, link-local,
private, shared or reserved address (see
:func:`~agenticaiframework.communication.security.resolves_to_local`). A
manual served from this machine or the private network is trusted as the
user's own configuration.

Every address a remote manual's tool makes us touch must then be public, in
whatever spelling it is written (``127.1``, ``2130706433``, ``0x7f.1``,
``[::ffff:127.0.0.1]``, ``169.254.169.254``, a name resolving to ``127.0.0.1``):
the tool URL, each redirect hop, the OAuth2 token URL, every address of a gRPC
target. A tool that runs a local command (``mcp``) is never accepted from a
remote manual. The check runs when the manual is registered (the tool is left
out) and again, after variable substitution and with a fresh DNS answer, on
every call (:class:`~agenticaiframework.communication.errors.SecurityError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import SecurityError
from ..core.security import check_not_local, grpc_target_hosts, redact_url, resolves_to_local

__all__ = ["check_hop", "check_tool_template", "is_remote_url"]


async def is_remote_url(url: str) -> bool:
    """Tell whether ``url``'s host lies outside this machine and its private networks.

    Args:
        url: Where a manual came from.

    Returns:
        True when the host is public after DNS resolution (a name that does
        not resolve counts as remote); False for a local host or no host.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return True  # not ours to judge: the stricter answer
    if not host:
        return False
    return not await resolves_to_local(host, port)


async def check_hop(url: str) -> None:
    """Refuse a redirect hop of a remote manual's request that leads to a local address.

    Args:
        url: The URL the server redirected to.

    Raises:
        SecurityError: The hop names this machine or a private network.
    """
    await check_not_local(url, what="redirect of a remote manual's request to")


async def check_tool_template(
    template: Mapping[str, Any], tool_name: str, *, skip_unresolved: bool = False
) -> None:
    """Refuse a tool of a remote manual that touches this machine or a private network.

    Args:
        template: The tool's call template (a dict).
        tool_name: For the error message.
        skip_unresolved: Skip values that still hold a ``${VAR}`` (at
            registration; they are checked after substitution, at call time).

    Raises:
        SecurityError: The tool URL, OAuth2 token URL or a gRPC target address
            is local, a gRPC target uses a resolver that cannot be checked, or
            the tool runs a local command.
        ConfigError: A malformed gRPC target.
    """
    kind = template.get("call_template_type")
    what = f"tool {tool_name!r} of a remote manual:"
    if kind == "mcp":
        raise SecurityError(f"{what} an mcp tool runs a command on this machine")
    url = template.get("url")
    if isinstance(url, str) and not (skip_unresolved and "$" in url):
        await check_not_local(_host_part(url), what=f"{what} url")
    auth = template.get("auth")
    if isinstance(auth, Mapping):
        token_url = auth.get("token_url")
        if isinstance(token_url, str) and not (skip_unresolved and "$" in token_url):
            await check_not_local(token_url, what=f"{what} auth.token_url")
    target = template.get("target")
    if kind == "grpc" and isinstance(target, str) and not (skip_unresolved and "$" in target):
        for host, port in grpc_target_hosts(target):
            if await resolves_to_local(host, port):
                raise SecurityError(
                    f"{what} gRPC target {redact_url(target)!r} has the address "
                    f"{host!r}, on this machine or a private network, which a remote "
                    "document may not point at"
                )


def _host_part(url: str) -> str:
    # Path placeholders ({user_id}) are not part of the host and must not
    # make the URL unparsable.
    return url.replace("{", "%7B").replace("}", "%7D")
