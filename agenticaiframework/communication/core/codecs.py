"""Message encoding shared by every client (no I/O).

Outgoing: a dict or list is sent as compact JSON text, a str as text, bytes as
bytes. Incoming (format ``auto``): text holding a JSON object or array is
returned decoded; any other text is returned as ``str``; binary as ``bytes``.
A format can be pinned: ``json`` (decode or fail), ``text`` (always str) or
``bytes`` (always bytes). All JSON in the package goes through
:func:`dumps` / :func:`loads`, so a faster engine can serve every client at once.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ProtocolError

__all__ = [
    "JSONValue",
    "Message",
    "decode",
    "decode_payload",
    "dumps",
    "encode",
    "encode_bytes",
    "loads",
]

JSONValue = Any
Message = Any
"""A message as users send and receive it: dict, list, str or bytes."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_decoder = json.JSONDecoder()
_JSON_STARTS = frozenset("{[")


def dumps(value: JSONValue) -> str:
    """Serialise ``value`` to compact JSON text.

    Args:
        value: Any JSON-serialisable value.

    Returns:
        The JSON text.

    Raises:
        ProtocolError: The value cannot be represented as JSON.
    """
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"cannot encode message as JSON: {exc}") from exc


def loads(text: str | bytes) -> JSONValue:
    """Parse JSON text.

    Args:
        text: JSON as str or UTF-8 bytes.

    Returns:
        The decoded value.

    Raises:
        ProtocolError: The text is not valid JSON (or not UTF-8).
    """
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        return _decoder.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("invalid JSON: nested too deeply to decode") from exc


def encode(message: Message) -> str | bytes:
    """Encode an outgoing message: dict/list as JSON text, str as is, bytes as is.

    Args:
        message: dict, list, str, bytes, bytearray or memoryview.

    Returns:
        Text for a text frame/line, or bytes for a binary one.

    Raises:
        ProtocolError: The message has a type no protocol can send.
    """
    if isinstance(message, str):
        return message
    if isinstance(message, dict | list):
        return dumps(message)
    if isinstance(message, bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    raise ProtocolError(f"cannot send a {type(message).__name__}: send a dict, list, str or bytes")


def encode_bytes(message: Message, encoding: str = "utf-8") -> bytes:
    """Encode an outgoing message to bytes (MQTT payloads, pipes).

    Args:
        message: dict, list, str or bytes-like.
        encoding: Text encoding for str and JSON.

    Returns:
        The payload bytes.
    """
    encoded = encode(message)
    return encoded.encode(encoding) if isinstance(encoded, str) else encoded


def decode(data: str | bytes, fmt: str = "auto") -> Message:
    """Decode an incoming message according to ``fmt``.

    Args:
        data: A text or binary frame, line or payload.
        fmt: ``auto``, ``json``, ``text`` or ``bytes``.

    Returns:
        dict/list for JSON objects and arrays, else str (text) or bytes.

    Raises:
        ProtocolError: ``fmt`` is ``json`` and the data is not JSON, or
            ``text`` and the bytes are not UTF-8, or (any format) JSON nested
            too deeply to decode.
    """
    if fmt == "auto":
        if isinstance(data, str):
            if data and (data[0] in _JSON_STARTS or data.lstrip()[:1] in _JSON_STARTS):
                try:
                    return _decoder.decode(data)
                except ValueError:
                    return data
                except RecursionError as exc:
                    raise ProtocolError("invalid JSON: nested too deeply to decode") from exc
            return data
        return data
    if fmt == "json":
        return loads(data)
    if fmt == "text":
        if isinstance(data, str):
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"message is not valid UTF-8: {exc}") from exc
    if fmt == "bytes":
        return data.encode("utf-8") if isinstance(data, str) else data
    raise ProtocolError(f"unknown message format {fmt!r}")


def decode_payload(data: bytes, fmt: str = "auto") -> Message:
    """Decode a byte payload (MQTT, pipes) whose text-ness is unknown.

    In ``auto`` mode UTF-8 payloads are treated as text (and JSON objects or
    arrays decoded); anything else is returned as bytes.

    Args:
        data: The payload.
        fmt: ``auto``, ``json``, ``text`` or ``bytes``.

    Returns:
        The decoded message.
    """
    if fmt == "auto":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        return decode(text, "auto")
    return decode(data, fmt)
