"""Tests of ``agenticaiframework.communication.stdio``."""
