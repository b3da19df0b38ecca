"""The I/O-free JSON-RPC 2.0 helpers: building, classifying, correlating."""

from __future__ import annotations

import pytest

from agenticaiframework.communication.core.errors import RemoteError
from agenticaiframework.communication.stdio import jsonrpc
from agenticaiframework.communication.stdio.jsonrpc import MessageKind


def test_builders() -> None:
    assert jsonrpc.request("m", {"a": 1}, id=3) == {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "m",
        "params": {"a": 1},
    }
    assert "params" not in jsonrpc.request("m", id=1)
    assert jsonrpc.notification("n", [1]) == {"jsonrpc": "2.0", "method": "n", "params": [1]}
    assert jsonrpc.response(1, None) == {"jsonrpc": "2.0", "id": 1, "result": None}
    assert jsonrpc.error_response("x", -32601, "nope") == {
        "jsonrpc": "2.0",
        "id": "x",
        "error": {"code": -32601, "message": "nope"},
    }
    assert jsonrpc.error_response(1, 1, "m", {"d": 1})["error"]["data"] == {"d": 1}
    with pytest.raises(TypeError, match="params"):
        jsonrpc.request("m", "scalar", id=1)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "m"}, MessageKind.REQUEST),
        ({"jsonrpc": "2.0", "method": "m"}, MessageKind.NOTIFICATION),
        ({"jsonrpc": "2.0", "id": 1, "result": None}, MessageKind.RESPONSE),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1}}, MessageKind.ERROR),
        ({"jsonrpc": "2.0", "id": None, "error": {"code": -32700}}, MessageKind.ERROR),
        ({"jsonrpc": "2.0", "id": 1}, MessageKind.INVALID),
        ({"jsonrpc": "2.0", "method": 5}, MessageKind.INVALID),
        ({"result": 1}, MessageKind.INVALID),
        ([1, 2], MessageKind.INVALID),
        ("text", MessageKind.INVALID),
    ],
)
def test_classify(message: object, kind: MessageKind) -> None:
    assert jsonrpc.classify(message) is kind


def test_remote_error_keeps_code_message_data() -> None:
    exc = jsonrpc.remote_error(
        {"id": 1, "error": {"code": -32602, "message": "Invalid params", "data": [1]}},
        method="tools/call",
    )
    assert isinstance(exc, RemoteError)
    assert exc.code == "ERR_REMOTE"
    assert (exc.remote_code, exc.data) == (-32602, [1])
    assert "tools/call" in str(exc) and "Invalid params" in str(exc)
    odd = jsonrpc.remote_error({"id": 1, "error": "plain text"})
    assert odd.remote_code is None and "plain text" in str(odd)


def test_pending_requests_correlation() -> None:
    pending: jsonrpc.PendingRequests[str] = jsonrpc.PendingRequests()
    a, b = pending.next_id(), pending.next_id()
    assert (a, b) == (1, 2)
    pending.add(a, "A")
    pending.add(b, "B")
    with pytest.raises(ValueError):
        pending.add(a, "again")
    assert len(pending) == 2 and a in pending
    assert pending.pop(b) == "B"
    assert pending.pop(b) is None
    assert pending.pop(["unhashable"]) is None
    assert pending.drain() == ["A"]
    assert len(pending) == 0


def test_pending_requests_skip_reserved_ids() -> None:
    pending: jsonrpc.PendingRequests[str] = jsonrpc.PendingRequests()
    pending.reserve(1)
    pending.reserve(2)
    pending.reserve({"not": "an id"})
    assert pending.next_id() == 3
    assert pending.release(1) is True
    assert pending.release(1) is False
    assert pending.release(["x"]) is False


def test_abandoned_requests_are_recognised_late_and_bounded() -> None:
    pending: jsonrpc.PendingRequests[str] = jsonrpc.PendingRequests(max_abandoned=2)
    for request_id in (1, 2, 3, 4):
        pending.add(request_id, f"waiter {request_id}")
    assert pending.pop(1) == "waiter 1"  # answered
    assert pending.abandon(1) is False  # nothing left to abandon
    assert pending.abandon(2) and pending.abandon(3) and pending.abandon(4)
    assert len(pending) == 0 and 3 not in pending
    assert pending.is_late(2) is False  # only the two most recent are remembered
    assert pending.is_late(3) is True
    assert pending.is_late(3) is False  # forgotten once its reply came
    assert pending.is_late(["unhashable"]) is False
    pending.drain()
    assert pending.is_late(4) is False
