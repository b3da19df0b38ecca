"""Run an ASGI app under uvicorn inside the test's event loop, on a free loopback port.

The helper is the public one (agenticaiframework.communication.testing.http), so tests,
demo and users serve HTTP the same way; this path stays for the tests.
"""

from agenticaiframework.communication.testing.http import serve_asgi

__all__ = ["serve_asgi"]
