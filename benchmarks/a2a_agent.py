"""The A2A benchmark's agent: the a2a-sdk's own server, in a child process.

``python -m benchmarks.a2a_agent HTTP_PORT GRPC_PORT`` serves, on 127.0.0.1,
the agent card and the JSON-RPC (``/rpc``) and HTTP+JSON (``/rest``) routes
under uvicorn on HTTP_PORT, and the SDK's gRPC handler on GRPC_PORT (started
first: once HTTP_PORT accepts, both do). Its executor answers ``hello`` with
a direct message and ``events N`` with a task that sends N working status
updates (no message: the task stays small), then completes.

A module of its own, importing only the SDK, uvicorn and starlette, so the
child starts without importing our package or the benchmark harness.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import grpc
import uvicorn
from a2a.server.agent_execution.agent_executor import AgentExecutor
from a2a.server.agent_execution.context import RequestContext
from a2a.server.events.event_queue import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.request_handlers.grpc_handler import GrpcHandler
from a2a.server.routes import (
    create_agent_card_routes,
    create_jsonrpc_routes,
    create_rest_routes,
)
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Message,
    Part,
    Role,
    Task,
    TaskState,
    TaskStatus,
    a2a_pb2_grpc,
)
from starlette.applications import Starlette


class Executor(AgentExecutor):
    """``hello`` -> a message; ``events N`` -> a task with N status updates."""

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Cancel the task."""
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Answer one message."""
        words = context.get_user_input().split()
        if words and words[0] == "events":
            task_id, context_id = context.task_id or "", context.context_id or ""
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                )
            )
            updater = TaskUpdater(event_queue, task_id, context_id)
            # Without a message each: the task's history stays small, so the
            # agent's cost per event does not grow along the stream.
            for _ in range(int(words[1])):
                await updater.update_status(TaskState.TASK_STATE_WORKING)
            await updater.complete()
            return
        await event_queue.enqueue_event(
            Message(
                message_id=str(uuid.uuid4()),
                role=Role.ROLE_AGENT,
                parts=[Part(text="hello back")],
                context_id=context.context_id or "",
            )
        )


async def serve(port: int, grpc_port: int) -> None:
    """Serve the agent on 127.0.0.1: HTTP on ``port``, gRPC on ``grpc_port``."""
    base = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="bench",
        description="benchmark agent",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="bench", name="bench", description="benchmark", tags=["bench"])],
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=f"{base}/rpc"),
            AgentInterface(
                protocol_binding="HTTP+JSON", protocol_version="1.0", url=f"{base}/rest"
            ),
            AgentInterface(
                protocol_binding="GRPC", protocol_version="1.0", url=f"127.0.0.1:{grpc_port}"
            ),
        ],
    )
    handler = DefaultRequestHandlerV2(
        agent_executor=Executor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    rpc = grpc.aio.server()
    rpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), rpc)  # type: ignore[no-untyped-call]
    await rpc.start()
    app = Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url="/rpc"),
            *create_rest_routes(handler, path_prefix="/rest"),
        ]
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_keep_alive=600,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await rpc.stop(0)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
