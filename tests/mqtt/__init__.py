"""Tests of ``agenticaiframework.communication.mqtt``."""
