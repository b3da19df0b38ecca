"""Moved to ``core/lifecycle.py``; this import path keeps working."""

from .core.lifecycle import *  # noqa: F403
from .core.lifecycle import __all__ as __all__
