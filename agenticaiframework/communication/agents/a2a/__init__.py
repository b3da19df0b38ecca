"""A2AClient: Agent2Agent (A2A 1.0) over JSON-RPC, HTTP+JSON or gRPC, from the agent card.

Layout: ``client.py`` (A2AClient), ``card.py`` (reading, caching and
checking the card, choosing the interface, auth from its security schemes),
``stream.py`` (resume de-duplication, no I/O), ``types.py`` (Task, Message,
the update events and message building, no I/O), ``errors.py`` (the A2A
errors), ``bindings/`` (one module per protocol binding behind the seam of
``bindings/base.py``).
"""

from .bindings.base import Binding, BindingContext
from .card import CARD_CACHE, PROTOCOL_VERSION, WELL_KNOWN_PATH, Interface
from .client import A2AClient
from .errors import (
    A2AAuthError,
    A2AError,
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    ExtensionSupportRequiredError,
    InternalAgentError,
    InvalidAgentResponseError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    ParseError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
from .stream import StreamTracker
from .types import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    A2AObject,
    ArtifactUpdate,
    Message,
    Part,
    StatusUpdate,
    Task,
    build_message,
)

__all__ = [
    "CARD_CACHE",
    "INTERRUPTED_STATES",
    "PROTOCOL_VERSION",
    "TERMINAL_STATES",
    "WELL_KNOWN_PATH",
    "A2AAuthError",
    "A2AClient",
    "A2AError",
    "A2AObject",
    "ArtifactUpdate",
    "Binding",
    "BindingContext",
    "ContentTypeNotSupportedError",
    "ExtendedAgentCardNotConfiguredError",
    "ExtensionSupportRequiredError",
    "Interface",
    "InternalAgentError",
    "InvalidAgentResponseError",
    "InvalidParamsError",
    "InvalidRequestError",
    "Message",
    "MethodNotFoundError",
    "ParseError",
    "Part",
    "PushNotificationNotSupportedError",
    "StatusUpdate",
    "StreamTracker",
    "Task",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "UnsupportedOperationError",
    "VersionNotSupportedError",
    "build_message",
]
