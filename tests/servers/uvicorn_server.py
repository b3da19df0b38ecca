"""Run an ASGI app under uvicorn inside the test's event loop, on a free loopback port.

The helper is the one the demo uses, so tests and demo serve HTTP the same way.
"""

from agenticaiframework.communication.testing.servers import serve_asgi

__all__ = ["serve_asgi"]
