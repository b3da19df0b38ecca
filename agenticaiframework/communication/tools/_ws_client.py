"""The WebSocketClient of the ``websocket`` tools, holding redirect hops to the remote-manual rule.

Imported only when a WebSocket tool is used, like the ``websockets`` package it needs.
"""

from __future__ import annotations

from typing import Any

from ..websocket.client import WebSocketClient
from .remote import check_hop

__all__ = ["ToolWebSocketClient"]


class ToolWebSocketClient(WebSocketClient):
    """A WebSocketClient for one manual's tools.

    Args:
        url: The tool's URL.
        manual_name: The manual whose tools it serves.
        remote_manuals: The tool client's set of remote manual names; while the
            manual is in it, a handshake redirect to this machine or a private
            network is refused.
        **kwargs: As for :class:`WebSocketClient`.
    """

    def __init__(
        self, url: str, *, manual_name: str, remote_manuals: set[str], **kwargs: Any
    ) -> None:
        super().__init__(url, **kwargs)
        self._manual_name = manual_name
        self._remote_manuals = remote_manuals

    async def _check_redirect(self, url: str) -> None:
        if self._manual_name in self._remote_manuals:
            await check_hop(url)
