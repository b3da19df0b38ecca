"""GRPCClient with no generated code: descriptors by server reflection.

Starts the demo's embedded gRPC server (``demo.v1.AgentService``, with
reflection and grpc.health.v1) on 127.0.0.1, then calls it.
Run: ``python examples/grpc_example.py``.
"""

from __future__ import annotations

import asyncio
import json

from agenticaiframework.communication import GRPCClient
from agenticaiframework.communication.testing.servers import serve_grpc


async def main() -> None:
    """List the services, describe one method, call it, check health."""
    async with serve_grpc() as target, GRPCClient(target) as client:
        print(f"services: {await client.list_services()}")
        description = await client.describe()
        service = next(s for s in description["services"] if s["short_name"] == "AgentService")
        method = service["methods"][0]
        print(f"{method['full_name']}: request schema {json.dumps(method['request_schema'])}")
        reply = await client.call(
            "AgentService", "ExecuteTask", request={"task_id": "42", "input": "hello agent world"}
        )
        print(f"ExecuteTask -> {reply}")
        status = await client.health_check()
        print(f"healthy={status.is_healthy} ({status.detail})")


if __name__ == "__main__":
    asyncio.run(main())
