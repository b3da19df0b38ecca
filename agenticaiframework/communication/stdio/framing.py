r"""Message framing for byte streams (no I/O): newline-delimited and Content-Length.

A decoder is fed the bytes as they arrive, in chunks of any size, and returns
the complete frames found so far. A frame longer than ``max_length`` is not
buffered: its bytes are skipped up to the next frame boundary and a
:class:`~agenticaiframework.communication.core.errors.MessageTooLargeError` takes
its place in the output, so one bad frame never stops the stream::

    decoder = NewlineDecoder(max_length=1024)
    decoder.feed(b'{"a": 1}\n{"b"')   # [b'{"a": 1}']
    decoder.feed(b': 2}\n')           # [b'{"b": 2}']
    decoder.eof()                       # [] (or the last unterminated line)

Content-Length framing is the one LSP servers use: a header block
``Content-Length: N\r\n\r\n`` then exactly ``N`` body bytes. A bad header
block (no length, a length that is not plain digits, an absurd one, a block
too long) becomes a :class:`~agenticaiframework.communication.core.errors.ProtocolError`
and the decoder resynchronises on the next ``Content-Length`` header.
"""

from __future__ import annotations

import abc

from ..core.errors import MessageTooLargeError, ProtocolError

__all__ = [
    "DEFAULT_MAX_HEADER_LENGTH",
    "DEFAULT_MAX_SKIP",
    "ContentLengthDecoder",
    "Frame",
    "FrameDecoder",
    "NewlineDecoder",
    "OversizedFrame",
    "RawDecoder",
    "encode_content_length",
    "encode_newline",
]

DEFAULT_MAX_HEADER_LENGTH = 8192
DEFAULT_MAX_SKIP = 1 << 30
"""Largest Content-Length over the body limit still skipped by count (1 GiB)."""

_HEAD = 256
# More digits than any believable length (and int() refuses over 4,300).
_MAX_LENGTH_DIGITS = 12
_HEADER_NAME = b"content-length"


class OversizedFrame(MessageTooLargeError):
    """A frame skipped for its size; ``head`` keeps its first bytes.

    The head lets a JSON-RPC caller find the id of a reply too large to
    read, and fail that one request instead of letting it time out.

    Attributes:
        head: Up to the first 256 bytes of the frame.
    """

    def __init__(self, message: str, *, head: bytes = b"") -> None:
        super().__init__(message)
        self.head = head


Frame = bytes | ProtocolError
"""One decoder output: a frame's bytes, or the error that replaced a bad frame."""


class FrameDecoder(abc.ABC):
    """Turns a byte stream into frames; feed it chunks, collect frames."""

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes.

        Args:
            data: The next chunk of the stream.

        Returns:
            The frames completed by this chunk, in order; a frame that broke
            a limit or the framing rules is replaced by its error.
        """

    @abc.abstractmethod
    def eof(self) -> list[Frame]:
        """Signal the end of the stream.

        Returns:
            What the unfinished buffer still holds (a last line without its
            delimiter), or an error for a truncated frame.
        """


class RawDecoder(FrameDecoder):
    """No framing: every chunk read is one message."""

    def feed(self, data: bytes) -> list[Frame]:
        """Return the chunk itself as one frame (nothing for an empty chunk).

        Args:
            data: The chunk.

        Returns:
            ``[data]``, or ``[]`` when ``data`` is empty.
        """
        return [data] if data else []

    def eof(self) -> list[Frame]:
        """Nothing is ever buffered.

        Returns:
            An empty list.
        """
        return []


class NewlineDecoder(FrameDecoder):
    r"""Split a stream on a delimiter (``b"\n"`` by default).

    The delimiter is not part of the frame. A frame longer than
    ``max_length`` bytes becomes a :class:`MessageTooLargeError`, and the rest
    of it is discarded as it arrives, so memory stays bounded.

    Args:
        delimiter: The frame separator.
        max_length: Largest frame, in bytes, without the delimiter.

    Raises:
        ValueError: Empty delimiter or a max_length below 1.
    """

    __slots__ = ("_buffer", "_delimiter", "_dlen", "_max", "_skipping")

    def __init__(self, delimiter: bytes = b"\n", max_length: int = 16 * 1024 * 1024) -> None:
        if not delimiter:
            raise ValueError("delimiter must not be empty")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self._delimiter = delimiter
        self._dlen = len(delimiter)
        self._max = max_length
        self._buffer = bytearray()
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buffer)

    def _too_large(self, size: int, head: bytes) -> OversizedFrame:
        return OversizedFrame(
            f"line of at least {size} bytes exceeds max_line_length ({self._max} bytes); skipped",
            head=head,
        )

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes and return the completed lines.

        Args:
            data: The next chunk.

        Returns:
            Completed frames (delimiter removed) and errors for over-long ones.
        """
        buffer = self._buffer
        if not buffer and not self._skipping:
            # The common case on a pipe: the chunk is exactly one whole line.
            end = data.find(self._delimiter)
            if end >= 0 and end == len(data) - self._dlen and end <= self._max:
                return [bytes(data[:end])]
        # Search only the new bytes (plus a delimiter's worth of overlap).
        start = max(0, len(buffer) - self._dlen + 1)
        buffer += data
        frames: list[Frame] = []
        delimiter, dlen, limit = self._delimiter, self._dlen, self._max
        pos = 0
        while True:
            end = buffer.find(delimiter, max(pos, start))
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif end - pos > limit:
                frames.append(self._too_large(end - pos, bytes(buffer[pos : pos + _HEAD])))
            else:
                frames.append(bytes(buffer[pos:end]))
            pos = end + dlen
        if pos:
            del buffer[:pos]
        if len(buffer) > limit:
            # Keep only the possible start of a delimiter; the rest of the
            # line is dropped as it streams in.
            if not self._skipping:
                frames.append(self._too_large(len(buffer), bytes(buffer[:_HEAD])))
                self._skipping = True
            keep = dlen - 1
            del buffer[: len(buffer) - keep]
        return frames

    def eof(self) -> list[Frame]:
        """Return the last line if it had no delimiter.

        Returns:
            ``[line]`` for a non-empty unterminated line, else ``[]``.
        """
        rest = bytes(self._buffer)
        self._buffer.clear()
        skipping, self._skipping = self._skipping, False
        if skipping or not rest:
            return []
        return [rest]


class ContentLengthDecoder(FrameDecoder):
    r"""Decode ``Content-Length: N\r\n\r\n`` + body frames (LSP style).

    Other headers (``Content-Type``) are accepted and ignored. A body larger
    than ``max_length`` (but not over ``max_skip``) is skipped by its length
    and replaced by an :class:`OversizedFrame`, so an honest peer's stream
    stays in step.

    A bad header block is replaced by a :class:`ProtocolError`: no
    Content-Length, one that is not plain decimal digits (negative, letters,
    5,000 digits...), conflicting ones, a length over ``max_skip``, or a
    block longer than ``max_header_length``. Its body length is unknown, so
    the decoder then resynchronises: it discards bytes up to the next
    ``Content-Length`` header and goes on from there.

    Args:
        max_length: Largest body, in bytes.
        max_header_length: Largest header block, in bytes.
        max_skip: Largest length still believed (and skipped by count) when
            over ``max_length``; a larger one is a bad frame.

    Raises:
        ValueError: A limit below 1.
    """

    __slots__ = (
        "_body_left",
        "_buffer",
        "_max",
        "_max_header",
        "_max_skip",
        "_resync",
        "_skip_left",
    )

    def __init__(
        self,
        max_length: int = 16 * 1024 * 1024,
        max_header_length: int = DEFAULT_MAX_HEADER_LENGTH,
        max_skip: int = DEFAULT_MAX_SKIP,
    ) -> None:
        if max_length < 1 or max_header_length < 1 or max_skip < 1:
            raise ValueError("max_length, max_header_length and max_skip must be >= 1")
        self._max = max_length
        self._max_header = max_header_length
        self._max_skip = max(max_skip, max_length)
        self._buffer = bytearray()
        self._body_left = -1  # -1: reading headers; else the body length expected
        self._skip_left = 0  # bytes of an over-long body still to discard
        self._resync = False  # after a bad header block: look for the next one

    def _parse_headers(self, block: bytes) -> int | ProtocolError:
        length: int | None = None
        for raw_line in block.split(b"\r\n"):
            if not raw_line:
                continue
            name, sep, value = raw_line.partition(b":")
            if not sep:
                return ProtocolError(f"malformed header line {raw_line[:80]!r}")
            if name.strip().lower() != b"content-length":
                continue
            text = value.strip()
            if len(text) > _MAX_LENGTH_DIGITS:
                # Checked before int(): 5,000 digits would raise ValueError.
                return ProtocolError(
                    f"invalid Content-Length of {len(text)} "
                    f"{'digits' if text.isdigit() else 'characters'} {text[:20]!r}..."
                )
            if not text.isdigit():
                return ProtocolError(f"invalid Content-Length {text!r}")
            value_int = int(text)
            if length is not None and value_int != length:
                return ProtocolError(f"conflicting Content-Length headers ({length}, {value_int})")
            length = value_int
        if length is None:
            return ProtocolError("header block has no Content-Length")
        if length > self._max_skip:
            return ProtocolError(
                f"Content-Length {length} is over {self._max_skip} bytes; not believed"
            )
        return length

    def _bad_block(self, error: ProtocolError, consumed: int) -> ProtocolError:
        """Drop ``consumed`` bytes of a bad header block and start resynchronising."""
        del self._buffer[:consumed]
        self._resync = True
        return ProtocolError(f"{error.message}; skipped to the next Content-Length header")

    def _resynchronise(self) -> bool:
        """Discard bytes up to the next Content-Length header; False if none yet."""
        buffer = self._buffer
        found = buffer.lower().find(_HEADER_NAME)
        if found < 0:
            # Keep what could be the start of the name, split across chunks.
            keep = len(_HEADER_NAME) - 1
            if len(buffer) > keep:
                del buffer[: len(buffer) - keep]
            return False
        del buffer[:found]
        self._resync = False
        return True

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes and return the completed bodies.

        Args:
            data: The next chunk.

        Returns:
            Completed bodies and errors for bad or over-long frames.
        """
        frames: list[Frame] = []
        if self._skip_left:
            dropped = min(self._skip_left, len(data))
            self._skip_left -= dropped
            data = data[dropped:]
        buffer = self._buffer
        buffer += data
        while True:
            if self._skip_left:
                dropped = min(self._skip_left, len(buffer))
                self._skip_left -= dropped
                del buffer[:dropped]
                if self._skip_left:
                    break
            if self._body_left < 0:
                if self._resync and not self._resynchronise():
                    break
                limit = self._max_header
                end = buffer.find(b"\r\n\r\n", 0, limit + 4)
                if end < 0:
                    if len(buffer) >= limit + 4:
                        # Drop one byte: the search for the next header must
                        # not find this block's own Content-Length again.
                        error = ProtocolError(f"header block longer than {limit} bytes")
                        frames.append(self._bad_block(error, 1))
                        continue
                    break
                parsed = self._parse_headers(bytes(buffer[:end]))
                if isinstance(parsed, ProtocolError):
                    frames.append(self._bad_block(parsed, end + 4))
                    continue
                del buffer[: end + 4]
                if parsed > self._max:
                    frames.append(
                        OversizedFrame(
                            f"body of {parsed} bytes exceeds max_line_length "
                            f"({self._max} bytes); skipped",
                            head=bytes(buffer[:_HEAD]),
                        )
                    )
                    self._skip_left = parsed
                    continue
                self._body_left = parsed
            if len(buffer) < self._body_left:
                break
            size = self._body_left
            frames.append(bytes(buffer[:size]))
            del buffer[:size]
            self._body_left = -1
        return frames

    def eof(self) -> list[Frame]:
        """Report a frame cut off by the end of the stream.

        Returns:
            ``[ProtocolError]`` when a header block or body was incomplete.
        """
        truncated = (
            (bool(self._buffer) and not self._resync) or self._body_left >= 0 or self._skip_left > 0
        )
        self._buffer.clear()
        self._body_left = -1
        self._skip_left = 0
        self._resync = False
        if truncated:
            return [ProtocolError("stream ended inside a Content-Length frame")]
        return []


def encode_newline(payload: bytes, delimiter: bytes = b"\n") -> bytes:
    r"""Frame ``payload`` as one delimited line.

    The delimiter is appended unless the payload already ends with it, so
    ``send("print(1)\n")`` does not add an empty line.

    Args:
        payload: The message bytes.
        delimiter: The frame separator.

    Returns:
        The bytes to write.
    """
    if payload.endswith(delimiter):
        return payload
    return payload + delimiter


def encode_content_length(payload: bytes) -> bytes:
    """Frame ``payload`` with a Content-Length header block.

    Args:
        payload: The message bytes.

    Returns:
        The bytes to write.
    """
    return b"Content-Length: %d\r\n\r\n%b" % (len(payload), payload)
