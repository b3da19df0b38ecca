"""The HTTP+JSON (REST) binding of A2A (specification section 11).

Each operation is a resource path under the interface URL (``POST
/message:send``, ``GET /tasks/{id}``, ``POST /tasks/{id}:cancel`` ...), prefixed
with ``/{tenant}`` when the interface names one. Errors are
``{"error": {"code", "status", "message", "details": [ErrorInfo...]}}``
bodies; streams are SSE events whose data is a ``StreamResponse``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ....core import errors
from .. import errors as a2a_errors
from ._http import HTTPBinding
from .base import BindingContext, EventStream

__all__ = ["RESTBinding"]


def _segment(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.ConfigError(f"{name}: must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _query(request: dict[str, Any], *drop: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in request.items():
        if key in drop or key == "tenant" or value is None:
            continue
        params[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return params


class RESTBinding(HTTPBinding):
    """A2A over HTTP+JSON, streams over SSE.

    Args:
        context: The interface and options.
    """

    protocol_binding = "HTTP+JSON"

    def __init__(self, context: BindingContext) -> None:
        super().__init__(context)
        base = context.url.rstrip("/")
        if context.tenant:
            base += "/" + quote(context.tenant, safe="")
        self._base = base

    def _error(self, status: int, body: Any, what: str) -> errors.CommunicationError:
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
            # Not an A2A error body: a proxy, a gateway, a server restarting.
            return errors.HTTPStatusError(
                f"{what}: {self.shown} answered {status}",
                status_code=status,
                body_preview=str(body)[:300] if body is not None else "",
            )
        return a2a_errors.from_rest_error(status, body, what=what)

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        status, reply = await self.request_json(
            method, self._base + path, body=body, params=params, what=what
        )
        if status >= 300:
            raise self._error(status, reply, what)
        return reply

    async def _object(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        reply = await self._call(method, path, what, body=body, params=params)
        if not isinstance(reply, dict):
            raise errors.ProtocolError(f"{what}: the answer is not an object: {str(reply)[:200]!r}")
        return reply

    def _stream(self, path: str, what: str, body: Any = None) -> EventStream:
        def event(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise errors.ProtocolError(
                    f"{what}: a stream event is not an object: {str(value)[:200]!r}"
                )
            error = value.get("error")
            if isinstance(error, dict) and len(value) == 1:
                code = error.get("code")
                status = code if isinstance(code, int) and not isinstance(code, bool) else 500
                raise self._error(status, value, what)
            return value

        return self.stream_json(
            "POST",
            self._base + path,
            body=body,
            what=what,
            on_error_status=lambda status, reply: self._error(status, reply, what),
            event=event,
        )

    @staticmethod
    def _strip(request: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in request.items() if k != "tenant"}

    async def send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /message:send``."""
        return await self._object("POST", "/message:send", "SendMessage", body=self._strip(request))

    def send_streaming_message(self, request: dict[str, Any]) -> EventStream:
        """``POST /message:stream``."""
        return self._stream("/message:stream", "SendStreamingMessage", self._strip(request))

    async def get_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GET /tasks/{id}``."""
        path = f"/tasks/{_segment(request.get('id'), 'task_id')}"
        return await self._object("GET", path, "GetTask", params=_query(request, "id"))

    async def cancel_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /tasks/{id}:cancel``."""
        path = f"/tasks/{_segment(request.get('id'), 'task_id')}:cancel"
        return await self._object("POST", path, "CancelTask", body=self._strip(request))

    def subscribe_to_task(self, request: dict[str, Any]) -> EventStream:
        """``POST /tasks/{id}:subscribe``."""
        path = f"/tasks/{_segment(request.get('id'), 'task_id')}:subscribe"
        return self._stream(path, "SubscribeToTask")

    async def list_tasks(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GET /tasks``."""
        return await self._object("GET", "/tasks", "ListTasks", params=_query(request))

    async def get_extended_agent_card(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GET /extendedAgentCard``."""
        return await self._object("GET", "/extendedAgentCard", "GetExtendedAgentCard")

    async def create_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``POST /tasks/{taskId}/pushNotificationConfigs``."""
        path = f"/tasks/{_segment(request.get('taskId'), 'task_id')}/pushNotificationConfigs"
        return await self._object(
            "POST", path, "CreateTaskPushNotificationConfig", body=self._strip(request)
        )

    async def get_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GET /tasks/{taskId}/pushNotificationConfigs/{id}``."""
        task = _segment(request.get("taskId"), "task_id")
        path = f"/tasks/{task}/pushNotificationConfigs/{_segment(request.get('id'), 'config_id')}"
        return await self._object("GET", path, "GetTaskPushNotificationConfig")

    async def list_push_configs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GET /tasks/{taskId}/pushNotificationConfigs``."""
        path = f"/tasks/{_segment(request.get('taskId'), 'task_id')}/pushNotificationConfigs"
        return await self._object(
            "GET", path, "ListTaskPushNotificationConfigs", params=_query(request, "taskId")
        )

    async def delete_push_config(self, request: dict[str, Any]) -> None:
        """``DELETE /tasks/{taskId}/pushNotificationConfigs/{id}``."""
        task = _segment(request.get("taskId"), "task_id")
        path = f"/tasks/{task}/pushNotificationConfigs/{_segment(request.get('id'), 'config_id')}"
        await self._call("DELETE", path, "DeleteTaskPushNotificationConfig")
