"""Tests of ``agenticaiframework.communication.grpc``."""
