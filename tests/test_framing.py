"""The I/O-free framing decoders and encoders, without any process."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agenticaiframework.communication.errors import MessageTooLargeError, ProtocolError
from agenticaiframework.communication.framing import (
    ContentLengthDecoder,
    NewlineDecoder,
    OversizedFrame,
    RawDecoder,
    encode_content_length,
    encode_newline,
)


def test_newline_splits_across_chunks() -> None:
    decoder = NewlineDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert decoder.feed(b": 2}") == []
    assert decoder.feed(b"\n\nlast") == [b'{"b": 2}', b""]
    assert decoder.eof() == [b"last"]
    assert decoder.eof() == []


def test_newline_byte_by_byte_and_multibyte_delimiter() -> None:
    decoder = NewlineDecoder(b"\r\n")
    out: list[object] = []
    for byte in b"one\r\ntwo\r\n\r\nthree\r":
        out += decoder.feed(bytes([byte]))
    assert out == [b"one", b"two", b""]
    assert decoder.feed(b"\n") == [b"three"]


@given(
    lines=st.lists(st.binary(max_size=12).filter(lambda b: b"\r" not in b), max_size=8),
    delimiter=st.sampled_from([b"\n", b"\r\n"]),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_newline_any_chunking_gives_the_same_lines(
    lines: list[bytes], delimiter: bytes, cuts: list[int]
) -> None:
    # Whatever the pipe's chunk boundaries (including chunks that are exactly
    # one line, the decoder's fast path), the same lines come out in order.
    lines = [line.replace(b"\n", b"") for line in lines]
    stream = b"".join(line + delimiter for line in lines)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = NewlineDecoder(delimiter)
    out: list[object] = []
    for start, end in itertools.pairwise(points):
        out += decoder.feed(stream[start:end])
    assert out == lines
    assert decoder.buffered == 0


def test_newline_over_long_line_is_skipped_and_stream_recovers() -> None:
    decoder = NewlineDecoder(max_length=10)
    frames = decoder.feed(b"short\n" + b'{"id":7,' + b"x" * 30)
    assert frames[0] == b"short"
    assert isinstance(frames[1], OversizedFrame)
    assert isinstance(frames[1], MessageTooLargeError)
    assert frames[1].head.startswith(b'{"id":7,')
    assert "max_line_length (10 bytes)" in frames[1].message
    # The rest of the long line is dropped as it streams in; memory stays bounded.
    assert decoder.feed(b"y" * 1000) == []
    assert decoder.buffered <= 10
    assert decoder.feed(b"yyy\nok\n") == [b"ok"]


def test_newline_long_line_within_one_chunk() -> None:
    decoder = NewlineDecoder(max_length=4)
    frames = decoder.feed(b"12345\n1234\n")
    assert isinstance(frames[0], MessageTooLargeError)
    assert frames[1] == b"1234"


def test_newline_eof_during_skip_returns_nothing() -> None:
    decoder = NewlineDecoder(max_length=3)
    assert len(decoder.feed(b"abcdef")) == 1
    assert decoder.eof() == []


def test_newline_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        NewlineDecoder(b"")
    with pytest.raises(ValueError):
        NewlineDecoder(max_length=0)


def test_raw_decoder_passes_chunks() -> None:
    decoder = RawDecoder()
    assert decoder.feed(b"abc") == [b"abc"]
    assert decoder.feed(b"") == []
    assert decoder.eof() == []


def test_content_length_round_trip_in_pieces() -> None:
    stream = encode_content_length(b'{"a":1}') + (
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    decoder = ContentLengthDecoder()
    out: list[object] = []
    for i in range(0, len(stream), 3):
        out += decoder.feed(stream[i : i + 3])
    assert out == [b'{"a":1}', b"{}"]
    assert decoder.eof() == []


def test_content_length_too_large_body_is_skipped() -> None:
    decoder = ContentLengthDecoder(max_length=5)
    frames = decoder.feed(b"Content-Length: 8\r\n\r\n12345")
    assert len(frames) == 1 and isinstance(frames[0], OversizedFrame)
    assert decoder.feed(b"678" + encode_content_length(b"ok")) == [b"ok"]


def test_content_length_bad_headers() -> None:
    decoder = ContentLengthDecoder()
    frames = decoder.feed(b"X-Thing: 1\r\n\r\nContent-Length: abc\r\n\r\nno colon\r\n\r\n")
    assert [type(f) for f in frames] == [ProtocolError] * 3
    assert "no Content-Length" in frames[0].message  # type: ignore[union-attr]
    decoder = ContentLengthDecoder(max_header_length=16)
    assert isinstance(decoder.feed(b"A" * 40)[0], ProtocolError)


def test_content_length_truncated_at_eof() -> None:
    decoder = ContentLengthDecoder()
    decoder.feed(b"Content-Length: 10\r\n\r\nabc")
    frames = decoder.eof()
    assert len(frames) == 1 and isinstance(frames[0], ProtocolError)


def test_encoders() -> None:
    assert encode_newline(b"x") == b"x\n"
    assert encode_newline(b"x\n") == b"x\n"
    assert encode_newline(b"x", b"\r\n") == b"x\r\n"
    assert encode_content_length(b"hey") == b"Content-Length: 3\r\n\r\nhey"
