"""Free loopback ports: now public, in agenticaiframework.communication.testing (this path stays)."""

from agenticaiframework.communication.testing._process import free_port

__all__ = ["free_port"]
