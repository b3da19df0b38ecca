"""Moved to ``core/health.py``; this import path keeps working."""

from .core.health import *  # noqa: F403
from .core.health import __all__ as __all__
