"""Moved to ``mqtt/topics.py``; this import path keeps working."""

from .mqtt.topics import *  # noqa: F403
from .mqtt.topics import __all__ as __all__
