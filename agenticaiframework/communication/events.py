"""Moved to ``core/events.py``; this import path keeps working."""

from .core.events import *  # noqa: F403
from .core.events import __all__ as __all__
