"""Moved to ``core/auth.py``; this import path keeps working."""

from .core.auth import *  # noqa: F403
from .core.auth import __all__ as __all__
