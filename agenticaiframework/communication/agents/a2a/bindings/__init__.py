"""A2A protocol bindings behind one seam (see :mod:`.base`): JSON-RPC, HTTP+JSON, gRPC."""

from .base import ALIASES, BINDINGS, Binding, BindingContext, load_binding

__all__ = ["ALIASES", "BINDINGS", "Binding", "BindingContext", "load_binding"]
