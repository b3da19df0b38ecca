"""The I/O-free framing decoders and encoders, without any process."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agenticaiframework.communication.core.errors import MessageTooLargeError, ProtocolError
from agenticaiframework.communication.stdio.framing import (
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
    # The third block is skipped while resynchronising: it has no Content-Length.
    assert [type(f) for f in frames] == [ProtocolError] * 2
    assert "no Content-Length" in frames[0].message  # type: ignore[union-attr]
    assert "skipped to the next Content-Length header" in frames[1].message  # type: ignore[union-attr]
    assert decoder.feed(encode_content_length(b"ok")) == [b"ok"]
    decoder = ContentLengthDecoder(max_header_length=16)
    assert isinstance(decoder.feed(b"A" * 40)[0], ProtocolError)


GOOD = encode_content_length(b'{"id":1,"result":"genuine"}')
BAD_HEADERS = {
    "5000 digits": b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
    "negative": b'Content-Length: -5\r\n\r\n{"id":1,"result":"smuggled"}',
    "plus sign": b"Content-Length: +5\r\n\r\nabcde",
    "letters": b"Content-Length: 1e3\r\n\r\n",
    "unicode digits": "Content-Length: \u0661\u0662\r\n\r\n".encode(),
    "absurd length": b"Content-Length: 99999999999999999999\r\n\r\nxx",
    "over max_skip": b"Content-Length: 999999999999\r\n\r\nxx",
    "conflicting": b"Content-Length: 2\r\ncontent-length: 3\r\n\r\nabc",
    "no length": b'Content-Type: json\r\n\r\n{"id":1,"result":"smuggled"}',
    "long header": b"X-Junk: " + b"a" * 20_000 + b"\r\n\r\n",
    "long length line": b"Content-Length: " + b"7" * 20_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", list(BAD_HEADERS))
def test_content_length_bad_header_is_one_error_then_the_stream_resynchronises(
    name: str,
) -> None:
    # Before the fix, 5,000 digits raised ValueError out of feed() and stayed
    # buffered, so every later feed raised again and the genuine frame was lost.
    decoder = ContentLengthDecoder()
    frames = decoder.feed(BAD_HEADERS[name] + GOOD + GOOD)
    assert len(frames) == 3, frames
    assert type(frames[0]) is ProtocolError
    assert frames[1:] == [b'{"id":1,"result":"genuine"}'] * 2
    assert decoder.eof() == []


@given(
    name=st.sampled_from(sorted(BAD_HEADERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=21_000), max_size=12),
)
def test_content_length_resync_under_any_chunking(name: str, cuts: list[int]) -> None:
    stream = BAD_HEADERS[name] + GOOD + encode_content_length(b"second")
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = ContentLengthDecoder()
    out: list[object] = []
    for start, end in itertools.pairwise(points):
        out += decoder.feed(stream[start:end])
    assert [type(f) for f in out] == [ProtocolError, bytes, bytes]
    assert out[1:] == [b'{"id":1,"result":"genuine"}', b"second"]


def test_content_length_header_limit_holds_within_one_chunk() -> None:
    # A terminator past max_header_length does not make an over-long block valid.
    decoder = ContentLengthDecoder(max_header_length=64)
    block = b"X-Pad: " + b"p" * 100 + b"\r\nContent-Length: 2\r\n\r\nhi"
    frames = decoder.feed(block + encode_content_length(b"ok"))
    assert type(frames[0]) is ProtocolError and "longer than 64 bytes" in str(frames[0])
    assert frames[-1] == b"ok"


def test_content_length_over_max_but_believable_is_skipped_by_count() -> None:
    # An honest reply too large is skipped by its length, even if its body
    # mentions Content-Length, so the next frame is read in step.
    decoder = ContentLengthDecoder(max_length=10)
    body = b'{"text": "Content-Length: 3\\r\\n"}'
    frames = decoder.feed(encode_content_length(body) + encode_content_length(b"next"))
    assert isinstance(frames[0], OversizedFrame) and frames[1:] == [b"next"]
    with pytest.raises(ValueError):
        ContentLengthDecoder(max_skip=0)


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
