"""The gRPC snippets of the guide, as written, against the real test server.

Only targets and certificate paths are changed; ``target`` and ``data_chunks``
are defined before the snippets that assume them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.grpc_server import PROTO_DIR, GRPCTestServer, make_tls_files, serve_grpc


@pytest.fixture
async def server() -> AsyncIterator[GRPCTestServer]:
    async with serve_grpc() as srv:
        yield srv


async def test_guide_grpc_basic_usage(server: GRPCTestServer, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    # --- snippet (target changed) ---
    import logging as _logging

    logger = _logging.getLogger(__name__)

    from agenticaiframework.communication import GRPCClient

    # Connect to gRPC server
    async with GRPCClient(f"localhost:{server.port}") as client:
        # Unary RPC
        response = await client.call(
            service="AgentService",
            method="ExecuteTask",
            request={"task_id": "123", "input": "Process this"},
        )
        logger.info(response)
    # --- end of snippet ---
    assert response["result"] == "processed: Process this"
    assert "processed: Process this" in caplog.text


async def test_guide_grpc_configuration(tmp_path: Any) -> None:
    tls = make_tls_files(str(tmp_path))
    async with serve_grpc(tls=tls, mutual_tls=True) as srv:
        # --- snippet (target and certificate paths changed) ---
        from agenticaiframework.communication import GRPCClient, GRPCConfig

        config = GRPCConfig(
            # Connection
            target=f"localhost:{srv.port}",
            # TLS/SSL
            secure=True,
            root_certificates=tls.ca,
            private_key=tls.client_key,
            certificate_chain=tls.client_cert,
            # Options
            max_message_length=4 * 1024 * 1024,  # 4MB
            compression="gzip",
            # Timeouts
            timeout_seconds=30,
            # Retry
            max_retries=3,
            retry_delay=1.0,
        )

        client = GRPCClient(config=config)
        # --- end of snippet ---
        async with client:
            reply = await client.call("AgentService", "ExecuteTask", {"task_id": "cfg"})
        assert reply["task_id"] == "cfg"


async def test_guide_grpc_server_streaming(server: GRPCTestServer, capsys: Any) -> None:
    from agenticaiframework.communication import GRPCClient

    target = server.target
    # --- snippet ---
    async with GRPCClient(target) as client:
        # Server streams responses
        async for response in client.stream_call(
            service="AgentService", method="StreamTokens", request={"prompt": "Tell me a story"}
        ):
            print(response["token"], end="", flush=True)
    # --- end of snippet ---
    assert capsys.readouterr().out == "Tell me a story "


async def test_guide_grpc_client_streaming(server: GRPCTestServer) -> None:
    from agenticaiframework.communication import GRPCClient

    target = server.target
    data_chunks = [b"first chunk ", b"second chunk"]
    # --- snippet ---
    async with GRPCClient(target) as client:
        # Client streams requests
        async def generate_chunks():  # type: ignore[no-untyped-def]
            for chunk in data_chunks:
                yield {"chunk": chunk}

        response = await client.stream_send(
            service="DataService", method="UploadData", requests=generate_chunks()
        )
    # --- end of snippet ---
    assert response == {"total_bytes": 24, "chunks": 2}


async def test_guide_grpc_bidirectional_stream(server: GRPCTestServer, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    from agenticaiframework.communication import GRPCClient

    target = server.target
    logger = logging.getLogger(__name__)
    # --- snippet ---
    async with GRPCClient(target) as client:
        # Both sides stream
        async def chat_stream():  # type: ignore[no-untyped-def]
            yield {"message": "Hello"}
            yield {"message": "How are you?"}

        async for response in client.bidirectional_stream(
            service="ChatService", method="Chat", requests=chat_stream()
        ):
            logger.info(f"Response: {response['message']}")
    # --- end of snippet ---
    assert "Response: echo: Hello" in caplog.text
    assert "Response: echo: How are you?" in caplog.text


async def test_guide_grpc_generated_client(server: GRPCTestServer, monkeypatch: Any) -> None:
    monkeypatch.chdir(PROTO_DIR)  # the snippet names "agent_service.proto" relatively
    # --- snippet (target changed) ---
    # Generate from .proto file
    from agenticaiframework.communication import generate_grpc_client

    # Auto-generate client from proto
    client = generate_grpc_client(proto_file="agent_service.proto", target=server.target)

    # Use generated methods
    response = await client.AgentService.ExecuteTask(task_id="123", input="Process this")
    # --- end of snippet ---
    try:
        assert response["task_id"] == "123"
        assert response["result"] == "processed: Process this"
    finally:
        await client.close()
