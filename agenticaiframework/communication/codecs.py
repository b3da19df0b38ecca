"""Moved to ``core/codecs.py``; this import path keeps working."""

from .core.codecs import *  # noqa: F403
from .core.codecs import __all__ as __all__
