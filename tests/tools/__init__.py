"""Tests of ``agenticaiframework.communication.tools``."""
