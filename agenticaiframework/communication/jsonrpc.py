"""Moved to ``stdio/jsonrpc.py``; this import path keeps working."""

from .stdio.jsonrpc import *  # noqa: F403
from .stdio.jsonrpc import __all__ as __all__
