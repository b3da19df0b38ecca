"""The JSON-RPC 2.0 binding of A2A (specification section 9).

Every operation is one POST of a JSON-RPC request to the interface URL; the
streaming ones are answered with an SSE stream whose events each carry a
JSON-RPC response (``result`` = a ``StreamResponse``, or ``error``).
"""

from __future__ import annotations

import itertools
from typing import Any

from ....core import errors
from .. import errors as a2a_errors
from ._http import HTTPBinding
from .base import BindingContext, EventStream

__all__ = ["JSONRPCBinding"]


class JSONRPCBinding(HTTPBinding):
    """A2A over JSON-RPC 2.0 on HTTP, streams over SSE.

    Args:
        context: The interface and options.
    """

    protocol_binding = "JSONRPC"

    def __init__(self, context: BindingContext) -> None:
        super().__init__(context)
        self._ids = itertools.count(1)

    def _envelope(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    def _result(self, reply: Any, request_id: int, method: str) -> Any:
        if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
            raise errors.ProtocolError(
                f"{method}: {self.shown} answered something that is not a JSON-RPC 2.0 "
                f"response: {str(reply)[:200]!r}"
            )
        if "error" in reply:
            raise a2a_errors.from_jsonrpc_error(reply["error"], what=method)
        if "result" not in reply:
            raise errors.ProtocolError(f"{method}: the JSON-RPC response has no result")
        if reply.get("id") != request_id:
            raise errors.ProtocolError(
                f"{method}: the JSON-RPC response answers id {reply.get('id')!r}, "
                f"not {request_id!r}"
            )
        return reply["result"]

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        envelope = self._envelope(method, params)
        status, reply = await self.request_json("POST", self.url, body=envelope, what=method)
        if reply is None:
            raise errors.ProtocolError(f"{method}: {self.shown} answered {status} with no body")
        if status >= 400 and not (isinstance(reply, dict) and "error" in reply):
            raise errors.HTTPStatusError(
                f"{method}: {self.shown} answered {status}",
                status_code=status,
                body_preview=str(reply)[:300],
            )
        return self._result(reply, envelope["id"], method)

    async def _object(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        result = await self._call(method, params)
        if not isinstance(result, dict):
            raise errors.ProtocolError(
                f"{method}: the result is not an object: {str(result)[:200]!r}"
            )
        return result

    def _stream(self, method: str, params: dict[str, Any]) -> EventStream:
        envelope = self._envelope(method, params)
        request_id = envelope["id"]

        def on_status(status: int, body: Any) -> errors.CommunicationError:
            if isinstance(body, dict) and "error" in body:
                return a2a_errors.from_jsonrpc_error(body["error"], what=method)
            return errors.HTTPStatusError(
                f"{method}: {self.shown} answered {status}",
                status_code=status,
                body_preview=str(body)[:300] if body is not None else "",
            )

        def event(value: Any) -> dict[str, Any]:
            # The common case first, checked without building anything.
            if (
                type(value) is dict
                and value.get("id") == request_id
                and value.get("jsonrpc") == "2.0"
                and type(result := value.get("result")) is dict
                and "error" not in value
            ):
                return result
            result = self._result(value, request_id, method)
            if not isinstance(result, dict):
                raise errors.ProtocolError(
                    f"{method}: a stream event's result is not an object: {str(result)[:200]!r}"
                )
            return result

        return self.stream_json(
            "POST", self.url, body=envelope, what=method, on_error_status=on_status, event=event
        )

    async def send_message(self, request: dict[str, Any]) -> dict[str, Any]:
        """``SendMessage``."""
        return await self._object("SendMessage", request)

    def send_streaming_message(self, request: dict[str, Any]) -> EventStream:
        """``SendStreamingMessage``."""
        return self._stream("SendStreamingMessage", request)

    async def get_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTask``."""
        return await self._object("GetTask", request)

    async def cancel_task(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CancelTask``."""
        return await self._object("CancelTask", request)

    def subscribe_to_task(self, request: dict[str, Any]) -> EventStream:
        """``SubscribeToTask``."""
        return self._stream("SubscribeToTask", request)

    async def list_tasks(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTasks``."""
        return await self._object("ListTasks", request)

    async def get_extended_agent_card(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetExtendedAgentCard``."""
        return await self._object("GetExtendedAgentCard", request)

    async def create_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``CreateTaskPushNotificationConfig``."""
        return await self._object("CreateTaskPushNotificationConfig", request)

    async def get_push_config(self, request: dict[str, Any]) -> dict[str, Any]:
        """``GetTaskPushNotificationConfig``."""
        return await self._object("GetTaskPushNotificationConfig", request)

    async def list_push_configs(self, request: dict[str, Any]) -> dict[str, Any]:
        """``ListTaskPushNotificationConfigs``."""
        return await self._object("ListTaskPushNotificationConfigs", request)

    async def delete_push_config(self, request: dict[str, Any]) -> None:
        """``DeleteTaskPushNotificationConfig``."""
        await self._call("DeleteTaskPushNotificationConfig", request)
