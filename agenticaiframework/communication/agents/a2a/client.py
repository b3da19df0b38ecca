"""A2AClient: talk to any Agent2Agent (A2A 1.0) agent from its agent card.

::

    async with A2AClient("https://agent.example.com") as agent:   # reads the card
        reply = await agent.send("summarise this")                # a Task or a Message
        async for event in agent.stream("write a report"):         # Task, StatusUpdate,
            print(event.kind, event)                               # ArtifactUpdate, Message

What happens on ``connect()``: the card is read from
``/.well-known/agent-card.json`` (conditionally, with ``If-None-Match``, when
a cached copy has an ETag), checked, and the first interface of the card
that speaks A2A 1.x over a binding we have is chosen (or the one of
``binding=``). Every call carries ``A2A-Version: 1.0`` (and
``A2A-Extensions`` when ``extensions=`` names some).

Security: the card URL passes the URL policy in the constructor, before any
request; each interface URL, an OAuth2 token URL from the card and any
push-notification URL pass it before use. A card read from a remote host
may not point us at this machine or a private network (``ERR_SECURITY``).
Every URL printed (repr, errors, logs) is redacted.

Streams resume: when a task's stream drops (connection lost, or the agent
ends it before the task reached a final state), the client subscribes to
the task again (``SubscribeToTask``, up to ``max_resumes`` times in a row,
waiting with backoff between attempts) and de-duplicates (see
:mod:`.stream`): the caller's ``async for`` sees every update once and ends
with the final state. A stream that drops before any event named its task
cannot be resumed and raises ``ConnectionError`` (the message is never sent
twice).
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

from ...core import errors
from ...core.config import RetryConfig
from ...core.health import HealthStatus, run_probe
from ...core.lifecycle import BaseClient
from ...core.retry import backoff_delay
from ...core.security import check_not_local, check_url, is_local_address, redact_url
from . import card as card_mod
from .bindings.base import ALIASES, BINDINGS, Binding, BindingContext, EventStream, load_binding
from .errors import UnsupportedOperationError
from .stream import StreamTracker
from .types import A2AObject, Message, Task, build_message, parse_event, parse_send_response

__all__ = ["A2AClient"]

_HTTP_SCHEMES = frozenset({"http", "https"})
_HTTP_BINDINGS = frozenset({"JSONRPC", "HTTP+JSON"})
_STATE_NAMES = {
    "submitted": "TASK_STATE_SUBMITTED",
    "working": "TASK_STATE_WORKING",
    "completed": "TASK_STATE_COMPLETED",
    "failed": "TASK_STATE_FAILED",
    "canceled": "TASK_STATE_CANCELED",
    "input-required": "TASK_STATE_INPUT_REQUIRED",
    "rejected": "TASK_STATE_REJECTED",
    "auth-required": "TASK_STATE_AUTH_REQUIRED",
}


def _available(binding: str) -> bool:
    try:
        load_binding(binding)
    except errors.ConfigError:
        return False
    return True


def _positive(name: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise errors.ConfigError(f"{name}: must be a positive number, got {value!r}")


class A2AClient(BaseClient):
    """A client of one A2A agent, over the interface its card prefers (or ``binding=``).

    Args:
        url: The agent's base URL (the card is at
            ``<url>/.well-known/agent-card.json``) or its card's URL.
        card: The agent card as a dict, instead of reading it from ``url``.
        binding: ``"jsonrpc"``, ``"rest"`` (HTTP+JSON) or ``"grpc"`` to insist
            on one; default: the card's first usable interface.
        auth: Credentials: a bearer token or API key as a str (placed as the
            card's security scheme says), ``{"client_id": ..., "client_secret":
            ...}`` (OAuth2 client credentials at the card's token URL), or an
            Auth object / ``{"type": ...}`` dict used as is.
        headers: Headers sent with every call (not with the card request unless
            ``card_headers=True``).
        extensions: Extension URIs to ask for (``A2A-Extensions``).
        timeout: Seconds one call may take (None: no limit).
        stream_timeout: Seconds a stream may stay silent before it counts as
            dropped and is resumed (None: no limit).
        max_message_size: Largest response body or stream event, in bytes.
        max_card_size: Largest agent card, in bytes.
        resume: Resume dropped task streams (see the module docstring).
        max_resumes: Resumptions in a row without progress before giving up.
        resume_delay: First wait before resuming, in seconds (doubled per
            failed attempt, at most 10 s).
        card_cache: Use the process-wide card cache (ETag / max-age).
        card_headers: Also send ``headers`` with the card request.
        **options: :class:`HTTPConfig` fields for the HTTP bindings and the card
            request (``allow_insecure``, ``verify_ssl``, ``ca_certs``,
            ``client_cert``, ``transport``, ``max_retries`` ...).

    Raises:
        ConfigError: A bad argument (named).
        SecurityError: The card URL breaks the policy (plain HTTP to a
            non-loopback host, another scheme) - before any request.
    """

    _protocol = "a2a"

    def __init__(
        self,
        url: str | None = None,
        *,
        card: Mapping[str, Any] | None = None,
        binding: str | None = None,
        auth: Any = None,
        headers: Mapping[str, str] | None = None,
        extensions: Iterable[str] = (),
        timeout: float | None = 60.0,
        stream_timeout: float | None = None,
        max_message_size: int = 16 * 1024 * 1024,
        max_card_size: int = card_mod.DEFAULT_MAX_CARD_SIZE,
        resume: bool = True,
        max_resumes: int = 5,
        resume_delay: float = 0.25,
        card_cache: bool = True,
        card_headers: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        if url is None and card is None:
            raise errors.ConfigError("A2AClient: give the agent's url= or its card=")
        if url is not None and not isinstance(url, str):
            raise errors.ConfigError(f"url: must be a str, got {type(url).__name__}")
        _positive("timeout", timeout)
        _positive("stream_timeout", stream_timeout)
        _positive("max_message_size", max_message_size, allow_none=False)
        _positive("max_card_size", max_card_size, allow_none=False)
        _positive("resume_delay", resume_delay, allow_none=False)
        if isinstance(max_resumes, bool) or not isinstance(max_resumes, int) or max_resumes < 0:
            raise errors.ConfigError(f"max_resumes: must be an int >= 0, got {max_resumes!r}")
        if binding is not None:
            if not isinstance(binding, str) or (
                binding.lower() not in ALIASES and binding.upper() not in BINDINGS
            ):
                raise errors.ConfigError(
                    f"binding: must be 'jsonrpc', 'rest' or 'grpc', got {binding!r}"
                )
            binding = ALIASES.get(binding.lower(), binding.upper())
        if isinstance(extensions, str):
            extensions = [extensions]
        self._extensions = [str(e) for e in extensions]
        for ext in self._extensions:
            if not ext or "," in ext or any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in ext):
                raise errors.ConfigError(f"extensions: not a URI for a header: {ext!r}")
        if "auth" in options or "base_url" in options:
            raise errors.ConfigError("A2AClient: pass auth= directly; base_url is not used")
        self._allow_insecure = bool(options.get("allow_insecure", False))
        self._card_url: str | None = None
        if url is not None:
            self._card_url = card_mod.card_url_for(url)
            check_url(self._card_url, allow_insecure=self._allow_insecure, schemes=_HTTP_SCHEMES)
            self._target = redact_url(self._card_url)
        else:
            self._target = "<card given>"
        self._given_card = (
            card_mod.validate_card(copy.deepcopy(dict(card)), source="card=")
            if card is not None
            else None
        )
        self._binding_name = binding
        self._auth_spec = auth
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._stream_timeout = stream_timeout
        self._max = max_message_size
        self._max_card = max_card_size
        self._resume = resume
        self._max_resumes = max_resumes
        self._resume_policy = RetryConfig(
            max_retries=max_resumes, retry_delay=resume_delay, retry_backoff=2.0, max_delay=10.0
        )
        self._cache = card_mod.CARD_CACHE if card_cache else None
        self._card_headers = card_headers
        self._options = options
        self._card: dict[str, Any] | None = None
        self._interface: card_mod.Interface | None = None
        self._binding: Binding | None = None
        self._tenant = ""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def card(self) -> dict[str, Any]:
        """The agent card (a dict), once connected.

        Raises:
            ClosedError: Not connected yet (or closed).
        """
        if self._card is None:
            raise errors.ClosedError("A2AClient: not connected yet: the card is read by connect()")
        return self._card

    @property
    def interface(self) -> card_mod.Interface:
        """The interface in use (``binding``, ``url``, ``version``, ``tenant``)."""
        if self._interface is None:
            raise errors.ClosedError("A2AClient: not connected yet")
        return self._interface

    def _remote_card(self) -> bool:
        """Whether the card came from another machine (then it may not point us at this one)."""
        if self._card_url is None:
            return False
        host = urlsplit(self._card_url).hostname or ""
        return not is_local_address(host)

    async def _check_from_card(self, url: str, what: str, *, http: bool) -> None:
        if http:
            check_url(url, allow_insecure=self._allow_insecure, schemes=_HTTP_SCHEMES)
        if self._remote_card():
            target = url if "://" in url else f"grpc://{url}"
            await check_not_local(target, what=what)

    async def _open(self) -> None:
        card = self._given_card
        if card is None:
            assert self._card_url is not None
            card_options = {k: v for k, v in self._options.items() if k != "max_response_size"}
            if self._card_headers:
                card_options["headers"] = self._headers
            card = await card_mod.fetch_card(
                self._card_url,
                options=card_options,
                max_size=self._max_card,
                timeout=self._timeout,
                cache=self._cache,
                refuse_local=self._remote_card(),
            )
            card = copy.deepcopy(card)
        source = self._target
        interface = card_mod.select_interface(
            card, binding=self._binding_name, available=_available, source=source
        )
        await self._check_from_card(
            interface.url, "the interface URL", http=interface.binding in _HTTP_BINDINGS
        )
        auth, token_url = card_mod.auth_from_card(
            card, self._auth_spec, allow_insecure=self._allow_insecure
        )
        if token_url is not None:
            await self._check_from_card(token_url, "the OAuth2 token URL", http=True)
        service_params = {"A2A-Version": card_mod.PROTOCOL_VERSION}
        if self._extensions:
            service_params["A2A-Extensions"] = ",".join(self._extensions)
        options = dict(self._options)
        options["headers"] = self._headers
        if auth is not None:
            options["auth"] = auth
        context = BindingContext(
            url=interface.url,
            protocol_binding=interface.binding,
            protocol_version=interface.version,
            tenant=interface.tenant,
            service_params=service_params,
            options=options,
            max_message_size=self._max,
            timeout=self._timeout,
            stream_timeout=self._stream_timeout,
            auth_hint=card_mod.auth_hint(card),
            refuse_local=self._remote_card(),
            logger=self.logger,
        )
        binding_cls = load_binding(interface.binding)
        binding = binding_cls(context)  # type: ignore[call-arg]
        await binding.open()
        self._card = card
        self._interface = interface
        self._tenant = interface.tenant
        self._binding = binding
        self.logger.debug("%s: using %r", source, interface)

    async def _close(self) -> None:
        if self._binding is not None:
            await self._binding.close()

    async def _ready(self) -> Binding:
        if self._binding is None:
            await self.connect()
        self._ensure_usable()
        assert self._binding is not None
        return self._binding

    def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._tenant:
            body["tenant"] = self._tenant
        return body

    # -- messages ----------------------------------------------------------------------

    def _send_request(
        self,
        content: Any,
        *,
        task_id: str | None,
        context_id: str | None,
        media_type: str | None,
        metadata: Mapping[str, Any] | None,
        message_metadata: Mapping[str, Any] | None,
        history_length: int | None,
        accepted_output_modes: Iterable[str] | None,
        return_immediately: bool,
        push_url: str | None,
        push_token: str | None,
        message_id: str | None,
        reference_task_ids: Iterable[str],
    ) -> dict[str, Any]:
        message = build_message(
            content,
            task_id=task_id,
            context_id=context_id,
            media_type=media_type,
            metadata=message_metadata,
            reference_task_ids=reference_task_ids,
            message_id=message_id,
        )
        configuration: dict[str, Any] = {}
        if accepted_output_modes is not None:
            configuration["acceptedOutputModes"] = list(accepted_output_modes)
        if history_length is not None:
            configuration["historyLength"] = history_length
        if return_immediately:
            configuration["returnImmediately"] = True
        if push_url is not None:
            push: dict[str, Any] = {"url": push_url}
            if push_token:
                push["token"] = push_token
            configuration["taskPushNotificationConfig"] = push
        request: dict[str, Any] = {"message": message}
        if configuration:
            request["configuration"] = configuration
        if metadata:
            request["metadata"] = dict(metadata)
        return self._request(request)

    async def _check_push_url(self, push_url: str | None) -> None:
        if push_url is not None:
            if not isinstance(push_url, str):
                raise errors.ConfigError(f"push_url: must be a str, got {type(push_url).__name__}")
            check_url(push_url, allow_insecure=self._allow_insecure, schemes=_HTTP_SCHEMES)

    async def send(
        self,
        content: Any,
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        media_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        message_metadata: Mapping[str, Any] | None = None,
        history_length: int | None = None,
        accepted_output_modes: Iterable[str] | None = None,
        return_immediately: bool = False,
        push_url: str | None = None,
        push_token: str | None = None,
        message_id: str | None = None,
        reference_task_ids: Iterable[str] = (),
    ) -> Task | Message:
        """Send a message (``SendMessage``) and return the agent's answer.

        Args:
            content: A str (text), a dict (data), bytes (a file of
                ``media_type``), a :class:`Part`, or a list of those.
            task_id: The task to continue (answering ``input-required``).
            context_id: The conversation to continue.
            media_type: The media type of bytes content.
            metadata: Request metadata.
            message_metadata: Message metadata.
            history_length: Messages of history the returned task carries at most.
            accepted_output_modes: Media types we accept back.
            return_immediately: Return the task at once instead of waiting
                for a final or interrupted state.
            push_url: A webhook for push notifications about the task
                (checked by the URL policy).
            push_token: The token the agent sends back to the webhook.
            message_id: The message id (default a new UUID).
            reference_task_ids: Tasks the message refers to.

        Returns:
            A :class:`Task` (``.state``, ``.artifacts``, ``.text``...) or a
            direct :class:`Message` reply (``.text``).

        Raises:
            A2AError: The agent answered an A2A error (subclass per error).
            A2AAuthError: Credentials missing or refused.
            ConnectionError, TimeoutError: Transport failures.
            ProtocolError: A malformed answer.
        """
        await self._check_push_url(push_url)
        binding = await self._ready()
        request = self._send_request(
            content,
            task_id=task_id,
            context_id=context_id,
            media_type=media_type,
            metadata=metadata,
            message_metadata=message_metadata,
            history_length=history_length,
            accepted_output_modes=accepted_output_modes,
            return_immediately=return_immediately,
            push_url=push_url,
            push_token=push_token,
            message_id=message_id,
            reference_task_ids=reference_task_ids,
        )
        self.stats.sent += 1
        reply = parse_send_response(await binding.send_message(request), what="SendMessage")
        self.stats.received += 1
        return reply

    async def stream(
        self,
        content: Any,
        *,
        task_id: str | None = None,
        context_id: str | None = None,
        media_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        message_metadata: Mapping[str, Any] | None = None,
        history_length: int | None = None,
        accepted_output_modes: Iterable[str] | None = None,
        push_url: str | None = None,
        push_token: str | None = None,
        message_id: str | None = None,
        reference_task_ids: Iterable[str] = (),
    ) -> AsyncGenerator[A2AObject, None]:
        """Send a message (``SendStreamingMessage``) and yield the task's events as they come.

        Use ``async for event in agent.stream("...")``. Events are
        :class:`Task`, :class:`StatusUpdate`, :class:`ArtifactUpdate` or
        :class:`Message` (``event.kind``). The iteration ends after the
        task's final state (terminal, or ``input-required``/``auth-required``)
        or a direct message reply; a dropped stream is resumed (see the
        module docstring). Leaving the loop early closes the stream. When the
        card says the agent cannot stream (``capabilities.streaming`` false),
        the message goes by ``SendMessage`` and its answer is the one event.

        Args:
            content: As for :meth:`send`.
            task_id: As for :meth:`send`.
            context_id: As for :meth:`send`.
            media_type: As for :meth:`send`.
            metadata: As for :meth:`send`.
            message_metadata: As for :meth:`send`.
            history_length: As for :meth:`send`.
            accepted_output_modes: As for :meth:`send`.
            push_url: As for :meth:`send`.
            push_token: As for :meth:`send`.
            message_id: As for :meth:`send`.
            reference_task_ids: As for :meth:`send`.

        Yields:
            Each update once.

        Raises:
            ConnectionError: The stream dropped and could not be resumed.
            A2AError, A2AAuthError, ProtocolError: As for :meth:`send`.
        """
        await self._check_push_url(push_url)
        binding = await self._ready()
        request = self._send_request(
            content,
            task_id=task_id,
            context_id=context_id,
            media_type=media_type,
            metadata=metadata,
            message_metadata=message_metadata,
            history_length=history_length,
            accepted_output_modes=accepted_output_modes,
            return_immediately=False,
            push_url=push_url,
            push_token=push_token,
            message_id=message_id,
            reference_task_ids=reference_task_ids,
        )
        self.stats.sent += 1
        capabilities = self.card.get("capabilities")
        if isinstance(capabilities, dict) and capabilities.get("streaming") is False:
            # The card says the agent cannot stream: one SendMessage, its answer as the one event.
            reply = await binding.send_message(request)
            self.stats.received += 1
            yield parse_send_response(reply, what="SendMessage")
            return
        tracker = StreamTracker(task_id, continuing=task_id is not None)
        async with aclosing(
            self._follow(
                binding, lambda: binding.send_streaming_message(request), tracker, "stream"
            )
        ) as events:
            async for event in events:
                yield event

    async def subscribe(self, task_id: str) -> AsyncGenerator[A2AObject, None]:
        """Follow a running task (``SubscribeToTask``): the current task first, then its updates.

        Resumes like :meth:`stream`; ends after the task's final state.

        Args:
            task_id: The task.

        Yields:
            The :class:`Task`, then :class:`StatusUpdate` and
            :class:`ArtifactUpdate` events, each once.

        Raises:
            TaskNotFoundError: No such task.
            UnsupportedOperationError: The task already ended (or the agent
                cannot stream).
        """
        _check_id(task_id)
        binding = await self._ready()
        tracker = StreamTracker(task_id)
        request = self._request({"id": task_id})
        async with aclosing(
            self._follow(binding, lambda: binding.subscribe_to_task(request), tracker, "subscribe")
        ) as events:
            async for event in events:
                yield event

    async def _follow(
        self,
        binding: Binding,
        first: Callable[[], EventStream],
        tracker: StreamTracker,
        what: str,
    ) -> AsyncGenerator[A2AObject, None]:
        """Read a task stream, resubscribing and de-duplicating when it drops."""
        opener = first
        failures = 0
        resumed = False
        while True:
            progress = tracker.delivered
            try:
                async with aclosing(opener()) as raw_events:
                    async for raw in raw_events:
                        self.stats.received += 1
                        for event in tracker.accept(parse_event(raw, what=what)):
                            yield event
                        if tracker.done:
                            return
                problem: errors.CommunicationError = errors.ConnectionError(
                    f"{what}: the agent ended the stream before the task reached a final state"
                )
            except (errors.ConnectionError, errors.TimeoutError) as exc:
                problem = exc
            except errors.HTTPStatusError as exc:
                # A gateway answering 5xx while the agent restarts: worth another try.
                if not resumed or exc.status_code < 500:
                    raise
                problem = exc
            except UnsupportedOperationError:
                if not resumed:
                    raise
                # Subscribing to a task that ended meanwhile: its final form is still there.
                task = await self.get_task(tracker.task_id or "")
                for event in tracker.resync(task):
                    yield event
                if tracker.done:
                    return
                raise
            if tracker.done:
                return
            task_id = tracker.task_id
            if not self._resume or task_id is None:
                if task_id is None:
                    raise errors.ConnectionError(
                        f"{what}: the stream dropped before any event named the task; "
                        f"it cannot be resumed: {problem.message}"
                    ) from problem
                raise problem
            failures = 1 if tracker.delivered > progress else failures + 1
            if failures > self._max_resumes:
                raise errors.ConnectionError(
                    f"{what}: gave up resuming task {task_id!r} after {self._max_resumes} "
                    f"attempts in a row without an update: {problem.message}"
                ) from problem
            self.stats.reconnects += 1
            self.logger.info(
                "%s: the stream of task %r dropped (%s); subscribing again",
                self._target,
                task_id,
                problem.message,
            )
            await asyncio.sleep(backoff_delay(self._resume_policy, failures))
            request = self._request({"id": task_id})
            resumed = True
            opener = functools.partial(binding.subscribe_to_task, request)

    # -- tasks -------------------------------------------------------------------------

    async def get_task(self, task_id: str, *, history_length: int | None = None) -> Task:
        """The task as it is now (``GetTask``).

        Args:
            task_id: The task.
            history_length: Messages of history to include at most.

        Raises:
            TaskNotFoundError: No such task (``ERR_A2A_TASK_NOT_FOUND``).
        """
        _check_id(task_id)
        binding = await self._ready()
        request: dict[str, Any] = {"id": task_id}
        if history_length is not None:
            request["historyLength"] = history_length
        return Task(await binding.get_task(self._request(request)))

    async def cancel_task(self, task_id: str, *, metadata: Mapping[str, Any] | None = None) -> Task:
        """Ask the agent to cancel a task (``CancelTask``); returns the task.

        Raises:
            TaskNotFoundError: No such task.
            TaskNotCancelableError: The task already ended (``ERR_A2A_TASK_NOT_CANCELABLE``).
        """
        _check_id(task_id)
        binding = await self._ready()
        request: dict[str, Any] = {"id": task_id}
        if metadata:
            request["metadata"] = dict(metadata)
        return Task(await binding.cancel_task(self._request(request)))

    async def list_tasks(
        self,
        *,
        context_id: str | None = None,
        state: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        history_length: int | None = None,
        include_artifacts: bool | None = None,
    ) -> dict[str, Any]:
        """The agent's tasks (``ListTasks``), a page at a time.

        Args:
            context_id: Only the tasks of this conversation.
            state: Only tasks in this state (``working``, ``completed`` ...).
            page_size: Tasks per page.
            page_token: The ``nextPageToken`` of the previous page.
            history_length: Messages of history per task at most.
            include_artifacts: Whether to include the artifacts.

        Returns:
            The ``ListTasksResponse`` dict: ``tasks`` (as :class:`Task`),
            ``nextPageToken``, ``pageSize``, ``totalSize``.
        """
        binding = await self._ready()
        request: dict[str, Any] = {}
        if context_id:
            request["contextId"] = context_id
        if state is not None:
            wire = _STATE_NAMES.get(state, state)
            if wire not in _STATE_NAMES.values():
                raise errors.ConfigError(
                    f"state: must be one of {', '.join(_STATE_NAMES)}, got {state!r}"
                )
            request["status"] = wire
        if page_size is not None:
            request["pageSize"] = page_size
        if page_token:
            request["pageToken"] = page_token
        if history_length is not None:
            request["historyLength"] = history_length
        if include_artifacts is not None:
            request["includeArtifacts"] = include_artifacts
        response = dict(await binding.list_tasks(self._request(request)))
        tasks = response.get("tasks")
        response["tasks"] = (
            [Task(t) for t in tasks if isinstance(t, dict)] if isinstance(tasks, list) else []
        )
        return response

    async def get_extended_card(self) -> dict[str, Any]:
        """The authenticated extended agent card (``GetExtendedAgentCard``).

        Raises:
            ExtendedAgentCardNotConfiguredError: The agent has none.
        """
        binding = await self._ready()
        return await binding.get_extended_agent_card(self._request({}))

    async def set_push_config(
        self, task_id: str, url: str, *, token: str | None = None, config_id: str | None = None
    ) -> dict[str, Any]:
        """Register a webhook for a task's updates (``CreateTaskPushNotificationConfig``).

        Args:
            task_id: The task.
            url: The webhook (checked by the URL policy before anything is sent).
            token: A token the agent sends back with each notification.
            config_id: The configuration's id, if chosen by us.

        Raises:
            SecurityError: The webhook URL breaks the policy.
            PushNotificationNotSupportedError: The agent has no push notifications.
        """
        _check_id(task_id)
        await self._check_push_url(url)
        binding = await self._ready()
        request: dict[str, Any] = {"taskId": task_id, "url": url}
        if token:
            request["token"] = token
        if config_id:
            request["id"] = config_id
        return await binding.create_push_config(self._request(request))

    async def health_check(self, *, timeout: float = 5.0) -> HealthStatus:
        """Read the agent card again (no cache) as a probe.

        Returns:
            Healthy with the agent's name, or unhealthy with the reason.
        """

        async def probe() -> str:
            if self._card_url is None:
                return "card given; nothing to probe"
            card = await card_mod.fetch_card(
                self._card_url,
                options={k: v for k, v in self._options.items() if k != "max_response_size"},
                max_size=self._max_card,
                timeout=timeout,
                cache=None,
                refuse_local=self._remote_card(),
            )
            return f"agent {str(card.get('name'))[:80]!r} at {self._target}"

        return await run_probe(probe, timeout=timeout, what="a2a")

    def __repr__(self) -> str:
        binding = self._interface.binding if self._interface is not None else self._binding_name
        return f"<A2AClient {self._target} binding={binding} state={self.state.value}>"


def _check_id(task_id: Any) -> None:
    if not isinstance(task_id, str) or not task_id:
        raise errors.ConfigError(f"task_id: must be a non-empty string, got {task_id!r}")
