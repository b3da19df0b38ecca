"""Moved to ``agents/discovery.py``; this import path keeps working."""

from .agents.discovery import *  # noqa: F403
from .agents.discovery import __all__ as __all__
