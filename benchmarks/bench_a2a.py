"""A2A: A2AClient vs the official a2a-sdk client, same a2a-sdk agent, same run.

The agent is the a2a-sdk's own server (JSON-RPC and HTTP+JSON routes under
uvicorn, in a child process: ``python -m benchmarks.bench_a2a --serve PORT``).
Its executor answers ``hello`` with a direct message and ``events N`` with a
task that sends N working status updates (no message: the task stays
small), then completes. Both clients are
created once and reused (one keep-alive connection each), and both decode
every event: ours into dicts, the SDK into protobuf messages.

Rows: ``SendMessage`` round trips (a message reply) over each binding, and
a streamed task of 1,000 events (``SendStreamingMessage``) per round.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from agenticaiframework.communication import A2AClient

from .harness import Result, Side, compare_rows
from .servers import child_server, free_port

BINDINGS = {"jsonrpc": "JSONRPC", "rest": "HTTP+JSON"}


def _serve(port: int) -> None:
    """Run the a2a-sdk agent on 127.0.0.1:port (the child process)."""
    import uvicorn
    from a2a.server.agent_execution.agent_executor import AgentExecutor
    from a2a.server.agent_execution.context import RequestContext
    from a2a.server.events.event_queue import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandlerV2
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
        Message,
        Part,
        Role,
        Task,
        TaskState,
        TaskStatus,
    )
    from starlette.applications import Starlette

    class Executor(AgentExecutor):
        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()

        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
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

    base = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="bench",
        description="benchmark agent",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        supported_interfaces=[
            AgentInterface(protocol_binding="JSONRPC", protocol_version="1.0", url=f"{base}/rpc"),
            AgentInterface(
                protocol_binding="HTTP+JSON", protocol_version="1.0", url=f"{base}/rest"
            ),
        ],
    )
    handler = DefaultRequestHandlerV2(
        agent_executor=Executor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(
        routes=[
            *create_agent_card_routes(card),
            *create_jsonrpc_routes(handler, rpc_url="/rpc"),
            *create_rest_routes(handler, path_prefix="/rest"),
        ]
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_keep_alive=600,
    )


# -- the two sides ----------------------------------------------------------------------


def _ours_send(client: A2AClient) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            await client.send("hello")
        return count

    return side


def _ours_stream(client: A2AClient) -> Side:
    async def side(count: int) -> int:
        got = 0
        async for _ in client.stream(f"events {count}"):
            got += 1
        return max(got - 2, 1)  # the task and its completion around the N updates

    return side


def _sdk_message(text: str) -> Any:
    from a2a.types import Message, Part, Role, SendMessageRequest

    return SendMessageRequest(
        message=Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)])
    )


def _sdk_send(client: Any) -> Side:
    async def side(count: int) -> int:
        for _ in range(count):
            async for _ in client.send_message(_sdk_message("hello")):
                pass
        return count

    return side


def _sdk_stream(client: Any) -> Side:
    async def side(count: int) -> int:
        got = 0
        async for _ in client.send_message(_sdk_message(f"events {count}")):
            got += 1
        return max(got - 2, 1)

    return side


async def _sdk_client(base: str, binding: str, *, streaming: bool) -> Any:
    from a2a.client import ClientConfig, create_client

    config = ClientConfig(streaming=streaming, supported_protocol_bindings=[binding])
    return await create_client(base, config)


async def run(quick: bool) -> list[Result]:
    """SendMessage round trips per second over each binding, and stream events per second."""
    sends = 100 if quick else 1_000
    events = 200 if quick else 1_000
    rounds = 2 if quick else 5
    port = free_port()
    results: list[Result] = []
    async with child_server(["-m", "benchmarks.bench_a2a", "--serve", str(port)], port):
        base = f"http://127.0.0.1:{port}"
        for name, wire in BINDINGS.items():
            async with A2AClient(base, binding=name) as ours:
                sdk = await _sdk_client(base, wire, streaming=False)
                try:
                    results += await compare_rows(
                        [(f"{sends} SendMessage, {name}", _ours_send(ours), _sdk_send(sdk))],
                        total=sends,
                        rounds=rounds * 2,
                        unit="calls/s",
                    )
                finally:
                    await sdk.close()
        async with A2AClient(base) as ours:
            sdk = await _sdk_client(base, "JSONRPC", streaming=True)
            try:
                results += await compare_rows(
                    [
                        (
                            f"{events}-event stream, jsonrpc",
                            _ours_stream(ours),
                            _sdk_stream(sdk),
                        )
                    ],
                    total=events * rounds,
                    rounds=rounds,
                    memory_share=1 / rounds,
                    unit="events/s",
                )
            finally:
                await sdk.close()
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        _serve(int(sys.argv[2]))
    else:
        from .harness import format_table

        print(format_table("a2a", asyncio.run(run("--quick" in sys.argv))))
