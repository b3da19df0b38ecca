"""Loopback servers, a fault proxy and a pytest plugin for testing code built on these clients.

``servers.py`` runs real servers on 127.0.0.1 and free ports (used by the
demo); ``mcp_child.py`` is an MCP server to run over stdio; ``reaper.py``
ties child processes to our lifetime.
"""
