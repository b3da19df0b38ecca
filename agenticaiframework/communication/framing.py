"""Moved to ``stdio/framing.py``; this import path keeps working."""

from .stdio.framing import *  # noqa: F403
from .stdio.framing import __all__ as __all__
