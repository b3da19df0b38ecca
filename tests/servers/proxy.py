"""The fault proxy: now public, in agenticaiframework.communication.testing.proxy (this path stays)."""

from agenticaiframework.communication.testing.proxy import FaultProxy

__all__ = ["FaultProxy"]
