"""Moved to ``core/tls.py``; this import path keeps working."""

from .core.tls import *  # noqa: F403
from .core.tls import __all__ as __all__
