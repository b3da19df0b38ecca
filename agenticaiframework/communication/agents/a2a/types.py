"""A2A objects as dicts with a few helpers, and messages built from plain Python values.

The wire form is ProtoJSON (camelCase keys, ``TASK_STATE_*`` and ``ROLE_*``
enum names), exactly as the agent sent it: :class:`Task`, :class:`Message`,
:class:`StatusUpdate` and :class:`ArtifactUpdate` are ``dict`` subclasses, so
they print, compare and serialise as the JSON they are, and add read-only
properties (``task.state == "completed"``, ``message.text`` ...).

:func:`build_message` turns ``"text"``, a dict (a data part), ``bytes`` (a
file part with a media type) or :class:`Part` values into a ``Message``. No I/O here.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ...core.errors import ConfigError, ProtocolError

__all__ = [
    "INTERRUPTED_STATES",
    "TERMINAL_STATES",
    "A2AObject",
    "ArtifactUpdate",
    "Message",
    "Part",
    "StatusUpdate",
    "Task",
    "build_message",
    "parse_event",
    "parse_send_response",
    "short_state",
]

TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
"""States after which a task changes no more."""
INTERRUPTED_STATES = frozenset({"input-required", "auth-required"})
"""States in which a task waits for the client (a stream ends there too)."""

_STATE_PREFIX = "TASK_STATE_"


def short_state(value: Any) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required`` (v0.3 spellings pass through).

    Args:
        value: A wire state.

    Returns:
        The lower-case, hyphenated state; ``"unknown"`` for anything not a string.
    """
    if not isinstance(value, str):
        return "unknown"
    if value.startswith(_STATE_PREFIX):
        value = value[len(_STATE_PREFIX) :]
    return str(value).lower().replace("_", "-")


def _parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


class A2AObject(dict[str, Any]):
    """Base of the A2A object dicts; ``kind`` names the stream event it is."""

    kind: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class Message(A2AObject):
    """A message (``messageId``, ``role``, ``parts`` ...)."""

    kind = "message"

    @property
    def message_id(self) -> str:
        """The message id."""
        return str(self.get("messageId", ""))

    @property
    def role(self) -> str:
        """``user`` or ``agent``."""
        role = self.get("role")
        return role[5:].lower() if isinstance(role, str) and role.startswith("ROLE_") else str(role)

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The parts."""
        parts = self.get("parts")
        return parts if isinstance(parts, list) else []

    @property
    def text(self) -> str:
        """The text of every text part, joined."""
        return _parts_text(self.get("parts"))

    @property
    def task_id(self) -> str | None:
        """The task the message belongs to, if any."""
        return self.get("taskId") or None

    @property
    def context_id(self) -> str | None:
        """The context (conversation) id, if any."""
        return self.get("contextId") or None


def _status_state(status: Any) -> str:
    return short_state(status.get("state")) if isinstance(status, dict) else "unknown"


def _status_message(status: Any) -> Message | None:
    if isinstance(status, dict) and isinstance(status.get("message"), dict):
        return Message(status["message"])
    return None


class _WithStatus(A2AObject):
    """The context and status properties a Task and a StatusUpdate both have."""

    @property
    def context_id(self) -> str | None:
        """The context id, if any."""
        return self.get("contextId") or None

    @property
    def status(self) -> dict[str, Any]:
        """The status object (``state``, ``message``, ``timestamp``)."""
        status = self.get("status")
        return status if isinstance(status, dict) else {}

    @property
    def state(self) -> str:
        """The state: ``submitted``, ``working``, ``completed``, ``input-required`` ..."""
        return _status_state(self.get("status"))

    @property
    def is_terminal(self) -> bool:
        """Whether the task reached a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def is_interrupted(self) -> bool:
        """Whether the task waits for the client (``input-required``, ``auth-required``)."""
        return self.state in INTERRUPTED_STATES


class Task(_WithStatus):
    """A task (``id``, ``contextId``, ``status``, ``artifacts``, ``history``)."""

    kind = "task"

    @property
    def id(self) -> str:
        """The task id."""
        return str(self.get("id", ""))

    @property
    def task_id(self) -> str:
        """The task id (as on the update events)."""
        return self.id

    @property
    def status_message(self) -> Message | None:
        """The message of the current status, if any."""
        return _status_message(self.get("status"))

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts produced so far."""
        artifacts = self.get("artifacts")
        return artifacts if isinstance(artifacts, list) else []

    @property
    def history(self) -> list[Message]:
        """The messages of the task, oldest first."""
        history = self.get("history")
        if not isinstance(history, list):
            return []
        return [Message(m) for m in history if isinstance(m, dict)]

    @property
    def text(self) -> str:
        """The text of every artifact's text parts, joined."""
        return "".join(_parts_text(a.get("parts")) for a in self.artifacts if isinstance(a, dict))


class StatusUpdate(_WithStatus):
    """A ``TaskStatusUpdateEvent``: the task's new status."""

    kind = "statusUpdate"

    @property
    def task_id(self) -> str:
        """The task id."""
        return str(self.get("taskId", ""))

    @property
    def message(self) -> Message | None:
        """The status message, if any."""
        return _status_message(self.get("status"))


class ArtifactUpdate(A2AObject):
    """A ``TaskArtifactUpdateEvent``: an artifact, or a chunk appended to one."""

    kind = "artifactUpdate"

    @property
    def task_id(self) -> str:
        """The task id."""
        return str(self.get("taskId", ""))

    @property
    def context_id(self) -> str | None:
        """The context id."""
        return self.get("contextId") or None

    @property
    def artifact(self) -> dict[str, Any]:
        """The artifact (``artifactId``, ``name``, ``parts`` ...)."""
        artifact = self.get("artifact")
        return artifact if isinstance(artifact, dict) else {}

    @property
    def append(self) -> bool:
        """Whether the parts are appended to an artifact sent before."""
        return bool(self.get("append"))

    @property
    def last_chunk(self) -> bool:
        """Whether this is the artifact's last chunk."""
        return bool(self.get("lastChunk"))

    @property
    def text(self) -> str:
        """The text of the artifact's text parts, joined."""
        return _parts_text(self.artifact.get("parts"))


_EVENT_TYPES: dict[str, type[A2AObject]] = {
    "task": Task,
    "message": Message,
    "statusUpdate": StatusUpdate,
    "artifactUpdate": ArtifactUpdate,
}


def parse_event(value: Any, *, what: str) -> A2AObject:
    """A ``StreamResponse`` (``{"task": ...}``, ``{"statusUpdate": ...}`` ...) as its object.

    Args:
        value: The decoded JSON.
        what: The operation, for the error message.

    Returns:
        The Task, Message, StatusUpdate or ArtifactUpdate.

    Raises:
        ProtocolError: Not a stream response.
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, payload),) = value.items()
        cls = _EVENT_TYPES.get(key)
        if cls is not None and isinstance(payload, dict):
            return cls(payload)
    raise ProtocolError(f"{what}: not an A2A stream response: {str(value)[:200]!r}")


def parse_send_response(value: Any, *, what: str) -> Task | Message:
    """A ``SendMessageResponse`` (``{"task": ...}`` or ``{"message": ...}``) as its object.

    Raises:
        ProtocolError: Neither.
    """
    if isinstance(value, dict) and len(value) == 1:
        payload = value.get("task")
        if isinstance(payload, dict):
            return Task(payload)
        payload = value.get("message")
        if isinstance(payload, dict):
            return Message(payload)
    raise ProtocolError(
        f"{what}: the agent answered neither a task nor a message: {str(value)[:200]!r}"
    )


class Part(dict[str, Any]):
    """A message part built explicitly: ``Part.text``, ``.data``, ``.file``, ``.url``."""

    @classmethod
    def text(cls, text: str, *, metadata: Mapping[str, Any] | None = None) -> Part:
        """A text part."""
        return cls._make({"text": text}, None, None, metadata)

    @classmethod
    def data(
        cls,
        value: Any,
        *,
        media_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Part:
        """A structured data part (any JSON value)."""
        return cls._make({"data": value}, media_type, None, metadata)

    @classmethod
    def file(
        cls,
        content: bytes,
        *,
        media_type: str = "application/octet-stream",
        filename: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Part:
        """A file part carrying its bytes (base64 on the wire)."""
        if not isinstance(content, bytes | bytearray | memoryview):
            raise ConfigError(f"Part.file: content must be bytes, got {type(content).__name__}")
        raw = base64.b64encode(bytes(content)).decode("ascii")
        return cls._make({"raw": raw}, media_type, filename, metadata)

    @classmethod
    def url(
        cls,
        url: str,
        *,
        media_type: str | None = None,
        filename: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Part:
        """A file part pointing at a URL."""
        return cls._make({"url": url}, media_type, filename, metadata)

    @classmethod
    def _make(
        cls,
        body: dict[str, Any],
        media_type: str | None,
        filename: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> Part:
        part = cls(body)
        if media_type:
            part["mediaType"] = media_type
        if filename:
            part["filename"] = filename
        if metadata:
            part["metadata"] = dict(metadata)
        return part


def _to_part(value: Any, media_type: str | None) -> dict[str, Any]:
    if isinstance(value, Part):
        return value
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return Part.file(bytes(value), media_type=media_type or "application/octet-stream")
    if isinstance(value, Mapping):
        return {"data": dict(value)}
    raise ConfigError(
        f"content: a part must be str, dict, bytes or Part, got {type(value).__name__}"
    )


def build_message(
    content: Any,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    media_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    extensions: Iterable[str] = (),
    reference_task_ids: Iterable[str] = (),
    message_id: str | None = None,
) -> dict[str, Any]:
    """A user ``Message`` from plain Python values.

    Args:
        content: A str (text part), a dict (data part), bytes (file part of
            ``media_type``), a :class:`Part`, a :class:`Message` (sent as is,
            ids filled in) or a list of those (one part each).
        task_id: The task the message continues (the ``input-required`` round).
        context_id: The conversation the message belongs to.
        media_type: The media type of bytes content (default
            ``application/octet-stream``).
        metadata: Message metadata.
        extensions: Extension URIs the message uses.
        reference_task_ids: Tasks the message refers to.
        message_id: The id; default a new UUID.

    Returns:
        The message, as its JSON dict.

    Raises:
        ConfigError: Content of another type, or no parts.
    """
    if isinstance(content, Message):
        message = dict(content)
        message.setdefault("messageId", message_id or str(uuid.uuid4()))
        message.setdefault("role", "ROLE_USER")
    else:
        items = content if isinstance(content, list | tuple) else [content]
        parts = [_to_part(item, media_type) for item in items]
        if not parts:
            raise ConfigError("content: a message needs at least one part")
        message = {
            "messageId": message_id or str(uuid.uuid4()),
            "role": "ROLE_USER",
            "parts": parts,
        }
    if task_id:
        message["taskId"] = task_id
    if context_id:
        message["contextId"] = context_id
    if metadata:
        message["metadata"] = dict(metadata)
    ext = list(extensions)
    if ext:
        message["extensions"] = ext
    refs = list(reference_task_ids)
    if refs:
        message["referenceTaskIds"] = refs
    return message
