"""Tests of ``agenticaiframework.communication.http``."""
