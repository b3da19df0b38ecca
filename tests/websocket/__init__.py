"""Tests of ``agenticaiframework.communication.websocket``."""
