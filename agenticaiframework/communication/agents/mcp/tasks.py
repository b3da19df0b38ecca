"""MCP tasks (2025-11-25, SEP-1686): "call now, fetch later" for long tool calls.

A ``tools/call`` with a ``task`` field answers at once with a task (its
``taskId``, ``status``, ``pollInterval`` ...) instead of the tool's result;
``tasks/get`` reads its state, ``tasks/result`` waits until it is done and
returns the tool's result, ``tasks/cancel`` stops it, ``tasks/list`` lists
them. This module checks what the server says; :class:`~.client.MCPClient`
sends the requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core import errors

__all__ = [
    "TASK_STATUSES",
    "check_task",
    "server_runs_tool_tasks",
    "task_field",
]

TASK_STATUSES = frozenset({"working", "input_required", "completed", "failed", "cancelled"})
"""Every status a task can have."""


def server_runs_tool_tasks(capabilities: Mapping[str, Any]) -> bool:
    """Whether the server's capabilities offer ``tools/call`` as a task."""
    tasks = capabilities.get("tasks")
    requests = tasks.get("requests") if isinstance(tasks, Mapping) else None
    tools = requests.get("tools") if isinstance(requests, Mapping) else None
    return isinstance(tools, Mapping) and tools.get("call") is not None


def task_field(ttl: float | None) -> dict[str, int]:
    """The ``task`` field of a request: ``ttl`` in milliseconds, when one is asked for.

    Raises:
        ConfigError: ``ttl`` is not a positive number of seconds.
    """
    if ttl is None:
        return {}
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise errors.ConfigError(f"task_ttl: must be a positive number of seconds, got {ttl!r}")
    return {"ttl": max(1, round(ttl * 1000))}


def check_task(value: Any, what: str) -> dict[str, Any]:
    """A task object the server sent, checked: a string ``taskId`` and a known ``status``.

    Args:
        value: The decoded object.
        what: The request it answers, for messages.

    Returns:
        The task, as sent.

    Raises:
        ProtocolError: Not a task.
    """
    if not isinstance(value, dict):
        raise errors.ProtocolError(f"{what}: expected a task object, got {type(value).__name__}")
    task_id = value.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise errors.ProtocolError(f"{what}: the task has no taskId string")
    status = value.get("status")
    if status not in TASK_STATUSES:
        raise errors.ProtocolError(
            f"{what}: task {task_id[:64]!r} has an unknown status {str(status)[:64]!r}"
        )
    return value
