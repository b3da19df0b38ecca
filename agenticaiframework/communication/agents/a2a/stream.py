"""Stream bookkeeping without I/O: which updates the caller has seen, and what a resync adds.

When a task's stream drops, the client subscribes again (``SubscribeToTask``).
The new stream opens with a snapshot of the task, and the agent's first live
events after it may repeat what the snapshot already holds (the
subscription is registered before the snapshot is read). :class:`StreamTracker`
keeps what was delivered (the last status, each artifact's parts) and:

* turns a snapshot into the updates the caller missed while the stream was
  down (new artifacts or appended parts as ``ArtifactUpdate``, a changed
  status as ``StatusUpdate``), never the snapshot itself;
* drops live updates after a snapshot that the caller already has: a
  status equal to the snapshot's (until another status arrives), an artifact
  equal to the snapshot's, or appended parts the snapshot already brought
  (matched in order inside the window the snapshot added). Outside that
  window nothing is dropped: an agent may repeat a status on purpose.

So the caller sees every update once, in order, and the iteration ends with
the terminal (or interrupted: ``input-required``, ``auth-required``) state.
"""

from __future__ import annotations

import functools
from typing import Any

from .types import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    A2AObject,
    ArtifactUpdate,
    StatusUpdate,
    Task,
    short_state,
)

__all__ = ["StreamTracker"]

_FINAL_STATES = TERMINAL_STATES | INTERRUPTED_STATES


@functools.lru_cache(maxsize=64)
def _final_state(state: str) -> bool:
    return short_state(state) in _FINAL_STATES


def _is_final(status: Any) -> bool:
    if not isinstance(status, dict):
        return False
    state = status.get("state")
    # Cached per wire name (an agent uses a handful): no string work per event.
    return isinstance(state, str) and _final_state(state)


def _find(window: list[Any], parts: list[Any]) -> int:
    """Where ``parts`` starts inside ``window`` (contiguous), or -1."""
    size = len(parts)
    if not size:
        return -1
    for start in range(len(window) - size + 1):
        if window[start : start + size] == parts:
            return start
    return -1


class StreamTracker:
    """What one logical task stream delivered; see the module docstring.

    Attributes:
        task_id: The task's id once an event named it.
        context_id: Its context id.
        done: Whether the stream reached its end (a final state, or a direct
            message reply).
        delivered: Events handed to the caller.
        dropped: Live events dropped as repeats.
    """

    __slots__ = (
        "_artifacts",
        "_continuing",
        "_overlap",
        "_status",
        "_status_overlap",
        "context_id",
        "delivered",
        "done",
        "dropped",
        "task_id",
    )

    def __init__(self, task_id: str | None = None, *, continuing: bool = False) -> None:
        self.task_id = task_id
        # A message sent on an interrupted task: the stream opens with the task as it was
        # (still input-required, as the JS SDK sends it), which must not end the stream.
        self._continuing = continuing
        self.context_id: str | None = None
        self.done = False
        self.delivered = 0
        self.dropped = 0
        self._status: Any = None
        # After a resync: the first live status updates may repeat the snapshot's.
        self._status_overlap = False
        self._artifacts: dict[str, list[Any]] = {}
        # artifactId -> [cursor, end]: parts the last snapshot added, that live appends may repeat.
        self._overlap: dict[str, list[int]] = {}

    def accept(self, event: A2AObject) -> list[A2AObject]:
        """Take one event from the wire; return what the caller should see (maybe nothing).

        Args:
            event: A Task, Message, StatusUpdate or ArtifactUpdate.

        Returns:
            The events to deliver, in order.
        """
        kind = event.kind
        if kind == "statusUpdate":
            status = event.get("status")
            if self._status_overlap:
                if status == self._status:
                    self.dropped += 1
                    return []
                self._status_overlap = False
            self._status = status
            if self.context_id is None or self.task_id is None:
                self._ids(event.get("taskId"), event.get("contextId"))
            if _is_final(status):
                self.done = True
            return self._out(event)
        if kind == "artifactUpdate":
            return self._artifact(event)
        if kind == "task":
            if self.delivered:
                return self.resync(event)  # type: ignore[arg-type]
            self._ids(event.get("id"), event.get("contextId"))
            self._status = event.get("status")
            for artifact in event.get("artifacts") or ():
                if isinstance(artifact, dict) and isinstance(artifact.get("artifactId"), str):
                    self._artifacts[artifact["artifactId"]] = list(artifact.get("parts") or ())
            if _is_final(self._status) and not (
                self._continuing and short_state(self._status.get("state")) in INTERRUPTED_STATES
            ):
                self.done = True
            return self._out(event)
        # A message: a direct reply ends a message stream.
        self.done = True
        return self._out(event)

    def _out(self, event: A2AObject) -> list[A2AObject]:
        self.delivered += 1
        return [event]

    def _ids(self, task_id: Any, context_id: Any) -> None:
        if self.task_id is None and isinstance(task_id, str) and task_id:
            self.task_id = task_id
        if self.context_id is None and isinstance(context_id, str) and context_id:
            self.context_id = context_id

    def _artifact(self, event: A2AObject) -> list[A2AObject]:
        artifact = event.get("artifact")
        if not isinstance(artifact, dict):
            return self._out(event)
        self._ids(event.get("taskId"), event.get("contextId"))
        key = artifact.get("artifactId")
        parts = list(artifact.get("parts") or ())
        if not isinstance(key, str):
            return self._out(event)
        have = self._artifacts.get(key)
        if not event.get("append") or have is None:
            if have is not None and have == parts and key in self._overlap:
                self.dropped += 1
                return []
            self._artifacts[key] = parts
            self._overlap.pop(key, None)
            return self._out(event)
        window = self._overlap.get(key)
        if window is not None:
            cursor, end = window
            at = _find(have[cursor:end], parts)
            if at >= 0:
                window[0] = cursor + at + len(parts)
                if window[0] >= end:
                    del self._overlap[key]
                self.dropped += 1
                return []
            del self._overlap[key]
        have.extend(parts)
        return self._out(event)

    def resync(self, snapshot: Task) -> list[A2AObject]:
        """The updates a snapshot of the task holds that the caller has not seen.

        Args:
            snapshot: The task, as ``SubscribeToTask`` (or ``GetTask``) returned it.

        Returns:
            Synthesised ArtifactUpdate and StatusUpdate events, in that order.
        """
        self._ids(snapshot.get("id"), snapshot.get("contextId"))
        base = {
            "taskId": self.task_id or snapshot.get("id", ""),
            "contextId": self.context_id or snapshot.get("contextId", ""),
        }
        out: list[A2AObject] = []
        for artifact in snapshot.get("artifacts") or ():
            if not isinstance(artifact, dict) or not isinstance(artifact.get("artifactId"), str):
                continue
            key = artifact["artifactId"]
            parts = list(artifact.get("parts") or ())
            have = self._artifacts.get(key)
            if have is None:
                out.append(ArtifactUpdate({**base, "artifact": artifact}))
                self._overlap[key] = [0, len(parts)]
            elif parts[: len(have)] == have:
                if len(parts) == len(have):
                    continue
                added = {**artifact, "parts": parts[len(have) :]}
                out.append(ArtifactUpdate({**base, "artifact": added, "append": True}))
                self._overlap[key] = [len(have), len(parts)]
            else:
                out.append(ArtifactUpdate({**base, "artifact": artifact}))
                self._overlap[key] = [0, len(parts)]
            self._artifacts[key] = parts
        status = snapshot.get("status")
        if isinstance(status, dict) and status != self._status:
            self._status = status
            out.append(StatusUpdate({**base, "status": status}))
        self._status_overlap = True
        if _is_final(self._status):
            self.done = True
        self.delivered += len(out)
        return out
