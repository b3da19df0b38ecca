"""GRPCClient: call any gRPC service with dicts, from a .proto file or through reflection.

Descriptors come from ``proto_files`` compiled in memory by grpcio-tools (and
cached), or, with no proto given, from the server's reflection service (v1,
falling back to v1alpha). All four call shapes are offered::

    async with GRPCClient("localhost:50051") as client:
        reply = await client.call("AgentService", "ExecuteTask", request={"task_id": "1"})
        async for token in client.stream_call("AgentService", "StreamTokens", request={...}):
            ...

:func:`generate_grpc_client` gives attribute access instead:
``await client.AgentService.ExecuteTask(task_id="123")``.

gRPC status errors are translated here, once: DEADLINE_EXCEEDED ->
:class:`~.errors.TimeoutError`, UNAVAILABLE -> :class:`~.errors.ConnectionError`,
UNAUTHENTICATED -> :class:`~.errors.AuthenticationError`, a message over the
size limit -> :class:`~.errors.MessageTooLargeError`, any other status ->
:class:`~.errors.RemoteError` with ``remote_code`` the status name and
``data`` its details. Calls that failed with UNAVAILABLE are retried through
the shared retry module: unary calls, and server-streaming calls before the
first response (a request stream cannot be replayed, so client-streaming and
bidirectional calls are not retried).

Reconnection: the channel reconnects by itself; its backoff follows
``retry_delay``. A stream broken mid-way raises ConnectionError and is not
resumed (gRPC streams carry no resume point). Closing the client cancels
every call in flight; stream iterators then end quietly, unary calls raise
ClosedError.
"""

from __future__ import annotations

import asyncio
import collections
import os
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, NoReturn, Self

import grpc
from grpc_health.v1 import health_pb2

from ..core import errors
from ..core.auth import Auth, OAuth2Auth, build_auth
from ..core.config import GRPCConfig, merge_config
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient
from ..core.retry import retry_after_first, retrying
from ..core.security import check_endpoint, grpc_target_hosts, redact_url
from ..core.telemetry import (
    NO_TELEMETRY,
    Instrumentation,
    OperationTelemetry,
    measure,
    monotonic,
)
from .convert import message_schema, message_to_dict, to_message
from .descriptors import MethodInfo, Schema, schema_from_protos
from .reflection import load_schema

__all__ = [
    "UNSET",
    "GRPCClient",
    "GeneratedGRPCClient",
    "MethodProxy",
    "ResponseStream",
    "ServiceProxy",
    "generate_grpc_client",
    "parse_target",
    "translate_rpc_error",
]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marker for "use the client default" (distinct from None = no deadline)."""

Metadata = Sequence[tuple[str, str]] | Mapping[str, str]
Requests = AsyncIterable[Any] | Iterable[Any]

_HEALTH_PATH = "/grpc.health.v1.Health/Check"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_COMPRESSION = {
    None: grpc.Compression.NoCompression,
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}


def parse_target(target: str) -> tuple[str, str, bool]:
    """Split a target into what grpcio dials, its first host, and TLS-by-scheme.

    Accepts ``host:port``, ``[::1]:port``, ``grpc://``/``grpcs://`` URLs and
    grpcio's own ``dns:``, ``ipv4:``, ``ipv6:`` and ``unix:`` forms. A target
    may name several addresses (``ipv4:a:p,b:p``): :func:`.grpc_target_hosts`
    gives them all, and the client checks every one.

    Args:
        target: The configured target.

    Returns:
        ``(dial_target, host, secure_scheme)``; unix sockets report ``localhost``.

    Raises:
        ConfigError: A malformed target or a bad port, named.
        SecurityError: A resolver whose addresses cannot be checked (see
            :func:`.grpc_target_hosts`).
    """
    dial, secure = _dial_target(target)
    return dial, grpc_target_hosts(target)[0][0], secure


def _dial_target(target: str) -> tuple[str, bool]:
    """What grpcio dials (our ``grpc://``/``grpcs://`` prefix removed), and TLS-by-scheme."""
    dial = target.strip()
    lowered = dial.lower()
    if lowered.startswith(("grpcs://", "grpc://")):
        return dial.split("://", 1)[1].rstrip("/"), lowered.startswith("grpcs://")
    return dial, False


def translate_rpc_error(exc: grpc.aio.AioRpcError, what: str) -> errors.CommunicationError:
    """Map a gRPC status error onto our hierarchy (the one boundary for gRPC).

    Args:
        exc: The grpc.aio error.
        what: The call, for the message (``/pkg.Service/Method``).

    Returns:
        The translated error, chained to ``exc``; the status name and details
        are in the message (and in ``remote_code``/``data`` for RemoteError).
    """
    code = exc.code()
    name = code.name if code is not None else "UNKNOWN"
    details = exc.details() or ""
    message = f"{what} failed with {name}: {details}"
    err: errors.CommunicationError
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        err = errors.TimeoutError(message)
    elif code == grpc.StatusCode.UNAVAILABLE:
        err = errors.ConnectionError(message)
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        err = errors.AuthenticationError(message)
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        err = errors.MessageTooLargeError(message)
    else:
        err = errors.RemoteError(message, remote_code=name, data=details)
    err.__cause__ = exc
    return err


_EOF = grpc.aio.EOF


# Replies a stream's reader may hold that nobody asked for yet. Few: a full buffer
# stops the reads, so gRPC flow control holds the server back (and memory stays
# bounded by a few messages).
_READ_AHEAD = 4


class _Replies:
    """The replies a stream's reader task got ahead of ``__anext__``: a bounded FIFO.

    One producer (the reader), waiting consumers. A consumer cancelled while
    waiting takes nothing out, so it loses nothing. Leaner than asyncio.Queue
    (one deque, no Event; a few KiB less per stream), and streams are many.
    """

    __slots__ = ("_getters", "_items", "_limit", "_putter")

    def __init__(self, limit: int) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._limit = limit
        self._getters: list[asyncio.Future[None]] = []
        self._putter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        """No room for another reply: the reader waits."""
        return len(self._items) >= self._limit

    def put_nowait(self, item: Any) -> None:
        """Append ``item`` (room or not) and wake the waiting consumers."""
        self._items.append(item)
        getters = self._getters
        if getters:
            for getter in getters:
                if not getter.done():
                    getter.set_result(None)
            getters.clear()

    async def put(self, item: Any) -> None:
        """Append ``item`` once there is room."""
        while len(self._items) >= self._limit:
            putter = self._putter = asyncio.get_running_loop().create_future()
            try:
                await putter
            finally:
                self._putter = None
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        """Take the oldest item (there must be one) and let the reader go on."""
        item = self._items.popleft()
        putter = self._putter
        if putter is not None and not putter.done():
            putter.set_result(None)
        return item

    async def get(self) -> Any:
        """Take the oldest item, waiting for one."""
        while not self._items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            finally:
                if not getter.done() or getter.cancelled():
                    # Our caller was cancelled: nothing was taken out.
                    try:
                        self._getters.remove(getter)
                    except ValueError:
                        pass
        return self.get_nowait()


async def _read_replies(call: Any, replies: _Replies) -> None:
    """Read ``call``'s replies into ``replies``, then EOF or the error that ended it.

    The one reader task of a ResponseStream: grpc.aio cancels the whole RPC
    when a ``read()`` is cancelled, so reads run here and ``__anext__`` only
    waits on the buffer, which a cancelled caller leaves untouched. It refers
    to the call and the buffer, never to the stream, so a stream nobody holds
    is still collected. A status error is put as a value (``__anext__`` raises
    it); a cancelled call is put as a ``CancelledError`` instance.
    """
    try:
        while True:
            reply = await call.read()
            if replies.full():
                await replies.put(reply)
            else:
                replies.put_nowait(reply)
            if reply is _EOF:
                return
    except asyncio.CancelledError:
        # The call was cancelled (the writer, close()) or this task was
        # (aclose(), cancel(), close()). A consumer waits only on an empty
        # buffer: wake it. A full one is drained first, unless this task is
        # ending (then the stream is finished and nobody reads the rest).
        task = asyncio.current_task()
        cancelled = task is not None and task.cancelling() > 0
        if not replies.full():
            replies.put_nowait(asyncio.CancelledError())
        elif not cancelled:
            await replies.put(asyncio.CancelledError())
        if cancelled:
            raise
    except Exception as exc:
        # A status error, or a bug: __anext__ raises it, in order after the replies.
        await replies.put(exc)


def _is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, errors.ConnectionError)


async def _aiter(requests: Requests) -> AsyncIterator[Any]:
    if isinstance(requests, AsyncIterable):
        async for item in requests:
            yield item
    else:
        for item in requests:
            yield item


def _metadata_items(metadata: Metadata | None) -> list[tuple[str, str]]:
    if not metadata:
        return []
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    return [(str(k).lower(), v) for k, v in items]


class GRPCClient(BaseClient):
    """Async gRPC client that takes and returns dicts.

    Args:
        target: ``host:port`` (same as ``config.target``).
        config: A :class:`GRPCConfig`; keyword overrides are merged over it.
        **overrides: Any GRPCConfig field, e.g. ``proto_files=[...]``.

    Raises:
        ConfigError: An invalid field (named).
        SecurityError: A plain-text channel to a non-loopback host without
            ``allow_insecure=True``.
    """

    _protocol = "grpc"

    def __init__(
        self, target: str | None = None, *, config: GRPCConfig | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        if target is not None:
            overrides["target"] = target
        self.config = merge_config(GRPCConfig, config, overrides)
        cfg = self.config
        self._dial, scheme_secure = _dial_target(cfg.target)
        self._secure = cfg.secure or scheme_secure
        self._check_policy()
        self._auth: Auth | None = build_auth(cfg.auth, allow_insecure=cfg.allow_insecure)
        self._retry = cfg.retry_config()
        self._static_md: tuple[tuple[str, str], ...] = tuple(_metadata_items(cfg.metadata))
        self._default_timeout: float | None = cfg.timeout_seconds or None
        self._channel: Any = None
        self._schema: Schema | None = None
        self._schema_lock: asyncio.Lock | None = None
        self._callables: dict[str, Any] = {}
        # Weak: a stream nobody holds any more is collected, and its call cancelled.
        self._streams: weakref.WeakSet[ResponseStream] = weakref.WeakSet()

    def _check_policy(self) -> None:
        """Every address the target names passes the policy, before grpcio sees it.

        grpcio tries the addresses of a list (``ipv4:a:p,b:p``) in turn, so
        checking only the first would let the credentials reach the others.
        """
        cfg = self.config
        exempt = self._secure or cfg.allow_insecure
        try:
            hosts = grpc_target_hosts(cfg.target)
        except errors.SecurityError:
            # A resolver we cannot look into: fine over TLS or with the opt-out.
            if not exempt:
                raise
            return
        what = f"gRPC target {redact_url(cfg.target)}"
        for host, _ in hosts:
            check_endpoint(
                secure=self._secure, host=host, allow_insecure=cfg.allow_insecure, what=what
            )

    @property
    def target(self) -> str:
        """The configured target."""
        return self.config.target

    @property
    def channel(self) -> grpc.aio.Channel | None:
        """The underlying ``grpc.aio.Channel`` once connected, for anything else."""
        return self._channel

    # -- lifecycle ---------------------------------------------------------------

    def _channel_options(self) -> list[tuple[str, Any]]:
        cfg = self.config
        backoff_ms = max(int(cfg.retry_delay * 1000), 100)
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", cfg.max_message_length),
            ("grpc.max_receive_message_length", cfg.max_message_length),
            ("grpc.initial_reconnect_backoff_ms", backoff_ms),
            ("grpc.min_reconnect_backoff_ms", backoff_ms),
            ("grpc.max_reconnect_backoff_ms", max(backoff_ms, 30_000)),
        ]
        if cfg.keepalive_time_ms:
            options += [
                ("grpc.keepalive_time_ms", cfg.keepalive_time_ms),
                ("grpc.keepalive_timeout_ms", cfg.keepalive_timeout_ms),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
            ]
        given = {name for name, _ in cfg.options}
        return [o for o in options if o[0] not in given] + list(cfg.options)

    async def _credentials(self) -> grpc.ChannelCredentials:
        cfg = self.config
        paths = {
            "root_certificates": cfg.root_certificates or cfg.ca_certs,
            "private_key": cfg.private_key or cfg.client_key or cfg.client_cert,
            "certificate_chain": cfg.certificate_chain or cfg.client_cert,
        }
        loaded: dict[str, bytes | None] = {}
        for name, path in paths.items():
            loaded[name] = None if path is None else await asyncio.to_thread(_read_pem, name, path)
        return grpc.ssl_channel_credentials(**loaded)

    async def _open(self) -> None:
        cfg = self.config
        options = self._channel_options()
        compression = _COMPRESSION[cfg.compression]
        if self._secure:
            creds = await self._credentials()
            self._channel = grpc.aio.secure_channel(
                self._dial, creds, options=options, compression=compression
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                self._dial, options=options, compression=compression
            )
        self.logger.debug("gRPC channel to %s opened (secure=%s)", self._dial, self._secure)

    async def _close(self) -> None:
        for stream in list(self._streams):
            stream._client_closed()
        self._streams.clear()
        channel, self._channel = self._channel, None
        self._callables.clear()
        if channel is not None:
            await channel.close()

    async def _ready(self) -> Any:
        if self._channel is None:
            await self.connect()
        self._ensure_usable()
        return self._channel

    # -- descriptors ---------------------------------------------------------------

    async def _get_schema(self) -> Schema:
        schema = self._schema
        if schema is not None:
            return schema
        if self._schema_lock is None:
            self._schema_lock = asyncio.Lock()
        async with self._schema_lock:
            if self._schema is None:
                self._schema = await self._load_schema()
            return self._schema

    async def _load_schema(self) -> Schema:
        cfg = self.config
        if cfg.proto_files:
            return await asyncio.to_thread(
                schema_from_protos, cfg.proto_files, cfg.proto_include_paths
            )
        channel = await self._ready()
        what = f"reflection on {redact_url(cfg.target)}"

        async def attempt_once() -> Schema:
            try:
                return await load_schema(
                    channel,
                    timeout=self._default_timeout,
                    metadata=await self._metadata(None),
                    target=self._dial,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    raise errors.ConfigError(
                        f"proto_files: {redact_url(cfg.target)} offers no reflection service; "
                        "pass proto_files=[...]"
                    ) from exc
                self.stats.errors += 1
                raise translate_rpc_error(exc, what) from exc
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise

        async for attempt in retrying(
            self._retry, retry_if=_is_unavailable, before_sleep=self._log_retry(what)
        ):
            with attempt:
                schema = await attempt_once()
        self.logger.debug("loaded %d services by reflection", len(schema.services))
        return schema

    async def _method(self, service: str, method: str, used: str) -> MethodInfo:
        schema = await self._get_schema()
        info = schema.method(service, method)
        if info.client_method != used:
            raise errors.ConfigError(
                f"method: {info.path} is a {info.shape.replace('_', '-')} method; "
                f"call it with {info.client_method}(), not {used}()"
            )
        return info

    def _callable(self, channel: Any, info: MethodInfo) -> Any:
        found = self._callables.get(info.path)
        if found is None:
            kind = {
                "unary": channel.unary_unary,
                "server_streaming": channel.unary_stream,
                "client_streaming": channel.stream_unary,
                "bidi_streaming": channel.stream_stream,
            }[info.shape]
            found = kind(
                info.path,
                request_serializer=info.request_type.SerializeToString,
                response_deserializer=info.response_type.FromString,
            )
            self._callables[info.path] = found
        return found

    # -- per-call helpers --------------------------------------------------------

    async def _metadata(self, extra: Metadata | None) -> tuple[tuple[str, str], ...] | None:
        if self._otel.tracing:  # the call's span is the current one
            extra = self._otel.inject_pairs(_metadata_items(extra))
        if self._auth is None and not extra:
            return self._static_md or None
        items = list(self._static_md)
        if self._auth is not None:
            items += _metadata_items(await self._auth.headers())
        items += _metadata_items(extra)
        return tuple(items)

    def _timeout(self, timeout: Any) -> float | None:
        if timeout is UNSET:
            return self._default_timeout
        return None if timeout is None else float(timeout)

    def _log_retry(self, what: str) -> Any:
        def before_sleep(state: Any) -> None:
            self.logger.info("retrying %s (attempt %d was UNAVAILABLE)", what, state.attempt_number)

        return before_sleep

    def _raise_if_closed(self) -> None:
        """A call cancelled by close() surfaces as CancelledError; say ClosedError."""
        task = asyncio.current_task()
        if self.is_closed and (task is None or task.cancelling() == 0):
            raise errors.ClosedError(f"{type(self).__name__} was closed during the call")

    async def _refresh_auth(self, metadata: Sequence[tuple[str, str]] | None) -> bool:
        """After UNAUTHENTICATED: drop a cached OAuth2 token so the next call refetches."""
        if not isinstance(self._auth, OAuth2Auth) or not metadata:
            return False
        for key, value in metadata:
            if key == "authorization" and value.startswith("Bearer "):
                self._auth.invalidate(value[len("Bearer ") :])
                return True
        return False

    # -- the four call shapes ------------------------------------------------------

    async def call(
        self,
        service: str,
        method: str,
        request: Any = None,
        *,
        timeout: float | None = UNSET,
        metadata: Metadata | None = None,
        as_message: bool = False,
    ) -> Any:
        """Make a unary call.

        Safe to cancel: the RPC is cancelled with the awaiting task.

        Args:
            service: Service name, short (``AgentService``) or full.
            method: Method name.
            request: A dict of fields, a request message, or None (empty).
            timeout: Deadline in seconds; default ``config.timeout_seconds``;
                None for no deadline. Each retry gets a fresh deadline.
            metadata: Extra metadata for this call.
            as_message: Return the response message instead of a dict.

        Returns:
            The response as a dict (or the message).

        Raises:
            ConfigError: Unknown service, method or field, or the method is
                streaming (the message says which method to use).
            TimeoutError: DEADLINE_EXCEEDED.
            ConnectionError: UNAVAILABLE, after the retries.
            AuthenticationError: UNAUTHENTICATED.
            MessageTooLargeError: The request or response exceeds
                ``max_message_length``.
            RemoteError: Any other status (``remote_code`` = status name).
            ClosedError: The client is (or was, during the call) closed.
        """
        info = await self._method(service, method, "call")
        # The telemetry is a with-block, not a coroutine wrapping the call: the
        # plain path runs in this frame.
        with _CallTelemetry(self, info) if self._otel.enabled else NO_TELEMETRY:
            message = to_message(info.request_type, request)
            channel = await self._ready()
            stub = self._callable(channel, info)
            md = await self._metadata(metadata)
            deadline = self._timeout(timeout)
            try:
                reply = await stub(message, timeout=deadline, metadata=md)
            except grpc.aio.AioRpcError as exc:
                self.stats.errors += 1
                err = translate_rpc_error(exc, info.path)
                if isinstance(err, errors.AuthenticationError) and await self._refresh_auth(md):
                    reply = await self._unary_once(stub, message, deadline, metadata, info)
                elif isinstance(err, errors.ConnectionError) and self._retry.max_retries:
                    reply = await self._unary_retry(stub, message, deadline, metadata, info, err)
                else:
                    raise err from exc
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise
            self.stats.sent += 1
            self.stats.received += 1
            return reply if as_message else message_to_dict(reply)

    async def _unary_once(
        self, stub: Any, message: Any, deadline: float | None, metadata: Any, info: MethodInfo
    ) -> Any:
        md = await self._metadata(metadata)
        try:
            return await stub(message, timeout=deadline, metadata=md)
        except grpc.aio.AioRpcError as exc:
            self.stats.errors += 1
            raise translate_rpc_error(exc, info.path) from exc
        except asyncio.CancelledError:
            self._raise_if_closed()
            raise

    async def _unary_retry(
        self,
        stub: Any,
        message: Any,
        deadline: float | None,
        metadata: Any,
        info: MethodInfo,
        first: errors.CommunicationError,
    ) -> Any:
        async def again() -> Any:
            self._ensure_usable()
            return await self._unary_once(stub, message, deadline, metadata, info)

        return await retry_after_first(
            self._retry,
            first,
            again,
            retry_if=_is_unavailable,
            before_sleep=self._log_retry(info.path),
        )

    def stream_call(
        self,
        service: str,
        method: str,
        request: Any = None,
        *,
        timeout: float | None = UNSET,
        metadata: Metadata | None = None,
        as_message: bool = False,
    ) -> ResponseStream:
        """Make a server-streaming call: ``async for reply in client.stream_call(...)``.

        Nothing is sent until iteration starts. UNAVAILABLE before the first
        response is retried; later it raises ConnectionError.

        Args:
            service: Service name, short or full.
            method: Method name.
            request: A dict, a request message, or None.
            timeout: Deadline of the whole stream; default ``config.timeout_seconds``.
            metadata: Extra metadata.
            as_message: Yield messages instead of dicts.

        Returns:
            An async iterator of responses (also an async context manager;
            ``aclose()`` cancels the call).
        """
        return ResponseStream(
            self, service, method, "stream_call", request, None, timeout, metadata, as_message
        )

    async def stream_send(
        self,
        service: str,
        method: str,
        requests: Requests,
        *,
        timeout: float | None = UNSET,
        metadata: Metadata | None = None,
        as_message: bool = False,
    ) -> Any:
        """Make a client-streaming call: send every request, return the one reply.

        Not retried (the request stream cannot be replayed). Safe to cancel.

        Args:
            service: Service name, short or full.
            method: Method name.
            requests: An async or sync iterable of dicts (or messages).
            timeout: Deadline of the whole call.
            metadata: Extra metadata.
            as_message: Return the message instead of a dict.

        Returns:
            The response as a dict (or the message).

        Raises:
            ConfigError: Unknown service/method/field, or the wrong call shape.
            CommunicationError: The status errors listed on :meth:`call`.
        """
        info = await self._method(service, method, "stream_send")
        with _CallTelemetry(self, info) if self._otel.enabled else NO_TELEMETRY:
            channel = await self._ready()
            stub = self._callable(channel, info)
            call = stub(timeout=self._timeout(timeout), metadata=await self._metadata(metadata))
            sent = 0
            try:
                try:
                    async for item in _aiter(requests):
                        await call.write(to_message(info.request_type, item))
                        sent += 1
                    await call.done_writing()
                except asyncio.InvalidStateError:
                    # The server ended the call early; awaiting it gives the status.
                    pass
                reply = await call
            except grpc.aio.AioRpcError as exc:
                self.stats.errors += 1
                raise translate_rpc_error(exc, info.path) from exc
            except asyncio.CancelledError:
                self._raise_if_closed()
                raise
            finally:
                if not call.done():
                    call.cancel()
                self.stats.sent += sent
            self.stats.received += 1
            return reply if as_message else message_to_dict(reply)

    def bidirectional_stream(
        self,
        service: str,
        method: str,
        requests: Requests,
        *,
        timeout: float | None = UNSET,
        metadata: Metadata | None = None,
        as_message: bool = False,
    ) -> ResponseStream:
        """Make a bidirectional call: requests go out while responses come in.

        The requests are sent by one background task owned by the client; if
        producing or converting a request fails, the call is cancelled and the
        iterator raises that error. Not retried.

        Args:
            service: Service name, short or full.
            method: Method name.
            requests: An async or sync iterable of dicts (or messages).
            timeout: Deadline of the whole call.
            metadata: Extra metadata.
            as_message: Yield messages instead of dicts.

        Returns:
            An async iterator of responses (``aclose()`` cancels the call).
        """
        return ResponseStream(
            self,
            service,
            method,
            "bidirectional_stream",
            None,
            requests,
            timeout,
            metadata,
            as_message,
        )

    # -- telemetry -------------------------------------------------------------------

    def _otel_attributes(self, info: MethodInfo) -> dict[str, Any]:
        """The call's attributes, as a new dict (parsed once per target and method)."""
        key = (self.config.target, info.path)
        cached = _OTEL_ATTRIBUTES.get(key)
        if cached is None:
            if len(_OTEL_ATTRIBUTES) >= 1024:
                _OTEL_ATTRIBUTES.clear()
            cached = _OTEL_ATTRIBUTES[key] = self._parse_otel_attributes(info)
        return dict(cached)

    def _parse_otel_attributes(self, info: MethodInfo) -> dict[str, Any]:
        service, _, method = info.path[1:].rpartition("/")
        host, _, port = _dial_target(self.config.target)[0].rpartition(":")
        attributes: dict[str, Any] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
            "server.address": host.strip("[]") or self.config.target,
        }
        if port.isdigit():
            attributes["server.port"] = int(port)
        return attributes

    # -- introspection and health ----------------------------------------------------

    async def list_services(self) -> list[str]:
        """Full names of the services this client can call.

        Returns:
            Sorted service names.
        """
        return (await self._get_schema()).service_names()

    async def describe(self) -> dict[str, Any]:
        """Services and methods, each with its request and response JSON Schema.

        Returns:
            ``{"target", "source", "services": [{"name", "short_name",
            "description", "methods": [{"name", "full_name", "path", "shape",
            "client_method", "client_streaming", "server_streaming",
            "input_type", "output_type", "description", "request_schema",
            "response_schema"}]}]}``.
        """
        schema = await self._get_schema()
        services = []
        for full in schema.service_names():
            methods = []
            for info in schema.methods(full):
                desc = info.descriptor
                methods.append(
                    {
                        "name": info.name,
                        "full_name": f"{full}.{info.name}",
                        "path": info.path,
                        "shape": info.shape,
                        "client_method": info.client_method,
                        "client_streaming": info.client_streaming,
                        "server_streaming": info.server_streaming,
                        "input_type": desc.input_type.full_name,
                        "output_type": desc.output_type.full_name,
                        "description": info.description,
                        "request_schema": message_schema(desc.input_type),
                        "response_schema": message_schema(desc.output_type),
                    }
                )
            services.append(
                {
                    "name": full,
                    "short_name": full.rsplit(".", 1)[-1],
                    "description": schema.comments.get(full, ""),
                    "methods": methods,
                }
            )
        return {"target": self.config.target, "source": schema.source, "services": services}

    async def health_check(self, service: str = "", *, timeout: float = 5.0) -> HealthStatus:
        """Probe with ``grpc.health.v1.Health/Check``, else channel readiness.

        Args:
            service: The service to ask about ("" = the whole server).
            timeout: Seconds the probe may take.

        Returns:
            Healthy when the server answers SERVING (or, without a health
            service, when the channel is ready).
        """
        what = f"gRPC health of {redact_url(self.config.target)}"

        async def probe() -> str:
            channel = await self._ready()
            check = channel.unary_unary(
                _HEALTH_PATH,
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            try:
                reply = await check(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=timeout,
                    metadata=await self._metadata(None),
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise translate_rpc_error(exc, _HEALTH_PATH) from exc
                # The server answered, so the channel is up; it just has no health service.
                await channel.channel_ready()
                return "channel ready (no grpc.health.v1 service)"
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status != _SERVING:
                raise errors.RemoteError(f"status {status}", remote_code=status)
            return f"grpc.health.v1 {service or 'server'}: {status}"

        return await run_probe(probe, timeout=timeout, what=what)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.config.target)} {self.state.value}>"


def _read_pem(name: str, path: str) -> bytes:
    try:
        with open(os.fspath(path), "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise errors.ConfigError(f"{name}: cannot read {path!r}: {exc}") from exc


class ResponseStream:
    """The responses of a server-streaming or bidirectional call.

    Use ``async for reply in stream`` (optionally inside ``async with stream``).
    The call starts on the first iteration and ends quietly when the server
    finishes or the client is closed; a failed status raises the translated
    error. ``aclose()`` cancels the call (and the request writer).

    Safe to cancel: a ``__anext__`` cancelled by the caller (e.g. under
    ``asyncio.timeout``) leaves the call running and loses no reply; the next
    ``__anext__`` returns the one it was waiting for. (grpc.aio cancels the
    whole RPC when a ``read()`` is cancelled, so one reader task per call
    reads the replies into a small buffer, a few ahead at most, and
    ``__anext__`` only waits on that buffer.) To end the call, ``aclose()``
    or leave ``async with stream``; a server stream that nothing refers to
    any more is cancelled when it is collected (a bidirectional one lives on
    while its request writer runs).
    """

    def __init__(
        self,
        client: GRPCClient,
        service: str,
        method: str,
        used: str,
        request: Any,
        requests: Requests | None,
        timeout: Any,
        metadata: Metadata | None,
        as_message: bool,
    ) -> None:
        self._client = client
        self._stats = client.stats
        self._service = service
        self._method_name = method
        self._used = used
        self._request = request
        self._requests = requests
        self._timeout = timeout
        self._metadata = metadata
        self._as_message = as_message
        self._info: MethodInfo | None = None
        self._call: Any = None
        self._writer: asyncio.Task[None] | None = None
        self._write_error: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies = _Replies(_READ_AHEAD)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._received = 0
        self._finished = False
        self._span: Any = None
        self._started = 0.0

    @property
    def call(self) -> Any:
        """The underlying grpc.aio call once started (metadata, trailers...)."""
        return self._call

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _start(self) -> None:
        client = self._client
        info = await client._method(self._service, self._method_name, self._used)
        self._info = info
        message = None
        if self._requests is None:
            message = to_message(info.request_type, self._request)
        channel = await client._ready()
        stub = client._callable(channel, info)
        otel = client._otel
        if otel.enabled and not self._started:
            self._started = monotonic()
            if otel.tracing:
                self._span = otel.start_span(info.path[1:], "client", client._otel_attributes(info))
        with otel.current(self._span):
            md = await client._metadata(self._metadata)
        deadline = client._timeout(self._timeout)
        client._streams.add(self)
        self._loop = asyncio.get_running_loop()
        if self._requests is None:
            call = self._call = stub(message, timeout=deadline, metadata=md)
            client.stats.sent += 1
        else:
            call = self._call = stub(timeout=deadline, metadata=md)
            self._writer = client._tasks.spawn(
                self._write(call, self._requests, info), f"grpc-writer {info.path}"
            )
        # A reader per call. A retried call reuses the buffer: it is empty, the
        # last reader ended with the error that was just taken out of it.
        self._reader = client._tasks.spawn(
            _read_replies(call, self._replies), f"grpc-reader {info.path}"
        )

    async def _write(self, call: Any, requests: Requests, info: MethodInfo) -> None:
        try:
            async for item in _aiter(requests):
                await call.write(to_message(info.request_type, item))
                self._client.stats.sent += 1
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The call already ended; the reader raises its status, nothing is lost.
            return
        except Exception as exc:
            # A bad request or a failing request iterator: end the call and let
            # the reader raise this error instead of a bare CANCELLED.
            self._write_error = exc
            call.cancel()

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        if self._call is None:
            try:
                await self._start()
            except asyncio.CancelledError:
                # Cancelled before the call was made: the next __anext__ starts it.
                raise
            except BaseException as exc:
                await self._finish(exc)
                raise
        replies = self._replies
        # Waiting on the buffer, not on a read: a cancelled caller loses nothing.
        reply = replies.get_nowait() if len(replies) else await replies.get()
        if isinstance(reply, BaseException):
            reply = await self._failed(reply)
        if reply is _EOF:
            await self._finish()
            raise StopAsyncIteration
        self._received += 1
        self._stats.received += 1
        return reply if self._as_message else message_to_dict(reply)

    async def _read(self) -> Any:
        """The next reply, EOF or status error, as the reader task got it."""
        replies = self._replies
        return replies.get_nowait() if len(replies) else await replies.get()

    async def _broken(self, exc: BaseException) -> NoReturn:
        """The reader ended without a status: the call was cancelled, or a bug."""
        if not isinstance(exc, asyncio.CancelledError):
            await self._finish(exc)
            raise exc
        # The call was cancelled under the reader: the writer or close() did it.
        await self._finish()
        if self._write_error is not None:
            raise self._write_error from None
        if self._client.is_closed:
            raise StopAsyncIteration from None
        raise exc

    async def _failed(self, exc: BaseException) -> Any:
        if not isinstance(exc, grpc.aio.AioRpcError):
            await self._broken(exc)
        client = self._client
        info = self._info
        assert info is not None
        client.stats.errors += 1
        if self._write_error is not None:
            await self._finish(self._write_error)
            raise self._write_error
        if client.is_closed:
            await self._finish()
            raise StopAsyncIteration from None
        err = translate_rpc_error(exc, info.path)
        retryable = (
            isinstance(err, errors.ConnectionError)
            and self._requests is None
            and self._received == 0
            and client._retry.max_retries > 0
        )
        if not retryable:
            await self._finish(err)
            raise err from exc

        async def again() -> Any:
            client._ensure_usable()
            self._call = None
            await self._start()
            reply = await self._read()
            if isinstance(reply, grpc.aio.AioRpcError):
                raise translate_rpc_error(reply, info.path) from reply
            if isinstance(reply, BaseException):
                await self._broken(reply)
            return reply

        try:
            return await retry_after_first(
                client._retry,
                err,
                again,
                retry_if=_is_unavailable,
                before_sleep=client._log_retry(info.path),
            )
        except BaseException as failure:
            if self._started:
                self._otel_end(failure)
            raise

    def _otel_end(self, exc: BaseException | None) -> None:
        """End the stream's span (once) and record its duration."""
        started, self._started = self._started, 0.0
        if started and self._info is not None:
            client = self._client
            attributes = client._otel_attributes(self._info)
            span, self._span = self._span, None
            _otel_end(client._otel, span, self._info, attributes, started, exc)

    async def _finish(self, error: BaseException | None = None) -> None:
        if self._started:
            self._otel_end(error)
        self._finished = True
        self._client._streams.discard(self)
        call = self._call
        if call is not None and not call.done():
            call.cancel()
        running = [t for t in (self._reader, self._writer) if t is not None and not t.done()]
        for task in running:
            task.cancel()
        for task in running:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def _client_closed(self) -> None:
        """The client is closing: end iteration quietly (the channel cancels the call)."""
        if self._started:
            self._otel_end(None)
        self._finished = True

    async def aclose(self) -> None:
        """Cancel the call if still running, and stop the request writer (idempotent)."""
        await self._finish()

    def cancel(self) -> None:
        """Cancel the call without waiting (the writer task is cancelled on close)."""
        if self._started:
            self._otel_end(None)
        self._finished = True
        if self._call is not None and not self._call.done():
            self._call.cancel()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    def __del__(self) -> None:
        # Dropped without aclose(), e.g. a whole `async for` left by a timeout:
        # nobody can read the rest, so end the call (while its loop still runs).
        loop = self._loop
        if self._finished or loop is None or loop.is_closed():
            return
        self.cancel()


# (target, method path) -> its span and metric attributes, shared by every client.
_OTEL_ATTRIBUTES: dict[tuple[str, str], dict[str, Any]] = {}


def _otel_end(
    otel: Instrumentation,
    span: Any,
    info: MethodInfo,
    attributes: dict[str, Any],
    started: float,
    exc: BaseException | None,
) -> None:
    """End a call's span with its gRPC status, and record ``rpc.client.call.duration``."""
    code = "OK" if exc is None else _status_name(exc)
    number = getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN).value[0]
    attributes["rpc.grpc.status_code"] = number
    if code != "OK":
        attributes["error.type"] = code
    if span is not None:
        span.set_attribute("rpc.grpc.status_code", number)
        if exc is not None:
            otel.fail(span, exc, code)
        span.end()
    measure(otel, "rpc.client.call.duration", started, attributes)


class _CallTelemetry(OperationTelemetry):
    """A unary or client-streaming call's CLIENT span and duration, for a ``with`` block.

    The span is current in the block (the metadata carries its context); it
    ends with the call's gRPC status, from the exception leaving the block.
    """

    __slots__ = ("_attributes", "_call_span", "_info", "_started")

    def __init__(self, client: GRPCClient, info: MethodInfo) -> None:
        otel = client._otel
        self._info = info
        self._started = monotonic()
        # The span copies them; the end adds the status.
        self._attributes = attributes = client._otel_attributes(info)
        span = otel.start_span(info.path[1:], "client", attributes) if otel.tracing else None
        self._call_span = span
        super().__init__(otel, otel.current(span) if span is not None else None)

    def finish(self, exc: BaseException | None) -> None:
        """End the span with the call's status and record its duration."""
        _otel_end(self._otel, self._call_span, self._info, self._attributes, self._started, exc)


def _status_name(exc: BaseException) -> str:
    """The gRPC status name a failure stands for (``CANCELLED`` for a cancellation)."""
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    cause = exc if isinstance(exc, grpc.aio.AioRpcError) else exc.__cause__
    if isinstance(cause, grpc.aio.AioRpcError) and cause.code() is not None:
        return str(cause.code().name)
    if isinstance(exc, errors.RemoteError) and exc.remote_code:
        return str(exc.remote_code)
    if isinstance(exc, errors.TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(exc, errors.ConnectionError):
        return "UNAVAILABLE"
    return "UNKNOWN"


# -- generate_grpc_client ------------------------------------------------------------


class MethodProxy:
    """One method of a generated client; calling it makes the RPC.

    Unary and client-streaming methods return an awaitable; server-streaming
    and bidirectional ones return a :class:`ResponseStream` to ``async for``.
    Request fields are keyword arguments (or a dict / message as the first
    argument); ``timeout``, ``metadata`` and ``as_message`` are call options
    unless the request message has a field of that name.
    """

    def __init__(self, client: GRPCClient, info: MethodInfo) -> None:
        self._client = client
        self.info = info
        self.__doc__ = info.description or f"{info.shape} call {info.path}"
        self._field_names = frozenset(f.name for f in info.request_type.DESCRIPTOR.fields)

    def __call__(self, request: Any = None, /, **kwargs: Any) -> Any:
        """Make the call; see the class docstring for the arguments."""
        options = {
            k: kwargs.pop(k)
            for k in ("timeout", "metadata", "as_message")
            if k in kwargs and k not in self._field_names
        }
        info = self.info
        client = self._client
        if info.client_streaming:
            if kwargs:
                raise errors.ConfigError(
                    f"request: {info.path} takes a stream of requests as its first "
                    f"argument, not fields ({', '.join(kwargs)})"
                )
            if request is None:
                raise errors.ConfigError(f"requests: {info.path} needs an iterable of requests")
            if info.server_streaming:
                return client.bidirectional_stream(info.service, info.name, request, **options)
            return client.stream_send(info.service, info.name, request, **options)
        if kwargs:
            if request is None:
                request = kwargs
            elif isinstance(request, Mapping):
                request = {**request, **kwargs}
            else:
                raise errors.ConfigError(
                    f"request: pass either a message or keyword fields to {info.path}, not both"
                )
        if info.server_streaming:
            return client.stream_call(info.service, info.name, request, **options)
        return client.call(info.service, info.name, request, **options)

    def __repr__(self) -> str:
        return f"<{self.info.shape} method {self.info.path}>"


class ServiceProxy:
    """A service of a generated client: its methods are attributes."""

    def __init__(self, client: GRPCClient, schema: Schema, full_name: str) -> None:
        self.name = full_name
        self._methods = {info.name: MethodProxy(client, info) for info in schema.methods(full_name)}

    def __getattr__(self, name: str) -> MethodProxy:
        try:
            return self._methods[name]
        except KeyError:
            known = ", ".join(self._methods) or "none"
            raise AttributeError(f"{self.name} has no method {name!r}; methods: {known}") from None

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._methods})

    def __repr__(self) -> str:
        return f"<service {self.name}: {', '.join(self._methods)}>"


class GeneratedGRPCClient(GRPCClient):
    """A GRPCClient whose services are attributes (see :func:`generate_grpc_client`).

    Args:
        schema: The compiled descriptors.
        target: ``host:port``.
        config: A GRPCConfig.
        **overrides: GRPCConfig fields.
    """

    def __init__(
        self,
        schema: Schema,
        target: str | None = None,
        *,
        config: GRPCConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(target, config=config, **overrides)
        self._schema = schema
        self._service_proxies: dict[str, ServiceProxy] = {}
        for full in schema.service_names():
            proxy = ServiceProxy(self, schema, full)
            self._service_proxies[full] = proxy
            self._service_proxies.setdefault(full.rsplit(".", 1)[-1], proxy)

    def __getattr__(self, name: str) -> ServiceProxy:
        proxies: dict[str, ServiceProxy] | None = self.__dict__.get("_service_proxies")
        if proxies is not None and name in proxies:
            return proxies[name]
        known = ", ".join(sorted(proxies)) if proxies else "none"
        raise AttributeError(f"{type(self).__name__} has no service {name!r}; services: {known}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._service_proxies})


def generate_grpc_client(
    proto_file: str | Sequence[str] | None = None,
    target: str | None = None,
    *,
    include_paths: Sequence[str] = (),
    config: GRPCConfig | None = None,
    **overrides: Any,
) -> GeneratedGRPCClient:
    """Compile a .proto file now and return a client with one attribute per service.

    ``await client.AgentService.ExecuteTask(task_id="123")`` makes a unary
    call; streaming methods take or return streams as in :class:`GRPCClient`.
    The client connects on first use; close it with ``await client.close()``
    or use it in ``async with``. Compiling blocks briefly (grpcio-tools runs
    in process) and is cached per file.

    Args:
        proto_file: A .proto path, or several (default ``config.proto_files``).
        target: ``host:port`` of the server.
        include_paths: Extra import roots for the compiler.
        config: A GRPCConfig; keyword overrides are merged over it.
        **overrides: Any GRPCConfig field.

    Returns:
        The generated client.

    Raises:
        ConfigError: No proto file, it does not compile, or a bad config field.
        SecurityError: Plain text to a non-loopback host without opt-out.
    """
    if proto_file is not None:
        overrides["proto_files"] = (proto_file,) if isinstance(proto_file, str) else proto_file
    if include_paths:
        overrides["proto_include_paths"] = tuple(include_paths)
    if target is not None:
        overrides["target"] = target
    cfg = merge_config(GRPCConfig, config, overrides)
    if not cfg.proto_files:
        raise errors.ConfigError("proto_file: generate_grpc_client needs a .proto file")
    schema = schema_from_protos(cfg.proto_files, cfg.proto_include_paths)
    return GeneratedGRPCClient(schema, config=cfg)
