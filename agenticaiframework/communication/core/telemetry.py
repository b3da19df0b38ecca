"""OpenTelemetry traces, metrics and W3C context propagation for every client.

Built on the OpenTelemetry **API** only (``pip install
agenticaiframework-communication[otel]``); the library never configures an SDK
or an exporter. Each client resolves, once when it connects, an
:class:`Instrumentation`: live when the client was given a
``tracer_provider=`` / ``meter_provider=``, or when the application has set a
global provider; otherwise the shared :data:`DISABLED` object, and every hot
path does one attribute check (``if self._otel.tracing:``) and nothing else:
no span object, no string formatting, no import of ``opentelemetry`` (it is
imported only if the application imported it first, or named a provider).

Context propagation (``traceparent`` / ``tracestate`` / ``baggage``) goes
through the global propagator of the API, into and out of:

- HTTP, SSE and WebSocket handshake headers: :meth:`Instrumentation.inject`,
  :func:`extract`;
- gRPC metadata: :meth:`Instrumentation.inject_pairs` (a list of pairs);
- MQTT 5 user properties: the same pairs, :func:`extract_pairs`;
- JSON-RPC and MCP ``params._meta``: :meth:`Instrumentation.inject_meta`,
  :func:`extract_meta`;
- JSON WebSocket messages, opt-in: :meth:`Instrumentation.inject_field`,
  :func:`extract_field`.

Attributes never hold a secret: URLs go through
:func:`~agenticaiframework.communication.core.security.redact_url` and error
messages through :func:`~agenticaiframework.communication.core.security.redact_text`.
While a span is active, the records our loggers write carry ``trace_id`` and
``span_id`` (:class:`TraceLogFilter`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import (
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from .security import redact_text

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

__all__ = [
    "DISABLED",
    "NO_TELEMETRY",
    "SCOPE",
    "TRACE_KEYS",
    "Instrumentation",
    "NoTelemetry",
    "OperationTelemetry",
    "TraceLogFilter",
    "error_type",
    "extract",
    "extract_field",
    "extract_meta",
    "extract_pairs",
    "install_log_correlation",
    "instrumentation_for",
    "measure",
    "monotonic",
    "new_trace",
]

T = TypeVar("T")

#: The carrier keys the W3C propagators write (Trace Context and Baggage).
TRACE_KEYS: Final = ("traceparent", "tracestate", "baggage")

#: The instrumentation scope name every tracer and meter of the package uses.
SCOPE: Final = "agenticaiframework.communication"

monotonic = time.perf_counter

# Explicit bucket boundaries the HTTP and RPC duration conventions advise (seconds).
_DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

# name -> (kind, unit, description); created lazily, once per Instrumentation.
_INSTRUMENTS: Final[dict[str, tuple[str, str, str]]] = {
    "http.client.request.duration": ("histogram", "s", "Duration of HTTP client requests."),
    "rpc.client.call.duration": ("histogram", "s", "Duration of RPC client calls."),
    "messaging.client.sent.messages": ("counter", "{message}", "Messages a producer sent."),
    "messaging.client.consumed.messages": (
        "counter",
        "{message}",
        "Messages a consumer received.",
    ),
    "messaging.process.duration": ("histogram", "s", "Duration of processing one message."),
    "mcp.client.operation.duration": ("histogram", "s", "Duration of MCP requests."),
    "agentcomm.websocket.request.duration": (
        "histogram",
        "s",
        "Duration of WebSocket request() calls, to the reply.",
    ),
    "agentcomm.client.reconnects": ("counter", "{reconnect}", "Reconnects of a client."),
    "agentcomm.client.queued_messages": (
        "counter",
        "{message}",
        "Sends and publishes queued while the client was disconnected.",
    ),
    "agentcomm.sse.events": ("counter", "{event}", "Server-sent events received."),
    "agentcomm.manager.health_check.duration": (
        "histogram",
        "s",
        "Duration of one health check of a managed client.",
    ),
}

_OUR_LOGGERS: Final = (
    SCOPE,
    f"{SCOPE}.http",
    f"{SCOPE}.sse",
    f"{SCOPE}.websocket",
    f"{SCOPE}.mqtt",
    f"{SCOPE}.grpc",
    f"{SCOPE}.stdio",
    f"{SCOPE}.mcp",
    f"{SCOPE}.a2a",
    f"{SCOPE}.auth",
    f"{SCOPE}.pool",
    f"{SCOPE}.manager",
)


def _api_loaded() -> bool:
    """Whether the application may have configured OpenTelemetry.

    An SDK provider is set through ``opentelemetry.trace`` / ``.metrics``, so
    if neither module was imported and no provider is named in the
    environment, nothing is configured and we import nothing.
    """
    modules = sys.modules
    return (
        "opentelemetry.trace" in modules
        or "opentelemetry.metrics" in modules
        or "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
        or "OTEL_PYTHON_METER_PROVIDER" in os.environ
    )


def error_type(exc: BaseException) -> str:
    """The ``error.type`` attribute of an exception.

    A remote error names the peer's code (a JSON-RPC error code, a gRPC
    status name, an HTTP status), as the semantic conventions ask; anything
    else its fully qualified type name.

    Args:
        exc: The exception.

    Returns:
        ``"-32601"``, ``"NOT_FOUND"``, ``"TimeoutError"`` (a builtin) or
        ``"module.QualName"``.
    """
    code = getattr(exc, "remote_code", None)
    if code is not None and isinstance(code, int | str) and not isinstance(code, bool):
        return str(code)
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class Instrumentation:
    """What one client reports to OpenTelemetry, resolved once.

    Use :func:`instrumentation_for` to get one. ``tracing`` and ``metering``
    tell whether spans and metrics are live; ``enabled`` is either. On the
    shared :data:`DISABLED` object every flag is False and no method may be
    called but the no-op ones (``inject*`` and ``count`` check the flags).

    Args:
        protocol: The client's protocol (``"http"``, ``"mqtt"``...).
        tracer: A tracer, or None when tracing is off.
        meter: A meter, or None when metrics are off.
    """

    __slots__ = ("_instruments", "enabled", "meter", "metering", "protocol", "tracer", "tracing")

    def __init__(self, protocol: str, tracer: Any = None, meter: Any = None) -> None:
        self.protocol = protocol
        self.tracer = tracer
        self.meter = meter
        self.tracing = tracer is not None
        self.metering = meter is not None
        self.enabled = self.tracing or self.metering
        self._instruments: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Instrumentation {self.protocol} tracing={self.tracing} metering={self.metering}>"

    # -- spans -------------------------------------------------------------------------

    def start_span(
        self,
        name: str,
        kind: str = "client",
        attributes: Mapping[str, Any] | None = None,
        *,
        context: Context | None = None,
    ) -> Span:
        """Start a span that is not made current (for streams and connections).

        Args:
            name: The span name (per the semantic conventions).
            kind: ``"client"``, ``"producer"``, ``"consumer"`` or ``"internal"``.
            attributes: Attributes set at start.
            context: The parent context; default the current one.

        Returns:
            The started span; end it with :meth:`end_span`.
        """
        return self.tracer.start_span(  # type: ignore[no-any-return]
            name, context=context, kind=_api.kinds[kind], attributes=attributes
        )

    def span(
        self,
        name: str,
        kind: str = "client",
        attributes: Mapping[str, Any] | None = None,
        *,
        context: Context | None = None,
    ) -> _SpanScope:
        """A span made current for a ``with`` block; an exception marks it failed.

        Args:
            name: The span name.
            kind: ``"client"``, ``"producer"``, ``"consumer"`` or ``"internal"``.
            attributes: Attributes set at start.
            context: The parent context; default the current one.

        Returns:
            A context manager whose ``__enter__`` gives the span (set more
            attributes on it).
        """
        return _SpanScope(
            self.tracer.start_span(
                name, context=context, kind=_api.kinds[kind], attributes=attributes
            )
        )

    @staticmethod
    def current(span: Span | None) -> _Current:
        """Make ``span`` the current span for a ``with`` block, without ending it (None: no-op)."""
        return _Current(span)

    def end_span(self, span: Span, exc: BaseException | None = None) -> None:
        """End a span from :meth:`start_span`, failed if ``exc`` is given."""
        if exc is not None:
            self.fail(span, exc)
        span.end()

    @staticmethod
    def fail(span: Span, exc: BaseException, error: str | None = None) -> None:
        """Mark a span failed: ``error.type``, an ``exception`` event, ERROR status.

        A cancellation is not a failure: the span gets ``error.type``
        ``"cancelled"`` and keeps an unset status. The message is redacted.

        Args:
            span: The span.
            exc: What went wrong.
            error: The ``error.type`` value; default the exception's type name.
        """
        if not span.is_recording():
            return
        if isinstance(exc, asyncio.CancelledError):
            span.set_attribute("error.type", "cancelled")
            return
        kind = error or error_type(exc)
        message = redact_text(exc)
        span.set_attribute("error.type", kind)
        span.add_event("exception", {"exception.type": kind, "exception.message": message})
        span.set_status(_api.Status(_api.ERROR, message[:500]))

    @staticmethod
    def fail_status(span: Span, error: str, description: str = "") -> None:
        """Mark a span failed by a status (an HTTP 5xx, a gRPC code), no exception."""
        span.set_attribute("error.type", error)
        span.set_status(_api.Status(_api.ERROR, description or error))

    @staticmethod
    def annotate(key: str, value: Any) -> None:
        """Set an attribute on the current span (one this client started)."""
        _api.get_current_span().set_attribute(key, value)

    def received(
        self, name: str, attributes: Mapping[str, Any], context: Context | None = None
    ) -> None:
        """A message taken by the application: a CONSUMER span and the consumed counter.

        The span's parent is the sender's context when the message carried one.

        Args:
            name: The span name (``receive <destination>``).
            attributes: Messaging attributes.
            context: The context the message carried, or None.
        """
        self.count("messaging.client.consumed.messages", 1, attributes)
        if self.tracing:
            self.start_span(name, "consumer", attributes, context=context).end()

    # -- propagation ---------------------------------------------------------------------

    def inject(self, carrier: MutableMapping[str, str], span: Span | None = None) -> None:
        """Write the W3C trace headers of ``span`` (default: the current context).

        Args:
            carrier: Headers (any mutable str mapping, ``httpx.Headers`` too).
            span: The span the receiver's parent is; None for the current one.
        """
        if self.tracing:
            _api.inject_into(carrier, span)

    def trace_headers(self, span: Span | None = None) -> dict[str, str]:
        """The W3C trace headers of ``span`` (default: current), as a new dict."""
        carrier: dict[str, str] = {}
        if self.tracing:
            _api.inject_into(carrier, span)
        return carrier

    def inject_pairs(
        self, pairs: Sequence[tuple[str, str]] | None, span: Span | None = None
    ) -> list[tuple[str, str]]:
        """``pairs`` (gRPC metadata, MQTT 5 user properties) plus the trace keys.

        Trace keys already in ``pairs`` are replaced, so a re-sent message
        names its new parent.

        Args:
            pairs: Existing key/value pairs, or None.
            span: The parent span for the receiver; None for the current one.

        Returns:
            A new list.
        """
        headers = self.trace_headers(span)
        # A malformed pair is kept as it is: the caller's own validation reports it.
        kept = [
            pair
            for pair in pairs or ()
            if not (isinstance(pair, tuple | list) and pair and str(pair[0]).lower() in headers)
        ]
        return kept + list(headers.items())

    def inject_meta(self, params: Any, span: Span | None = None) -> Any:
        """JSON-RPC ``params`` with ``_meta.traceparent`` (and friends) set.

        MCP carries trace context there. Params that are not an object (a
        list, nothing) are returned as they are: a positional array has no
        place for it, and a missing params is created as ``{"_meta": ...}``.

        Args:
            params: The request's params.
            span: The parent span for the receiver; None for the current one.

        Returns:
            A new params object (the caller's is not changed), or ``params``.
        """
        headers = self.trace_headers(span)
        if not headers or not (params is None or isinstance(params, dict)):
            return params
        params = dict(params or {})
        meta = params.get("_meta")
        params["_meta"] = {**meta, **headers} if isinstance(meta, dict) else headers
        return params

    def inject_field(self, message: Any, field: str, span: Span | None = None) -> Any:
        """A JSON object message with ``message[field] = {"traceparent": ...}``.

        Args:
            message: The message; anything but a dict is returned unchanged.
            field: The field name (``WebSocketConfig.trace_field``).
            span: The parent span for the receiver; None for the current one.

        Returns:
            A new dict, or ``message`` unchanged.
        """
        if not isinstance(message, dict):
            return message
        headers = self.trace_headers(span)
        return {**message, field: headers} if headers else message

    # -- metrics -------------------------------------------------------------------------

    def instrument(self, name: str) -> Any:
        """The instrument of that name (see ``_INSTRUMENTS``), created on first use."""
        found = self._instruments.get(name)
        if found is None:
            kind, unit, description = _INSTRUMENTS[name]
            meter = self.meter
            if kind == "histogram":
                found = meter.create_histogram(
                    name,
                    unit=unit,
                    description=description,
                    explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
                )
            else:
                found = meter.create_counter(name, unit=unit, description=description)
            self._instruments[name] = found
        return found

    def record(self, name: str, value: float, attributes: Mapping[str, Any]) -> None:
        """Record a duration (seconds) on a histogram, if metrics are on."""
        if self.metering:
            self.instrument(name).record(value, attributes)

    def count(self, name: str, value: int = 1, attributes: Mapping[str, Any] | None = None) -> None:
        """Add to a counter, if metrics are on."""
        if self.metering:
            self.instrument(name).add(value, attributes)

    def observe(
        self,
        name: str,
        unit: str,
        description: str,
        owner: Any,
        callback: Callable[[Any], Iterable[tuple[float, Mapping[str, Any]]]],
    ) -> None:
        """Report ``callback(owner)``'s ``(value, attributes)`` pairs on a gauge at each collection.

        One observable gauge per meter and name serves every owner (pools,
        managers); an owner is held weakly and drops out once collected.

        Args:
            name: The gauge name.
            unit: Its unit.
            description: What it measures.
            owner: The object observed (held weakly).
            callback: A plain function of the owner (not a bound method, which
                would keep the owner alive).
        """
        if not self.metering:
            return
        key = (id(self.meter), name)
        entry = _OBSERVED.get(key)
        if entry is None:
            owners: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

            def collect(_options: Any) -> list[Any]:
                from opentelemetry.metrics import Observation

                return [
                    Observation(value, dict(attributes))
                    for observed, function in list(owners.items())
                    for value, attributes in function(observed)
                ]

            self.meter.create_observable_gauge(
                name, callbacks=[collect], unit=unit, description=description
            )
            entry = _OBSERVED[key] = (self.meter, owners)
        entry[1][owner] = callback


# (id(meter), gauge name) -> (the meter, kept alive so the id stays its own; owners).
_OBSERVED: dict[tuple[int, str], tuple[Any, weakref.WeakKeyDictionary[Any, Any]]] = {}


class _SpanScope:
    """``with otel.span(...)``: the span current for the block, ended (failed on error) after.

    A plain class rather than a generator context manager: it is on every
    traced call's path.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Any = None

    def __enter__(self) -> Span:
        self._token = _api.attach(_api.set_span_in_context(self._span))
        return self._span

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        span = self._span
        try:
            if exc is not None:
                Instrumentation.fail(span, exc)
        finally:
            _api.detach(self._token)
            span.end()


class _Current:
    """``with otel.current(span)``: ``span`` current for the block, not ended (None: no-op)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span | None) -> None:
        self._span = span
        self._token: Any = None

    def __enter__(self) -> None:
        if self._span is not None:
            self._token = _api.attach(_api.set_span_in_context(self._span))

    def __exit__(self, *exc_info: Any) -> None:
        if self._span is not None:
            _api.detach(self._token)


class _API:
    """The OpenTelemetry API names the hot paths use, imported once a client is live."""

    kinds: dict[str, Any]
    attach: Callable[[Any], Any]
    detach: Callable[[Any], None]
    set_span_in_context: Callable[..., Any]
    get_current_span: Callable[..., Any]
    get_textmap: Callable[[], Any]
    get_all_baggage: Callable[..., Any]
    Status: Any
    ERROR: Any
    loaded = False
    # The global propagator last seen, and whether it is the default W3C one
    # (Trace Context, plus Baggage), which inject_into writes itself.
    _textmap: Any = None
    _w3c = False
    _baggage: Any = None

    def load(self) -> None:
        if self.loaded:
            return
        from opentelemetry import baggage, context, propagate, trace

        kind = trace.SpanKind
        self.kinds = {
            "client": kind.CLIENT,
            "producer": kind.PRODUCER,
            "consumer": kind.CONSUMER,
            "internal": kind.INTERNAL,
            "server": kind.SERVER,
        }
        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context
        self.get_current_span = trace.get_current_span
        self.get_textmap = propagate.get_global_textmap
        self.get_all_baggage = baggage.get_all
        self.Status = trace.Status
        self.ERROR = trace.StatusCode.ERROR
        self.loaded = True

    def _resolve(self, textmap: Any) -> None:
        """Note whether ``textmap`` is the W3C default, so inject_into may write it directly."""
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._textmap = textmap
        self._w3c = False
        self._baggage = None
        parts = [textmap]
        if type(textmap) is CompositePropagator:
            parts = list(getattr(textmap, "_propagators", None) or [None])
        if not parts or type(parts[0]) is not TraceContextTextMapPropagator:
            return
        rest = parts[1:]
        if rest and not (len(rest) == 1 and type(rest[0]) is W3CBaggagePropagator):
            return
        self._baggage = rest[0] if rest else None
        self._w3c = True

    def inject_into(self, carrier: MutableMapping[str, str], span: Span | None) -> None:
        """Inject ``span``'s context (None: the current one) with the global propagator.

        With the default W3C propagator (the usual case) the headers are
        formatted here, as it would, without building a context for the
        span, and the Baggage propagator runs only when there is baggage.
        """
        textmap = self.get_textmap()
        if textmap is not self._textmap:
            self._resolve(textmap)
        if not self._w3c:
            from opentelemetry import propagate

            context = None if span is None else self.set_span_in_context(span)
            propagate.inject(carrier, context=context)
            return
        if span is None:
            span = self.get_current_span()
        ctx = span.get_span_context()
        if ctx.is_valid:
            carrier["traceparent"] = (
                f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
            )
            if ctx.trace_state:
                state = ctx.trace_state.to_header()
                if state:
                    carrier["tracestate"] = state
        if self._baggage is not None and self.get_all_baggage():
            self._baggage.inject(carrier)


_api = _API()


DISABLED: Final = Instrumentation("disabled")


def instrumentation_for(config: Any, protocol: str) -> Instrumentation:
    """Resolve a client's instrumentation from its config (once, at connect).

    Live when ``config.telemetry`` is true and a provider was given
    (``tracer_provider=`` / ``meter_provider=``) or the global one is not the
    API's default proxy or a no-op. Otherwise :data:`DISABLED`, without
    importing ``opentelemetry`` unless the application already did.

    Args:
        config: A client config (``telemetry``, ``tracer_provider``,
            ``meter_provider`` read when present).
        protocol: The client's protocol, for the scope's attributes.

    Returns:
        The instrumentation to keep on the client.
    """
    if not getattr(config, "telemetry", True):
        return DISABLED
    tracer_provider = getattr(config, "tracer_provider", None)
    meter_provider = getattr(config, "meter_provider", None)
    if tracer_provider is None and meter_provider is None and not _api_loaded():
        return DISABLED
    try:
        from opentelemetry import metrics, trace
    except ImportError:  # the otel extra is not installed
        return DISABLED
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

    __version__ = getattr(sys.modules.get("agenticaiframework.communication"), "__version__", None)
    if tracer_provider is None:
        tracer_provider = trace.get_tracer_provider()
    tracer = None
    if not isinstance(tracer_provider, ProxyTracerProvider | NoOpTracerProvider):
        tracer = tracer_provider.get_tracer(SCOPE, __version__)
    if meter_provider is None:
        meter_provider = metrics.get_meter_provider()
    meter = None
    if not isinstance(meter_provider, NoOpMeterProvider) and (
        type(meter_provider).__name__ != "_ProxyMeterProvider"
    ):
        meter = meter_provider.get_meter(SCOPE, __version__)
    if tracer is None and meter is None:
        return DISABLED
    _api.load()
    if tracer is not None:
        install_log_correlation()
    return Instrumentation(protocol, tracer, meter)


# -- extraction (the receiving side) ---------------------------------------------------


def extract(carrier: Mapping[str, Any] | None) -> Context | None:
    """The context named by W3C trace headers in ``carrier``, or None if there is none.

    Args:
        carrier: Headers, or any mapping of str (case as sent: ``traceparent``).

    Returns:
        A context to parent a span on, or None when ``carrier`` has no
        ``traceparent`` (or OpenTelemetry is not installed).
    """
    if not carrier or "traceparent" not in carrier:
        return None
    try:
        from opentelemetry import propagate
    except ImportError:
        return None
    return propagate.extract({k: v for k, v in carrier.items() if isinstance(v, str)})


def new_trace() -> Context:
    """An empty context: a span started on it is the root of a new trace.

    For a received message that carried no context (MQTT 3.1.1, or a
    publisher without tracing): its span does not join whatever trace the
    receiving task happens to be in.
    """
    from opentelemetry.context import Context

    return Context()


def extract_pairs(pairs: Iterable[tuple[str, str]] | None) -> Context | None:
    """The context in key/value pairs (gRPC metadata, MQTT 5 user properties)."""
    if not pairs:
        return None
    found = {k.lower(): v for k, v in pairs if isinstance(k, str) and k.lower() in TRACE_KEYS}
    return extract(found)


def extract_meta(params: Any) -> Context | None:
    """The context in a JSON-RPC message's ``params._meta`` (MCP), or None."""
    if not isinstance(params, dict):
        return None
    meta = params.get("_meta")
    return extract(meta) if isinstance(meta, dict) else None


def extract_field(message: Any, field: str) -> Context | None:
    """The context in a JSON message's opt-in trace field, or None."""
    if not isinstance(message, dict):
        return None
    carried = message.get(field)
    return extract(carried) if isinstance(carried, dict) else None


# -- log correlation -------------------------------------------------------------------


class TraceLogFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex) to records written while a span is active.

    Records written with no active span get neither attribute. The filter
    never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the ids of the current span, if any; keep every record."""
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return True
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            if not hasattr(record, "trace_id"):
                record.trace_id = format(ctx.trace_id, "032x")
            if not hasattr(record, "span_id"):
                record.span_id = format(ctx.span_id, "016x")
        return True


_LOG_FILTER: Final = TraceLogFilter()


def install_log_correlation(names: Iterable[str] | None = None) -> None:
    """Install :class:`TraceLogFilter` on loggers (idempotent).

    Done by itself when a client's tracing goes live: then it covers every
    logger of the package that exists (``agenticaiframework.communication``
    and below). Call it with ``names`` to cover loggers of your own.

    Args:
        names: Logger names; None for the package's loggers.
    """
    if names is None:
        existing = [
            name
            for name in list(logging.root.manager.loggerDict)
            if name == SCOPE or name.startswith(SCOPE + ".")
        ]
        names = [*_OUR_LOGGERS, *existing]
    for name in names:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)


class OperationTelemetry:
    """One operation's telemetry (a send, a call, a request) as a ``with`` block.

    The clients' per-message methods run their body once, inside ``with
    (Subclass(...) if otel.enabled else NO_TELEMETRY) as t:``, so the path
    with telemetry off adds no coroutine frame. The span scope given (from
    :meth:`Instrumentation.span` or :meth:`Instrumentation.current`, or None
    when not tracing) is entered and left with the block, and an exception
    leaving the block marks the span failed. Subclasses hook in: :meth:`begin`
    once the span is current, :meth:`end` just before it ends, :meth:`finish`
    after it (metrics; also when not tracing); those that put the trace context
    on what is sent have an ``outgoing(value)`` giving the value to send
    (:class:`NoTelemetry`'s gives it back unchanged).

    Args:
        otel: The client's instrumentation (enabled).
        scope: The span's context manager, or None.
    """

    __slots__ = ("_otel", "_scope", "_span")

    def __init__(self, otel: Instrumentation, scope: Any) -> None:
        self._otel = otel
        self._scope = scope
        self._span: Any = None

    def __enter__(self) -> Self:
        if self._scope is not None:
            self._span = self._scope.__enter__()
            self.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._scope is not None:
                try:
                    self.end(exc)
                finally:
                    self._scope.__exit__(exc_type, exc, tb)
        finally:
            self.finish(exc)

    def begin(self) -> None:
        """While tracing, once the span is current. Nothing by default."""
        return None

    def end(self, exc: BaseException | None) -> None:
        """While tracing, just before the span ends (``exc``: how it failed). Nothing by default."""
        return None

    def finish(self, exc: BaseException | None) -> None:
        """Record the operation's metrics once its span ended (``exc``: how it failed).

        Nothing by default: operations counted when they start need nothing here.
        """
        return None

    def measure(
        self,
        metric: str,
        started: float,
        attributes: Mapping[str, Any],
        exc: BaseException | None,
    ) -> None:
        """Record ``now - started`` seconds on ``metric`` (if metrics are on).

        ``exc`` (how the operation failed, or None) adds ``error.type``.
        """
        if exc is not None and self._otel.metering:
            attributes = {**attributes, "error.type": error_type(exc)}
        measure(self._otel, metric, started, attributes)


class NoTelemetry:
    """The stand-in for :class:`OperationTelemetry` when telemetry is off (one shared instance).

    Entering and leaving it does nothing, :meth:`outgoing` gives the value
    back unchanged, and a ``status`` written to it is never read.
    """

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None

    def __enter__(self) -> NoTelemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def outgoing(value: T) -> T:
        """``value``, unchanged."""
        return value


#: The one :class:`NoTelemetry` every client uses.
NO_TELEMETRY: Final = NoTelemetry()


def measure(
    otel: Instrumentation, name: str, started: float, attributes: Mapping[str, Any]
) -> None:
    """Record ``now - started`` seconds on the histogram ``name`` (if metrics are on)."""
    if otel.metering:
        otel.instrument(name).record(monotonic() - started, attributes)
