"""Every import path that worked before the regrouping still works, and names the same objects."""

from __future__ import annotations

import importlib

import pytest

import agenticaiframework.communication as communication

BASE = "agenticaiframework.communication"
# Old flat module -> where it lives now.
MOVED = {
    "config": "core.config",
    "errors": "core.errors",
    "security": "core.security",
    "retry": "core.retry",
    "auth": "core.auth",
    "events": "core.events",
    "health": "core.health",
    "lifecycle": "core.lifecycle",
    "tls": "core.tls",
    "codecs": "core.codecs",
    "topics": "mqtt.topics",
    "framing": "stdio.framing",
    "jsonrpc": "stdio.jsonrpc",
    "discovery": "agents.discovery",
    # Protocol modules became folders named like them: the folder exports the client.
    "http": "http.client",
    "sse": "sse.client",
    "websocket": "websocket.client",
    "mqtt": "mqtt.client",
    "grpc": "grpc.client",
    "stdio": "stdio.client",
}


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_path_exports_the_same_objects(old: str, new: str) -> None:
    before = importlib.import_module(f"{BASE}.{old}")
    now = importlib.import_module(f"{BASE}.{new}")
    assert now.__all__, new
    assert set(before.__all__) == set(now.__all__)
    for name in now.__all__:
        assert getattr(before, name) is getattr(now, name), name


def test_every_public_name_resolves_from_the_package() -> None:
    for name in communication.__all__:
        assert getattr(communication, name) is not None, name
    from agenticaiframework.communication import (  # noqa: F401
        GRPCClient,
        HTTPClient,
        MQTTClient,
        SSEClient,
        STDIOClient,
        WebSocketClient,
    )
    from agenticaiframework.communication.tools import ToolClient  # noqa: F401


def test_mcp_authorization_names_resolve_from_the_package_lazily() -> None:
    import subprocess
    import sys

    from agenticaiframework.communication import (
        FileTokenStore,
        LoopbackCallback,
        MCPOAuth,
        MemoryTokenStore,
        TokenStore,
    )
    from agenticaiframework.communication.agents.mcp import auth

    assert MCPOAuth is auth.MCPOAuth and LoopbackCallback is auth.LoopbackCallback
    assert TokenStore is auth.TokenStore and MemoryTokenStore is auth.MemoryTokenStore
    assert FileTokenStore is auth.FileTokenStore
    assert isinstance(MemoryTokenStore(), TokenStore)
    names = {"MCPOAuth", "LoopbackCallback", "TokenStore", "MemoryTokenStore", "FileTokenStore"}
    assert names <= set(communication.__all__) and names <= set(dir(communication))
    # Importing the package does not import MCP authorization until a name is used.
    probe = (
        "import sys, agenticaiframework.communication as c; "
        "assert 'agenticaiframework.communication.agents.mcp.auth' not in sys.modules; "
        "c.MCPOAuth; "
        "assert 'agenticaiframework.communication.agents.mcp.auth' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_every_module_of_the_package_imports() -> None:
    from pathlib import Path

    root = Path(communication.__file__).parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] in {"__main__", "mcp_child"}:
            continue  # programs: importing them runs them
        dotted = ".".join(p for p in parts if p != "__init__")
        importlib.import_module(f"{BASE}.{dotted}" if dotted else BASE)
