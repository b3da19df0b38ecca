"""Moved to ``core/retry.py``; this import path keeps working."""

from .core.retry import *  # noqa: F403
from .core.retry import __all__ as __all__
