"""The I/O-free parts of the A2A client: stream de-duplication, messages, errors, card choices."""

from __future__ import annotations

from typing import Any

import pytest

from agenticaiframework.communication import A2AClient, APIKeyAuth, BearerAuth, OAuth2Auth
from agenticaiframework.communication.agents.a2a import (
    ArtifactUpdate,
    Message,
    Part,
    StatusUpdate,
    StreamTracker,
    Task,
    TaskNotFoundError,
    VersionNotSupportedError,
    build_message,
)
from agenticaiframework.communication.agents.a2a import errors as a2a_errors
from agenticaiframework.communication.agents.a2a.card import (
    auth_from_card,
    card_url_for,
    select_interface,
    validate_card,
)
from agenticaiframework.communication.core import errors


def status(state: str, stamp: str) -> StatusUpdate:
    return StatusUpdate(
        {"taskId": "t", "contextId": "c", "status": {"state": state, "timestamp": stamp}}
    )


def chunk(text: str, *, append: bool = True, artifact: str = "a") -> ArtifactUpdate:
    return ArtifactUpdate(
        {
            "taskId": "t",
            "contextId": "c",
            "artifact": {"artifactId": artifact, "parts": [{"text": text}]},
            "append": append,
        }
    )


def snapshot(state: str, stamp: str, texts: list[str]) -> Task:
    return Task(
        {
            "id": "t",
            "contextId": "c",
            "status": {"state": state, "timestamp": stamp},
            "artifacts": [{"artifactId": "a", "parts": [{"text": t} for t in texts]}],
        }
    )


def texts(events: list[Any]) -> list[str]:
    return [p["text"] for e in events if isinstance(e, ArtifactUpdate) for p in e.artifact["parts"]]


def test_tracker_turns_a_snapshot_into_the_missed_updates_and_drops_repeats() -> None:
    tracker = StreamTracker()
    seen: list[Any] = []
    seen += tracker.accept(status("TASK_STATE_WORKING", "1"))
    seen += tracker.accept(chunk("0", append=False))
    seen += tracker.accept(chunk("1"))
    # The stream drops; chunks 2 and 3 happen meanwhile; the snapshot holds 0..3.
    seen += tracker.accept(snapshot("TASK_STATE_WORKING", "1", ["0", "1", "2", "3"]))
    # The first live events repeat chunk 3 (already in the snapshot), then go on.
    seen += tracker.accept(chunk("3"))
    seen += tracker.accept(chunk("4"))
    seen += tracker.accept(status("TASK_STATE_COMPLETED", "2"))
    assert texts(seen) == ["0", "1", "2", "3", "4"]
    assert [e.kind for e in seen].count("task") == 0
    assert tracker.done and tracker.dropped == 1


def test_tracker_snapshot_with_a_newer_status_reports_it_once() -> None:
    tracker = StreamTracker()
    tracker.accept(status("TASK_STATE_WORKING", "1"))
    out = tracker.accept(snapshot("TASK_STATE_COMPLETED", "2", ["x"]))
    assert [e.kind for e in out] == ["artifactUpdate", "statusUpdate"]
    assert isinstance(out[1], StatusUpdate) and out[1].state == "completed"
    assert tracker.done
    assert tracker.accept(status("TASK_STATE_COMPLETED", "2")) == []


def test_tracker_keeps_repeated_statuses_outside_a_resync() -> None:
    tracker = StreamTracker()
    beats = [status("TASK_STATE_WORKING", "1"), status("TASK_STATE_WORKING", "1")]
    assert [e for b in beats for e in tracker.accept(b)] == beats


def test_tracker_keeps_a_chunk_that_only_looks_like_an_old_one() -> None:
    tracker = StreamTracker()
    tracker.accept(chunk(".", append=False))
    tracker.accept(snapshot("TASK_STATE_WORKING", "1", [".", "."]))  # one new "." in the gap
    assert texts(tracker.accept(chunk("."))) == []  # the snapshot's "." repeated live
    assert texts(tracker.accept(chunk("."))) == ["."]  # a genuinely new one


def test_tracker_first_task_is_delivered_as_is() -> None:
    tracker = StreamTracker()
    first = snapshot("TASK_STATE_SUBMITTED", "0", [])
    assert tracker.accept(first) == [first]
    assert tracker.task_id == "t"
    reply = Message({"messageId": "m", "role": "ROLE_AGENT", "parts": [{"text": "hi"}]})
    assert StreamTracker().accept(reply) == [reply]


def test_build_message_from_plain_values() -> None:
    message = build_message(
        ["text", {"k": 1}, b"\x00\x01", Part.url("https://x.test/f.pdf", media_type="a/b")],
        media_type="application/x-thing",
        task_id="t",
        context_id="c",
        message_id="m",
    )
    assert message == {
        "messageId": "m",
        "role": "ROLE_USER",
        "parts": [
            {"text": "text"},
            {"data": {"k": 1}},
            {"raw": "AAE=", "mediaType": "application/x-thing"},
            {"url": "https://x.test/f.pdf", "mediaType": "a/b"},
        ],
        "taskId": "t",
        "contextId": "c",
    }
    with pytest.raises(errors.ConfigError, match="str, dict, bytes or Part"):
        build_message(3.5)
    with pytest.raises(errors.ConfigError, match="at least one part"):
        build_message([])


def test_objects_read_their_fields() -> None:
    task = Task(
        {
            "id": "t",
            "status": {
                "state": "TASK_STATE_INPUT_REQUIRED",
                "message": {"role": "ROLE_AGENT", "parts": [{"text": "name?"}]},
            },
        }
    )
    assert task.state == "input-required" and task.is_interrupted and not task.is_terminal
    assert task.status_message is not None and task.status_message.role == "agent"
    assert task.status_message.text == "name?"
    assert "Task(" in repr(task)


def test_errors_keep_the_remote_code_and_map_by_code_or_reason() -> None:
    error = a2a_errors.from_jsonrpc_error({"code": -32001, "message": "gone"}, what="GetTask")
    assert isinstance(error, TaskNotFoundError) and error.remote_code == -32001
    error = a2a_errors.from_jsonrpc_error(
        {
            "code": -31999,
            "message": "m",
            "data": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "VERSION_NOT_SUPPORTED",
                }
            ],
        },
        what="X",
    )
    assert isinstance(error, VersionNotSupportedError) and error.remote_code == -31999
    unknown = a2a_errors.from_jsonrpc_error({"code": 7, "message": "odd"}, what="X")
    assert type(unknown) is a2a_errors.A2AError and unknown.code == "ERR_A2A"
    rest = a2a_errors.from_rest_error(
        400,
        {
            "error": {
                "message": "no",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "TASK_NOT_CANCELABLE",
                        "metadata": {"id": "t"},
                    }
                ],
            }
        },
        what="CancelTask",
    )
    assert rest.code == "ERR_A2A_TASK_NOT_CANCELABLE" and rest.data == {"id": "t"}
    grpc = a2a_errors.from_grpc_status("NOT_FOUND", "gone", what="GetTask")
    assert isinstance(grpc, TaskNotFoundError) and grpc.remote_code == "NOT_FOUND"
    leaky = a2a_errors.from_jsonrpc_error(
        {"code": -32603, "message": "failed at https://u:pw@x.test/?token=abc"}, what="X"
    )
    assert "pw" not in str(leaky) and "abc" not in str(leaky)


CARD = {
    "name": "n",
    "supportedInterfaces": [
        {"url": "https://a.test/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
        {"url": "https://a.test/old", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        {"url": "https://a.test/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": "https://a.test/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
    ],
}


def test_interface_choice_follows_the_card_order() -> None:
    card = validate_card(CARD, source="t")
    chosen = select_interface(card, binding=None, available=lambda b: b != "GRPC", source="t")
    assert chosen.url == "https://a.test/rpc"
    assert select_interface(card, binding=None, available=lambda b: True, source="t").binding == (
        "GRPC"
    )
    rest = select_interface(card, binding="HTTP+JSON", available=lambda b: True, source="t")
    assert rest.url == "https://a.test/rest"
    only_old = {"name": "n", "supportedInterfaces": [CARD["supportedInterfaces"][1]]}
    with pytest.raises(VersionNotSupportedError):
        select_interface(only_old, binding=None, available=lambda b: True, source="t")
    with pytest.raises(errors.ConfigError, match="no a GRPC interface"):
        select_interface(only_old, binding="GRPC", available=lambda b: True, source="t")


@pytest.mark.parametrize(
    ("entry", "usable"),
    [
        ({}, True),  # ProtoJSON leaves an unset version out
        ({"protocolVersion": ""}, True),
        ({"protocolVersion": "v1.0"}, True),
        ({"protocolVersion": "1.2"}, True),
        ({"protocolVersion": "v0.3"}, False),
        ({"protocolVersion": "2.0"}, False),
    ],
)
def test_interface_versions_a_card_may_write(entry: dict[str, str], usable: bool) -> None:
    interface = {"url": "https://a.test/rpc", "protocolBinding": "JSONRPC", **entry}
    card = validate_card({"name": "n", "supportedInterfaces": [interface]}, source="t")
    if usable:
        chosen = select_interface(card, binding=None, available=lambda b: True, source="t")
        assert chosen.url == "https://a.test/rpc"
    else:
        with pytest.raises(VersionNotSupportedError, match=r"none at A2A 1\.0"):
            select_interface(card, binding=None, available=lambda b: True, source="t")


def test_card_url_for() -> None:
    assert card_url_for("https://a.test") == "https://a.test/.well-known/agent-card.json"
    assert card_url_for("https://a.test/x/") == "https://a.test/x/.well-known/agent-card.json"
    assert card_url_for("https://a.test/card.json") == "https://a.test/card.json"


def test_auth_from_the_card_schemes() -> None:
    bearer_card = {"securitySchemes": {"b": {"httpAuthSecurityScheme": {"scheme": "Bearer"}}}}
    auth, _ = auth_from_card(bearer_card, "tok", allow_insecure=False)
    assert isinstance(auth, BearerAuth)
    key_card = {
        "securitySchemes": {
            "k": {"apiKeySecurityScheme": {"location": "query", "name": "key"}},
        }
    }
    auth, _ = auth_from_card(key_card, "k1", allow_insecure=False)
    assert isinstance(auth, APIKeyAuth) and auth.location == "query" and auth.name == "key"
    oauth_card = {
        "securitySchemes": {
            "o": {
                "oauth2SecurityScheme": {
                    "flows": {"clientCredentials": {"tokenUrl": "https://id.test/token"}}
                }
            }
        },
        "securityRequirements": [{"schemes": {"o": {"list": ["read", "write"]}}}],
    }
    auth, token_url = auth_from_card(
        oauth_card, {"client_id": "c", "client_secret": "s"}, allow_insecure=False
    )
    assert isinstance(auth, OAuth2Auth) and auth.scope == "read write"
    assert token_url == "https://id.test/token"
    with pytest.raises(errors.ConfigError, match="OAuth2 client-credentials"):
        auth_from_card(bearer_card, {"client_id": "c", "client_secret": "s"}, allow_insecure=False)
    mtls_card: dict[str, Any] = {"securitySchemes": {"m": {"mtlsSecurityScheme": {}}}}
    with pytest.raises(errors.ConfigError, match="mutual TLS"):
        auth_from_card(mtls_card, "tok", allow_insecure=False)
    explicit, _ = auth_from_card(mtls_card, {"type": "bearer", "token": "t"}, allow_insecure=False)
    assert isinstance(explicit, BearerAuth)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "url= or its card="),
        ({"url": "https://a.test", "binding": "carrier-pigeon"}, "binding"),
        ({"url": "https://a.test", "timeout": 0}, "timeout"),
        ({"url": "https://a.test", "max_resumes": -1}, "max_resumes"),
        ({"url": "https://a.test", "extensions": ["a,b"]}, "extensions"),
        ({"url": "https://a.test", "card": {"name": "x"}}, "supportedInterfaces"),
        ({"url": "a.test"}, "no scheme"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises((errors.ConfigError, errors.ProtocolError)) as info:
        A2AClient(**kwargs)
    assert words in str(info.value)
