"""Tests of ``agenticaiframework.communication.agents``."""
