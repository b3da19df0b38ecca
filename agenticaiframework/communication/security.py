"""Moved to ``core/security.py``; this import path keeps working."""

from .core.security import *  # noqa: F403
from .core.security import __all__ as __all__
