"""Moved to ``core/errors.py``; this import path keeps working."""

from .core.errors import *  # noqa: F403
from .core.errors import __all__ as __all__
