"""Tests of ``agenticaiframework.communication.core``."""
