"""Moved to ``core/config.py``; this import path keeps working."""

from .core.config import *  # noqa: F403
from .core.config import __all__ as __all__
