"""STDIOClient: talk to a local process over its stdin and stdout.

The process is started with asyncio in a new session (its own process
group), so :meth:`STDIOClient.close` can end it and everything it spawned::

    async with STDIOClient(command=["python", "worker.py"]) as stdio:
        await stdio.send({"task": "process"})
        reply = await stdio.receive()

Message formats (``message_format``):

* ``json`` (default): a dict or list goes out as one compact JSON line, a
  str as a plain line; a received line holding a JSON object or array comes
  back decoded, any other line as str. A line that starts like JSON but does
  not parse, or is not valid text, is reported on the ``error`` event,
  counted in ``stats.errors`` and skipped.
* ``line``: str in, str out, one line each.
* ``raw``: bytes as they come, no framing.
* ``jsonrpc``: JSON-RPC 2.0 on top of ``json`` framing. :meth:`request`
  correlates replies by id (any number in flight, answered in any order),
  :meth:`notify` sends notifications; notifications and requests from the
  process go to iteration and to ``@stdio.on("notification")`` /
  ``@stdio.on("request")`` handlers, whose return value answers the request.
  Replies nobody asked for through :meth:`request` (raw ``send(dict)``) are
  returned by :meth:`receive`, as MCP examples expect; a late reply to a
  request that timed out or was cancelled is dropped and counted
  (:attr:`STDIOClient.late_replies`).

Framing (``framing``) is newline-delimited, or ``content-length`` headers
as LSP servers use. Messages longer than ``max_line_length`` never reach
memory whole: they are skipped with a
:class:`~agenticaiframework.communication.core.errors.MessageTooLargeError`. A bad
header block (a length that is not plain digits, 5,000 digits, conflicting
lengths, a block over 8 KiB) and a message that cannot be decoded (not JSON,
not text, nested too deeply) are skipped, counted in ``stats.errors`` and
reported on the ``error`` event; the messages around them still arrive.

How the client reads: a :class:`asyncio.SubprocessProtocol` receives the
pipe data as it arrives, so stdout and stderr are drained continuously
without a task per pipe (stderr's tail is kept for error reports); replies
resolve their waiting request right there, and one dispatcher task runs the
event handlers so that a slow handler never stalls replies. Memory is
bounded by ``max_queued_messages``: when that many messages wait for
:meth:`receive` (json/line/raw), or that many events wait for their
handlers (every format), stdout is no longer read until half of them are
done. The process then blocks on its own writes: back-pressure, nothing is
dropped.

When the process exits, every pending and later call fails at once with
:class:`~agenticaiframework.communication.core.errors.ProcessExitedError`
(exit code and stderr tail); messages it printed before exiting are still
returned by :meth:`receive` first. A process that closes its stdout but runs
on fails pending and later requests, and :meth:`receive` once its messages
are read, with
:class:`~agenticaiframework.communication.core.errors.StdoutClosedError`
(``ERR_STDOUT_CLOSED``). ``close()`` closes stdin, waits
``terminate_timeout``, sends SIGTERM to the process group, waits again, then
SIGKILL; the child is always reaped, and grandchildren left in its group are
ended too. A grandchild that starts its own session escapes the group and is
not tracked.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import enum
import heapq
import inspect
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, Self, cast

from ..core import errors
from ..core.codecs import dumps, encode_bytes, loads
from ..core.config import STDIOConfig, merge_config
from ..core.events import EventEmitter, Handler
from ..core.health import HealthStatus, run_probe
from ..core.lifecycle import BaseClient, ClientState
from ..core.telemetry import NO_TELEMETRY, Instrumentation, OperationTelemetry, monotonic
from . import jsonrpc
from .framing import (
    ContentLengthDecoder,
    Frame,
    FrameDecoder,
    NewlineDecoder,
    OversizedFrame,
    RawDecoder,
    encode_content_length,
    encode_newline,
)

__all__ = ["DEFAULT", "STDIOClient"]

_EVENTS = ("message", "notification", "request", "error", "exit")
# After the process exits, how long to wait for the rest of its stdout and
# stderr (a grandchild may hold the pipes open forever).
_EXIT_DRAIN_GRACE = 0.5
# How long close() waits for a SIGKILLed process to be reported as reaped.
_KILL_WAIT = 5.0
_JSON_START = frozenset("{[")
_ID_PATTERN_KEYS = (b'"id":', b'"id" :')


def _exited_unreported(pid: int | None) -> bool:
    """Whether ``pid`` has exited though asyncio has not reported it yet.

    Asks with ``WNOWAIT``, so the child stays waitable for asyncio's watcher.
    """
    waitid = getattr(os, "waitid", None)
    if pid is None or waitid is None:
        return False
    try:
        return waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # already reaped: the report is on its way
    except OSError:
        return False


def _receive_expired(waiter: asyncio.Future[bool | None]) -> None:
    """Timer callback: end one receive() wait with "timed out"."""
    if not waiter.done():
        waiter.set_result(True)


class _Default(enum.Enum):
    TOKEN = 0


DEFAULT = _Default.TOKEN
"""Marker for "use the configured default" (``None`` means "no timeout")."""

Timeout = float | None | _Default


class _Pipes(asyncio.SubprocessProtocol):
    """Forwards the subprocess transport's callbacks to the client."""

    def __init__(self, client: STDIOClient) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client._attach(cast(asyncio.SubprocessTransport, transport))

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd == 1:
            self._client._on_stdout(cast(bytes, data))
        elif fd == 2:
            self._client._on_stderr(cast(bytes, data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._client._on_pipe_lost(fd, exc)

    def process_exited(self) -> None:
        self._client._on_process_exited()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._on_transport_done()

    def pause_writing(self) -> None:
        self._client._write_paused = True

    def resume_writing(self) -> None:
        self._client._on_resume_writing()


def _request_id_from_head(head: bytes) -> Any:
    """Best-effort id of a JSON-RPC reply from its first bytes (or None)."""
    for key in _ID_PATTERN_KEYS:
        pos = head.find(key)
        if pos < 0:
            continue
        rest = head[pos + len(key) :].lstrip()
        if rest[:1] == b'"':
            end = rest.find(b'"', 1)
            return rest[1:end].decode("utf-8", "replace") if end > 0 else None
        digits = bytearray()
        for byte in rest:
            if 48 <= byte <= 57 or (byte == 45 and not digits):
                digits.append(byte)
            else:
                break
        return int(digits) if digits and digits != b"-" else None
    return None


def _expire(future: asyncio.Future[Any], method: str, seconds: float) -> None:
    if not future.done():
        future.set_exception(errors.TimeoutError(f"no reply to {method!r} within {seconds:g}s"))


class _Deadlines:
    """Request deadlines on one loop timer instead of one timer per request.

    A heap of (when, seq, future, method, seconds); a single ``call_at`` handle
    fires for the earliest entry. Entries whose future finished early are
    dropped lazily, and the heap is compacted when they outnumber live ones,
    so memory stays bounded by the requests actually in flight.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[Any], str, float]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, future: asyncio.Future[Any], method: str, seconds: float, live: int) -> None:
        """Expire ``future`` with TimeoutError after ``seconds`` unless done by then."""
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        heap = self._heap
        if len(heap) > 2 * live + 64:
            heap[:] = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(heap)
        self._seq += 1
        heapq.heappush(heap, (when, self._seq, future, method, seconds))
        timer = self._timer
        if timer is None or when < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        heap = self._heap
        now = asyncio.get_running_loop().time()
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, future, method, seconds = heapq.heappop(heap)
            _expire(future, method, seconds)
        if heap:
            self._timer = asyncio.get_running_loop().call_at(heap[0][0], self._fire)

    def clear(self) -> None:
        """Cancel the timer and forget every deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()


class STDIOClient(BaseClient):
    """Async client for a local process speaking over stdin/stdout.

    Args:
        command: The program and its arguments (same as ``config.command``).
        config: An :class:`STDIOConfig`; keyword overrides are merged over it.
        **overrides: Any STDIOConfig field, e.g. ``working_dir=``,
            ``message_format="jsonrpc"``.

    Raises:
        ConfigError: An invalid field (named), or no command.
    """

    _protocol = "stdio"

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        config: STDIOConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if command is not None:
            overrides["command"] = command
        self.config = merge_config(STDIOConfig, config, overrides)
        cfg = self.config
        if not cfg.command:
            raise errors.ConfigError("command: give the program to run, e.g. ['python', 'x.py']")
        self._name = os.path.basename(cfg.command[0])
        self._format = cfg.message_format
        self._encoding = cfg.encoding
        self._delimiter = cfg.delimiter.encode(cfg.encoding)
        self._content_length = cfg.framing == "content-length"
        self._max_queued = cfg.max_queued_messages
        self._events = EventEmitter(_EVENTS, self.logger)
        self._request_handlers: list[Handler] = []
        self._deadlines = _Deadlines()
        self._pending: jsonrpc.PendingRequests[tuple[asyncio.Future[Any], str]] = (
            jsonrpc.PendingRequests()
        )
        self._inbox: collections.deque[Any] = collections.deque()
        self._receivers: collections.deque[asyncio.Future[bool | None]] = collections.deque()
        self._dispatch_queue: asyncio.Queue[tuple[str, Any]] | None = None
        self._late_replies = 0
        self._handle_frame: Callable[[bytes], None] = self._frame_handler()
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        cfg = self.config
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._stdout: asyncio.ReadTransport | None = None
        self._pid: int | None = None
        self._decoder: FrameDecoder = self._make_decoder()
        self._stderr_tail = bytearray()
        self._stderr_piped = cfg.stderr == "pipe"
        self._returncode: int | None = None
        self._stdout_eof = False
        self._stderr_eof = not self._stderr_piped
        self._stdin_lost = False
        self._finished = False
        self._exit_timer: asyncio.TimerHandle | None = None
        self._exited: asyncio.Future[int] | None = None
        self._finished_future: asyncio.Future[None] | None = None
        self._transport_done: asyncio.Future[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._reading_paused = False
        self._held: list[Frame] = []
        self._eof_held = False
        self._answering = 0
        self._stdout_gone = False
        self._stdout_timer: asyncio.TimerHandle | None = None

    def _make_decoder(self) -> FrameDecoder:
        cfg = self.config
        if cfg.message_format == "raw":
            return RawDecoder()
        if self._content_length:
            return ContentLengthDecoder(cfg.max_line_length)
        return NewlineDecoder(self._delimiter, cfg.max_line_length)

    def _frame_handler(self) -> Callable[[bytes], None]:
        return {
            "json": self._frame_json,
            "line": self._frame_line,
            "raw": self._frame_raw,
            "jsonrpc": self._frame_jsonrpc,
        }[self._format]

    # -- public properties --------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by a signal)."""
        return self._returncode

    @property
    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._transport is not None and self._returncode is None

    @property
    def late_replies(self) -> int:
        """Replies dropped because their request had timed out or was cancelled."""
        return self._late_replies

    @property
    def stderr_tail(self) -> str:
        """The last ``stderr_tail_bytes`` the process wrote to stderr, decoded."""
        return self._stderr_tail.decode(self._encoding, "replace")

    # -- events ----------------------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler; usable as a decorator (``@stdio.on("notification")``).

        Events: ``message`` (every message delivered to :meth:`receive`),
        ``notification`` and ``request`` (JSON-RPC messages from the process,
        handler gets the message dict), ``error`` (a skipped line, a failing
        handler...), ``exit`` (the return code). Request handlers are tried
        in order: the first that returns something other than None answers
        the request with it; one that raises answers with an error
        (a :class:`RemoteError`'s code, message and data, else -32603);
        when every handler returns None the answer is -32601 (method not
        found). With no request handler at all, requests are left for the
        caller to answer with :meth:`respond`.

        Args:
            event: The event name.
            handler: Sync or async callable; omit it to use ``on`` as a decorator.

        Returns:
            The handler (decorator form), so the function stays usable.

        Raises:
            ValueError: Unknown event or handler not callable.
        """
        if event != "request":
            return self._events.on(event, handler)

        def register(fn: Handler) -> Handler:
            if not callable(fn):
                raise ValueError(f"handler for 'request' must be callable, got {fn!r}")
            self._request_handlers.append(fn)
            return fn

        return register if handler is None else register(handler)

    # -- lifecycle ------------------------------------------------------------------

    async def _open(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        self._reset_process_state()
        self._inbox.clear()
        self._handle_frame = self._frame_handler()
        self._exited = loop.create_future()
        self._finished_future = loop.create_future()
        self._transport_done = loop.create_future()
        if cfg.ready_line is not None:
            self._ready = loop.create_future()
            self._handle_frame = self._frame_until_ready
        env: dict[str, str] | None = None
        if cfg.env is not None or cfg.line_buffered:
            env = dict(os.environ)
            if cfg.line_buffered:
                # Python children block-buffer a piped stdout; line-buffered
                # I/O means their replies arrive as soon as they print them.
                env.setdefault("PYTHONUNBUFFERED", "1")
            env.update(cfg.env or {})
        stderr = {
            "pipe": asyncio.subprocess.PIPE,
            "inherit": None,
            "devnull": asyncio.subprocess.DEVNULL,
        }[cfg.stderr]
        what = self._name
        # Before the child starts: what it writes at once (a notification, a request
        # waiting for its answer) reaches the handlers once the dispatcher runs.
        self._dispatch_queue = asyncio.Queue()
        try:
            async with asyncio.timeout(cfg.startup_timeout or None):
                await loop.subprocess_exec(
                    lambda: _Pipes(self),
                    *cfg.command,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    cwd=cfg.working_dir,
                    env=env,
                    start_new_session=True,
                )
                self.logger.debug("started %s (pid %s)", what, self._pid)
                if self._ready is not None:
                    await self._ready
        except builtins.TimeoutError as exc:
            await self._abort_open()
            raise errors.TimeoutError(
                f"{what!r} did not start"
                + (f" and print {cfg.ready_line!r}" if cfg.ready_line is not None else "")
                + f" within startup_timeout ({cfg.startup_timeout:g}s)"
            ) from exc
        except errors.CommunicationError:
            await self._abort_open()
            raise
        except OSError as exc:
            await self._abort_open()
            raise errors.ConnectionError(f"could not start {what!r}: {exc}") from exc
        except BaseException:
            await self._abort_open()
            raise
        self._tasks.spawn(self._dispatch_loop(self._dispatch_queue), "dispatch")

    async def _abort_open(self) -> None:
        if self._transport is not None:
            await self._stop_process()

    async def _close(self) -> None:
        self._deadlines.clear()
        closed = errors.ClosedError("STDIOClient was closed")
        for future, _ in self._pending.drain():
            if not future.done():
                future.set_exception(closed)
        self._wake_receivers(everyone=True)
        self._wake_drainers()
        if self._transport is not None:
            await self._stop_process()

    async def _wait_exit(self, timeout: float) -> bool:
        exited = self._exited
        if exited is None or exited.done():
            return True
        done, _ = await asyncio.wait({exited}, timeout=timeout)
        return bool(done)

    def _signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group; False when the group is gone."""
        if self._pid is None:
            return False
        try:
            os.killpg(self._pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            self.logger.warning("cannot signal process group %s: %s", self._pid, exc)
            return False
        return True

    async def _stop_process(self) -> None:
        """Close stdin, wait, SIGTERM the group, wait, SIGKILL; then release the pipes."""
        transport = self._transport
        assert transport is not None
        grace = self.config.terminate_timeout
        try:
            if self._returncode is None:
                if self._stdin is not None and not self._stdin.is_closing():
                    self._stdin.close()
                if not await self._wait_exit(grace):
                    self.logger.debug("pid %s still running; sending SIGTERM", self._pid)
                    self._signal_group(signal.SIGTERM)
                    if not await self._wait_exit(grace):
                        self.logger.warning(
                            "pid %s ignored SIGTERM for %gs; killing it", self._pid, grace
                        )
                        self._signal_group(signal.SIGKILL)
                        if not await self._wait_exit(_KILL_WAIT):
                            self.logger.error("pid %s survived SIGKILL", self._pid)
            await self._end_leftovers(grace)
        except BaseException:
            # Cancelled (or worse) half-way: do not leave anything running.
            self._signal_group(signal.SIGKILL)
            transport.close()
            raise
        transport.close()
        if self._exit_timer is not None:
            self._exit_timer.cancel()
        if self._stdout_timer is not None:
            self._stdout_timer.cancel()
        done = self._transport_done
        if done is not None and not done.done():
            await asyncio.wait({done}, timeout=_EXIT_DRAIN_GRACE)

    async def _end_leftovers(self, grace: float) -> None:
        """End what the child left in its process group (grandchildren)."""
        if not self._signal_group(signal.SIGTERM):
            return
        self.logger.debug("process group %s outlived its leader; terminating it", self._pid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline:
            await asyncio.sleep(0.02)
            if not self._signal_group(0):
                return
        self._signal_group(signal.SIGKILL)

    # -- transport callbacks (run in the event loop, must not raise) -------------

    def _attach(self, transport: asyncio.SubprocessTransport) -> None:
        self._transport = transport
        self._pid = transport.get_pid()
        self._stdin = cast("asyncio.WriteTransport | None", transport.get_pipe_transport(0))
        self._stdout = cast("asyncio.ReadTransport | None", transport.get_pipe_transport(1))

    def _on_stdout(self, data: bytes) -> None:
        self.stats.bytes_received += len(data)
        self._process(self._decoder.feed(data))

    def _process(self, frames: list[Frame]) -> None:
        """Handle frames in order; once reading pauses, hold the rest of them."""
        if self._reading_paused or self._held:
            # A chunk read just before the pause (its callback was already
            # scheduled), or the end of the stream: after what is held.
            self._held += frames
            return
        handle = self._handle_frame
        for index, frame in enumerate(frames):
            try:
                if type(frame) is bytes:
                    handle(frame)
                else:
                    self._bad_frame(cast(errors.ProtocolError, frame))
            except Exception as exc:
                # A bug in handling one frame must not cost the rest of the chunk.
                self.logger.exception("pid %s: failed to handle a message", self._pid)
                self._report(errors.ProtocolError(f"message skipped: {type(exc).__name__}: {exc}"))
            if self._reading_paused:
                # Back-pressure: the pipe is no longer read, and the frames
                # this chunk still holds wait too (the bounds stay exact).
                self._held += frames[index + 1 :]
                return

    def _on_stderr(self, data: bytes) -> None:
        tail = self._stderr_tail
        tail += data
        limit = self.config.stderr_tail_bytes
        if len(tail) > limit:
            del tail[: len(tail) - limit]
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("stderr of pid %s: %r", self._pid, data[:500])

    def _on_pipe_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 0:
            self._stdin_lost = True
            self._wake_drainers()
            return
        if fd == 1:
            if self._held and self._state is not ClientState.CLOSED:
                # Frames held by back-pressure come first (a reply may be
                # among them): the end of stdout is taken in its turn.
                self._eof_held = True
                return
            self._stdout_ended()
            return
        if fd == 2:
            self._stderr_eof = True
        if self._returncode is not None and self._stdout_eof and self._stderr_eof:
            self._finish()

    def _stdout_ended(self) -> None:
        self._process(self._decoder.eof())
        self._stdout_eof = True
        if self._returncode is None and self._state is not ClientState.CLOSED:
            loop = asyncio.get_running_loop()
            self._stdout_timer = loop.call_later(_EXIT_DRAIN_GRACE, self._stdout_closed)
        elif self._returncode is not None and self._stderr_eof:
            self._finish()

    def _on_process_exited(self) -> None:
        assert self._transport is not None
        self._returncode = self._transport.get_returncode()
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(self._returncode if self._returncode is not None else -1)
        if self._stdout_eof and self._stderr_eof:
            self._finish()
        else:
            loop = asyncio.get_running_loop()
            self._exit_timer = loop.call_later(_EXIT_DRAIN_GRACE, self._exit_grace_over)

    def _exit_grace_over(self) -> None:
        """The process exited a while ago: stop waiting for the rest of its output."""
        self._exit_timer = None
        if self._reading_paused and not self._stdout_eof and self._state is ClientState.OPEN:
            # Back-pressure holds the rest of stdout (a reply may be in it):
            # finish once the reader has caught up, not before.
            loop = asyncio.get_running_loop()
            self._exit_timer = loop.call_later(_EXIT_DRAIN_GRACE, self._exit_grace_over)
            return
        self._finish()

    def _stdout_closed(self) -> None:
        """Stdout ended a while ago and no exit was reported: the child lives on mute."""
        self._stdout_timer = None
        if self._finished or self._returncode is not None or self._state is ClientState.CLOSED:
            return
        if _exited_unreported(self._pid):
            # It did exit; the exit report is late (a slow machine): wait for it.
            loop = asyncio.get_running_loop()
            self._stdout_timer = loop.call_later(_EXIT_DRAIN_GRACE, self._stdout_closed)
            return
        self._stdout_gone = True
        self._report(self._stdout_error())
        for future, _ in self._pending.drain():
            if not future.done():
                future.set_exception(self._stdout_error())
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(self._stdout_error())
        self._wake_receivers(everyone=True)

    def _stdout_error(self) -> errors.StdoutClosedError:
        return errors.StdoutClosedError(
            f"process {self._name!r} (pid {self._pid}) closed its stdout but is still "
            "running: no reply can arrive"
        )

    def _on_transport_done(self) -> None:
        if self._transport_done is not None and not self._transport_done.done():
            self._transport_done.set_result(None)

    def _on_resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    def _finish(self) -> None:
        """The process exited and its output was read: fail everything waiting."""
        if self._finished:
            return
        self._finished = True
        if self._exit_timer is not None:
            self._exit_timer.cancel()
        if self._stdout_timer is not None:
            self._stdout_timer.cancel()
        if self._finished_future is not None and not self._finished_future.done():
            self._finished_future.set_result(None)
        rc = self._returncode
        closing = self._state is ClientState.CLOSED
        if closing:
            self.logger.debug("pid %s exited with %s", self._pid, rc)
        elif rc == 0:
            self.logger.info("process %s (pid %s) exited", self._name, self._pid)
        else:
            self.stats.errors += 1
            self.logger.warning("process %s (pid %s) exited with %s", self._name, self._pid, rc)
        for future, _ in self._pending.drain():
            if not future.done():
                future.set_exception(self._exit_error())
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(self._exit_error())
        self._wake_receivers(everyone=True)
        self._wake_drainers()
        if self._events.has("exit"):
            self._dispatch("exit", rc)

    def _exit_error(self) -> errors.ProcessExitedError:
        tail = self.stderr_tail
        last = tail.strip().splitlines()[-1][-200:] if tail.strip() else ""
        return errors.ProcessExitedError(
            f"process {self._name!r} (pid {self._pid}) exited with code "
            f"{self._returncode}" + (f"; stderr: {last}" if last else ""),
            returncode=self._returncode,
            stderr_tail=tail,
        )

    # -- incoming frames --------------------------------------------------------------

    def _bad_frame(self, exc: errors.ProtocolError) -> None:
        if self._format == "jsonrpc" and isinstance(exc, OversizedFrame):
            # Fail the request this reply belongs to, instead of letting it time out.
            entry = self._pending.pop(_request_id_from_head(exc.head))
            if entry is not None:
                self.stats.errors += 1
                if not entry[0].done():
                    entry[0].set_exception(exc)
                return
        self._report(exc)
        if isinstance(exc, errors.MessageTooLargeError) and self._format != "jsonrpc":
            # receive() raises it in its turn: the caller sees a line went missing.
            self._inbox.append(exc)
            self._wake_receivers(everyone=False)

    def _report(self, exc: errors.CommunicationError) -> None:
        self.stats.errors += 1
        self.logger.warning("pid %s: %s", self._pid, exc.message)
        if self._events.has("error"):
            self._dispatch("error", exc)

    def _decode_text(self, frame: bytes) -> str | None:
        try:
            text = frame.decode(self._encoding)
        except UnicodeDecodeError as exc:
            self._report(
                errors.ProtocolError(
                    f"skipped a line that is not valid {self._encoding}: {frame[:80]!r} ({exc})"
                )
            )
            return None
        return text[:-1] if text.endswith("\r") else text

    def _frame_until_ready(self, frame: bytes) -> None:
        ready_line = self.config.ready_line
        assert ready_line is not None and self._ready is not None
        if self._ready.done():
            # The ready line came earlier in this same chunk.
            self._handle_frame(frame)
            return
        text = frame.decode(self._encoding, "replace")
        if ready_line in text:
            self._handle_frame = self._frame_handler()
            if not self._ready.done():
                self._ready.set_result(None)
        else:
            self.logger.debug("before the ready line: %r", text[:200])

    def _frame_raw(self, frame: bytes) -> None:
        self._deliver(frame)

    def _frame_line(self, frame: bytes) -> None:
        text = self._decode_text(frame)
        if text is not None:
            self._deliver(text)

    def _frame_json(self, frame: bytes) -> None:
        text = self._decode_text(frame)
        if text is None:
            return
        start = text[:1]
        if start.isspace():
            start = text.lstrip()[:1]
        if start and start in _JSON_START:
            try:
                message = loads(text)
            except errors.ProtocolError as exc:
                self._report(
                    errors.ProtocolError(
                        f"skipped a line that is not JSON ({exc.message}): {text[:80]!r}"
                    )
                )
                return
            self._deliver(message)
        else:
            self._deliver(text)

    def _frame_jsonrpc(self, frame: bytes) -> None:
        try:
            message = loads(frame.decode(self._encoding))
        except (UnicodeDecodeError, errors.ProtocolError) as exc:
            if not frame.strip():
                return
            why = exc.message if isinstance(exc, errors.ProtocolError) else f"not {self._encoding}"
            self._report(
                errors.ProtocolError(f"skipped a line that is not JSON-RPC ({why}): {frame[:80]!r}")
            )
            return
        if isinstance(message, list):
            for item in message:
                self._route(item)
        else:
            self._route(message)

    def _route(self, message: Any) -> None:
        kind = jsonrpc.classify(message)
        if kind is jsonrpc.MessageKind.RESPONSE or kind is jsonrpc.MessageKind.ERROR:
            request_id = message["id"]
            entry = self._pending.pop(request_id)
            if entry is None:
                if self._pending.is_late(request_id):
                    self._late_reply(request_id)
                    return
                self._pending.release(request_id)
                self._deliver(message)
                return
            future, method = entry
            self.stats.received += 1
            if future.done():  # timed out or cancelled, its caller not yet back
                self._late_reply(request_id)
                return
            if kind is jsonrpc.MessageKind.RESPONSE:
                future.set_result(message["result"])
            else:
                future.set_exception(jsonrpc.remote_error(message, method=method))
            return
        self._deliver(message)
        if kind is jsonrpc.MessageKind.NOTIFICATION:
            if self._events.has("notification"):
                self._dispatch("notification", message)
        elif kind is jsonrpc.MessageKind.REQUEST and self._request_handlers:
            self._dispatch("request", message)

    def _late_reply(self, request_id: Any) -> None:
        self._late_replies += 1
        self.logger.debug("dropped the late reply to request %r", request_id)

    def _deliver(self, message: Any) -> None:
        inbox = self._inbox
        inbox.append(message)
        self.stats.received += 1
        if len(inbox) >= self._max_queued:
            if self._format == "jsonrpc":
                if len(inbox) > self._max_queued:
                    inbox.popleft()
                    self._report(
                        errors.QueueFullError(
                            f"{self._max_queued} unread messages; dropped the oldest "
                            "(read them with receive() or raise max_queued_messages)"
                        )
                    )
            else:
                self._pause_reading()
        receivers = self._receivers
        while receivers:
            waiter = receivers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if self._events.has("message"):
            self._dispatch("message", message)

    def _pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            if self._stdout is not None:
                self._stdout.pause_reading()

    def _may_resume(self) -> bool:
        """Whether every bound is back to half: the inbox, the handlers' backlog."""
        half = self._max_queued // 2
        queue = self._dispatch_queue
        if self._answering + (queue.qsize() if queue is not None else 0) > half:
            return False
        return self._format == "jsonrpc" or len(self._inbox) <= half

    def _resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        held, self._held = self._held, []
        if held:
            self._process(held)  # may pause again, holding what is left
        if self._reading_paused:
            return
        if self._eof_held:
            self._eof_held = False
            self._stdout_ended()
        elif self._stdout is not None and not self._stdout.is_closing():
            self._stdout.resume_reading()

    def _wake_receivers(self, *, everyone: bool) -> None:
        while self._receivers:
            waiter = self._receivers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    break

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- handlers -----------------------------------------------------------------------

    def _dispatch(self, event: str, arg: Any) -> None:
        queue = self._dispatch_queue
        if queue is not None:
            queue.put_nowait((event, arg))
            if queue.qsize() + self._answering >= self._max_queued:
                # Slow handlers: stop reading the pipe (back-pressure) rather
                # than queue without end; nothing is dropped.
                self._pause_reading()

    async def _dispatch_loop(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Run event handlers in order, away from the pipe callbacks."""
        while True:
            event, arg = await queue.get()
            if self._reading_paused and self._may_resume():
                self._resume_reading()
            if event == "request":
                # Answered in its own task: a handler may await request() itself.
                # It counts toward the bound until it has answered.
                self._answering += 1
                self._tasks.spawn(self._answer(arg), f"answer:{arg.get('method')}")
            else:
                await self._events.emit(event, arg)

    async def _answer(self, message: dict[str, Any]) -> None:
        try:
            await self._answer_request(message)
        finally:
            self._answering -= 1
            if self._reading_paused and self._may_resume():
                self._resume_reading()

    async def _answer_request(self, message: dict[str, Any]) -> None:
        request_id = message["id"]
        method = message.get("method")
        reply: dict[str, Any] | None = None
        try:
            for handler in tuple(self._request_handlers):
                result = handler(message)
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    reply = jsonrpc.response(request_id, result)
                    break
            else:
                reply = jsonrpc.error_response(
                    request_id, jsonrpc.METHOD_NOT_FOUND, f"Method not found: {method}"
                )
        except errors.RemoteError as exc:
            code = exc.remote_code if isinstance(exc.remote_code, int) else jsonrpc.INTERNAL_ERROR
            reply = jsonrpc.error_response(request_id, code, exc.message, exc.data)
        except Exception as exc:
            self.stats.errors += 1
            self.logger.exception("request handler for %r raised", method)
            reply = jsonrpc.error_response(
                request_id, jsonrpc.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"
            )
            await self._events.emit("error", exc)
        try:
            await self._send_bytes(self._frame_payload(dumps(reply).encode(self._encoding)))
        except (errors.ConnectionError, errors.ClosedError) as exc:
            self.logger.debug("could not answer %r (id %r): %s", method, request_id, exc)

    # -- outgoing ------------------------------------------------------------------------

    def _frame_payload(self, payload: bytes) -> bytes:
        if self._content_length:
            return encode_content_length(payload)
        return encode_newline(payload, self._delimiter)

    def _encode(self, message: Any) -> bytes:
        if self._format == "raw":
            return encode_bytes(message, self._encoding)
        return self._frame_payload(encode_bytes(message, self._encoding))

    def _writable_stdin(self) -> asyncio.WriteTransport | None:
        """The child's stdin when a write can go out now, else None (no coroutine: hot path)."""
        stdin = self._stdin
        if (
            self._state is ClientState.OPEN
            and self._returncode is None
            and stdin is not None
            and not self._stdin_lost
            and not stdin.is_closing()
        ):
            return stdin
        return None

    async def _ready_to_write(self) -> asyncio.WriteTransport:
        """The child's stdin, connecting first if needed; raises why it cannot be written."""
        if self._state is not ClientState.OPEN:
            self._ensure_usable()
            await self.connect()
        self._ensure_usable()
        if self._returncode is not None:
            raise self._exit_error()
        stdin = self._stdin
        if stdin is None or self._stdin_lost or stdin.is_closing():
            raise await self._gone_error()
        return stdin

    async def _gone_error(self) -> errors.CommunicationError:
        """The error for writing to a process whose stdin is gone."""
        future = self._finished_future
        if not self._finished and future is not None:
            await asyncio.wait({future}, timeout=_EXIT_DRAIN_GRACE)
        self._ensure_usable()
        if self._returncode is not None:
            return self._exit_error()
        return errors.ConnectionError(f"process {self._name!r} closed its stdin")

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._write_paused:
            self._ensure_usable()
            if self._stdin_lost or self._returncode is not None:
                raise await self._gone_error()
            waiter: asyncio.Future[None] = loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    async def _send_bytes(self, data: bytes) -> None:
        stdin = self._writable_stdin() or await self._ready_to_write()
        stdin.write(data)
        self.stats.sent += 1
        self.stats.bytes_sent += len(data)
        if self._write_paused:
            await self._drain()

    async def send(self, message: Any) -> None:
        """Write one message to the process.

        A dict or list is written as compact JSON, a str as text, bytes as
        they are; newline framing appends the delimiter (unless the message
        already ends with it), content-length framing adds the header, raw
        mode adds nothing. In jsonrpc mode a dict with ``id`` and ``method``
        sent this way is a raw request: its reply is returned by
        :meth:`receive`, and :meth:`request` will not reuse its id.

        Args:
            message: dict, list, str or bytes.

        Raises:
            ProcessExitedError: The process has exited.
            ConnectionError: The process closed its stdin.
            ClosedError: The client was closed.
            ProtocolError: The message cannot be encoded.
        """
        data = self._encode(message)
        if (
            self._format == "jsonrpc"
            and isinstance(message, dict)
            and "method" in message
            and "id" in message
        ):
            self._pending.reserve(message["id"])
        await self._send_bytes(data)

    def _timeout(self, timeout: Timeout) -> float | None:
        if timeout is DEFAULT:
            return self.config.response_timeout or None
        return timeout

    async def receive(self, timeout: Timeout = DEFAULT) -> Any:
        """Return the next message from the process.

        Messages the process printed before exiting (or before closing its
        stdout) are still returned; once they are used up, the exit is
        raised. Safe to cancel (``asyncio.timeout``, ``wait_for``): the
        message is left for the next call, nothing is lost and the process
        and its pipes are untouched.

        Args:
            timeout: Seconds to wait; None waits forever; default
                ``response_timeout``.

        Returns:
            dict/list for JSON, str for text lines, bytes in raw mode.

        Raises:
            TimeoutError: Nothing arrived in time.
            ProcessExitedError: The process exited and every message was read.
            StdoutClosedError: The process closed its stdout, runs on, and
                every message was read.
            MessageTooLargeError: A line over ``max_line_length`` (json/line).
            ClosedError: The client was closed.
        """
        inbox = self._inbox
        if self._state is not ClientState.OPEN:
            self._ensure_usable()
            await self.connect()
        if inbox:
            return self._take()
        seconds = self._timeout(timeout)
        loop = asyncio.get_running_loop()
        # A plain timer that resolves the waiter, not an asyncio.timeout()
        # scope: this is the per-message path, and the scope costs more.
        deadline = None if seconds is None else loop.time() + seconds
        receivers = self._receivers
        while not inbox:
            self._ensure_usable()
            if self._finished:
                raise self._exit_error()
            if self._stdout_gone:
                raise self._stdout_error()
            waiter: asyncio.Future[bool | None] = loop.create_future()
            receivers.append(waiter)
            timer = None if deadline is None else loop.call_at(deadline, _receive_expired, waiter)
            try:
                expired = await waiter
            except BaseException:
                # Cancelled just as a message woke us: pass the wake-up on,
                # or another receive() would sleep on a non-empty inbox.
                if waiter.done() and not waiter.cancelled() and inbox:
                    self._wake_receivers(everyone=False)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                if not waiter.done():
                    waiter.cancel()
                    try:
                        receivers.remove(waiter)
                    except ValueError:
                        pass
            if expired and not inbox:
                try:
                    receivers.remove(waiter)
                except ValueError:
                    pass
                raise errors.TimeoutError(f"no message from {self._name!r} within {seconds:g}s")
        self._ensure_usable()
        return self._take()

    def _take(self) -> Any:
        message = self._inbox.popleft()
        if self._reading_paused and self._may_resume():
            self._resume_reading()
        if isinstance(message, errors.MessageTooLargeError):
            raise message
        return message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        """Return the next message.

        Iteration ends when the client is closed or the process exits with
        status 0, and raises ProcessExitedError otherwise (StdoutClosedError
        when the process closed its stdout and runs on). Safe to cancel, as
        :meth:`receive` is.
        """
        try:
            return await self.receive(timeout=None)
        except errors.ClosedError:
            raise StopAsyncIteration from None
        except errors.ProcessExitedError as exc:
            if exc.returncode == 0:
                raise StopAsyncIteration from None
            raise

    # -- JSON-RPC -------------------------------------------------------------------------

    def _require_jsonrpc(self, what: str) -> None:
        if self._format != "jsonrpc":
            raise errors.ConfigError(
                f"message_format: {what}() needs message_format='jsonrpc', not {self._format!r}"
            )

    async def request(self, method: str, params: Any = None, *, timeout: Timeout = DEFAULT) -> Any:
        """Send a JSON-RPC request and return its result.

        Any number of requests may be in flight; each gets its own reply.
        Safe to cancel: the reply to a request that timed out or was
        cancelled is dropped when it comes (counted in :attr:`late_replies`),
        never returned by :meth:`receive`.

        Args:
            method: The method name.
            params: A dict, a list or None.
            timeout: Seconds to wait for the reply; None waits forever;
                default ``response_timeout``.

        Returns:
            The ``result`` member of the reply.

        Raises:
            RemoteError: The process answered with an error (``remote_code``,
                message, ``data``).
            TimeoutError: No reply in time.
            ProcessExitedError: The process exited before replying.
            StdoutClosedError: The process closed its stdout but runs on; no
                reply can come (raised at once, for pending calls too).
            MessageTooLargeError: The reply exceeded ``max_line_length``.
            ConfigError: The client is not in jsonrpc mode.
            ClosedError: The client was closed.
        """
        self._require_jsonrpc("request")
        with _RequestTelemetry(self._otel, method) if self._otel.enabled else NO_TELEMETRY as t:
            params = t.outgoing(params)
            stdin = self._writable_stdin() or await self._ready_to_write()
            if self._stdout_gone:
                raise self._stdout_error()
            pending = self._pending
            request_id = pending.next_id()
            if self._otel.tracing:  # the request's span is current (see _RequestTelemetry)
                self._otel.annotate("rpc.jsonrpc.request_id", request_id)
            data = self._frame_payload(
                dumps(jsonrpc.request(method, params, id=request_id)).encode(self._encoding)
            )
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            pending.add(request_id, (future, method))
            try:
                stdin.write(data)
                self.stats.sent += 1
                self.stats.bytes_sent += len(data)
                if self._write_paused:
                    await self._drain()
                seconds = self._timeout(timeout)
                if seconds is not None:
                    self._deadlines.add(future, method, seconds, len(pending))
                return await future
            finally:
                # Still pending: timed out or cancelled. Its reply, if it ever
                # comes, is recognised as late and dropped.
                pending.abandon(request_id)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a JSON-RPC notification (no reply expected).

        Args:
            method: The method name.
            params: A dict, a list or None.

        Raises:
            ProcessExitedError: The process has exited.
            ConfigError: The client is not in jsonrpc mode.
            ClosedError: The client was closed.
        """
        self._require_jsonrpc("notify")
        message = jsonrpc.notification(method, params)
        await self._send_bytes(self._frame_payload(dumps(message).encode(self._encoding)))

    async def respond(
        self,
        request_id: jsonrpc.RequestId,
        result: Any = None,
        *,
        error: errors.RemoteError | None = None,
    ) -> None:
        """Answer a request the process sent (one read from :meth:`receive`).

        Args:
            request_id: The ``id`` of the process's request.
            result: The result, when answering with success.
            error: A RemoteError to answer with instead (its ``remote_code``,
                message and ``data``; a non-integer code becomes -32603).

        Raises:
            ProcessExitedError: The process has exited.
            ConfigError: The client is not in jsonrpc mode.
            ClosedError: The client was closed.
        """
        self._require_jsonrpc("respond")
        if error is None:
            reply = jsonrpc.response(request_id, result)
        else:
            code = error.remote_code if isinstance(error.remote_code, int) else None
            reply = jsonrpc.error_response(
                request_id,
                code if code is not None else jsonrpc.INTERNAL_ERROR,
                error.message,
                error.data,
            )
        await self._send_bytes(self._frame_payload(dumps(reply).encode(self._encoding)))

    # -- health --------------------------------------------------------------------------

    async def health_check(self, *, timeout: float = 5.0) -> HealthStatus:
        """Check that the process is alive and, with ``ping_method``, answers.

        Args:
            timeout: Seconds the probe may take.

        Returns:
            The verdict with its latency.
        """

        async def probe() -> str:
            if self._state is not ClientState.OPEN:
                raise errors.ConnectionError(f"client is {self._state.value}")
            if self._returncode is not None:
                raise self._exit_error()
            if self._stdout_gone:
                raise self._stdout_error()
            ping = self.config.ping_method
            if ping and self._format == "jsonrpc":
                await self.request(ping, timeout=timeout)
                return f"pid {self._pid} alive; {ping!r} answered"
            return f"pid {self._pid} alive"

        return await run_probe(probe, timeout=timeout, what="stdio")

    def __repr__(self) -> str:
        return (
            f"<STDIOClient command={self._name!r} pid={self._pid} "
            f"format={self._format} state={self.state.value}>"
        )


class _RequestTelemetry(OperationTelemetry):
    """The CLIENT span and ``rpc.client.call.duration`` of one request(), for a ``with`` block.

    The span is current in the block; an exception leaving it marks it
    failed and is recorded as the duration's ``error.type``.
    """

    __slots__ = ("_attributes", "_started")

    def __init__(self, otel: Instrumentation, method: str) -> None:
        self._started = monotonic()
        self._attributes: dict[str, Any] = {
            "rpc.system": "jsonrpc",
            "rpc.method": method,
            "rpc.jsonrpc.version": "2.0",
            "network.transport": "pipe",
        }
        super().__init__(
            otel, otel.span(method, "client", self._attributes) if otel.tracing else None
        )

    def finish(self, exc: BaseException | None) -> None:
        """Record ``rpc.client.call.duration``."""
        self.measure("rpc.client.call.duration", self._started, self._attributes, exc)

    def outgoing(self, params: Any) -> Any:
        """The params to send: a dict carries ``_meta.traceparent`` (MCP's place for it)."""
        return self._otel.inject_meta(params) if isinstance(params, dict) else params
