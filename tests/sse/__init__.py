"""Tests of ``agenticaiframework.communication.sse``."""
