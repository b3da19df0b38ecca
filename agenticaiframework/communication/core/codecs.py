"""Message encoding shared by every client (no I/O).

Outgoing: a dict or list is sent as compact JSON text, a str as text, bytes as
bytes. Incoming (format ``auto``): text holding a JSON object or array is
returned decoded; any other text is returned as ``str``; binary as ``bytes``.
A format can be pinned: ``json`` (decode or fail), ``text`` (always str) or
``bytes`` (always bytes). All JSON in the package goes through
:func:`dumps` / :func:`loads`, so a faster engine can serve every client at once.

When orjson is installed (the ``fast`` extra) it encodes and decodes, and the
text and values are the standard library's: whatever orjson would write or
read differently goes through :mod:`json` instead (see ``_SHAPE``), and
whatever orjson refuses is retried with :mod:`json`, so errors keep the
standard library's messages.
"""

from __future__ import annotations

import json
import re
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

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the plain install
    _orjson = None  # type: ignore[assignment]

if _orjson is not None:
    _orjson_dumps = _orjson.dumps
    _orjson_loads = _orjson.loads
    _orjson_error: type[Exception] = _orjson.JSONDecodeError
    # Types orjson would encode by its own rules (dataclass, datetime, subclasses
    # of str/int/float/dict/list) are handed to no ``default``, so orjson refuses
    # them and the standard library decides as it always has.
    _ORJSON_OPTIONS = (
        _orjson.OPT_PASSTHROUGH_DATACLASS
        | _orjson.OPT_PASSTHROUGH_DATETIME
        | _orjson.OPT_PASSTHROUGH_SUBCLASS
    )
# What orjson writes or reads differently from json, found with bytes operations
# (a regular expression costs more than orjson's whole encode). Digits are
# translated to "0" (and "{" to "[") first, so each question is a plain search:
# - orjson writes NaN and +-Infinity as ``null`` (json: NaN, Infinity), exponents as
#   ``1e16`` / ``1e-7`` (json: ``1e+16`` / ``1e-07``) and 1e-5 <= |x| < 1e-4 as
#   ``0.00001`` (json: ``1e-05``): output holding ``null``, a digit before ``e`` or
#   ``0.0000`` is re-encoded by json (in a string, they only cost the slower path);
# - orjson reads integers beyond 64 bits as floats (json: exact ints): input with a
#   run of 19 digits is read by json;
# - orjson reads JSON nested to any depth, json stops at the recursion limit
#   (ProtocolError): input that could nest ``_DEEP`` levels is read by json.
_SHAPE = bytes.maketrans(b"123456789{", b"000000000[")
_LONG_NUMBER = b"0" * 19
_DEEP = 500


# A number's exponent: digits right after a structural character (or at the start)
# and then "e". Searched only when "0e" occurs at all, which text such as UUIDs
# ("...-4e1f-...") causes far more often than numbers do.
_EXPONENT = re.compile(rb"(?:^|[:,\[])-?0+(?:\.0+)?e")


def _orjson_writes_as_json(out: bytes) -> bool:
    """Whether orjson's output ``out`` is surely json's text."""
    if b"null" in out or b"0.0000" in out:
        return False
    shape = out.translate(_SHAPE)
    return b"0e" not in shape or _EXPONENT.search(shape) is None


def _orjson_reads_as_json(data: bytes | bytearray | memoryview) -> bool:
    """Whether orjson's value for ``data`` (if any) is surely json's."""
    shape = bytes(data).translate(_SHAPE)
    if _LONG_NUMBER in shape:
        return False
    return len(shape) < 2 * _DEEP or shape.count(b"[") < _DEEP


def _orjson_loads_or_none(text: str | bytes | bytearray) -> tuple[bool, JSONValue]:
    """Return ``(True, value)`` when orjson reads ``text`` surely as json does."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _orjson_reads_as_json(data):
        try:
            return True, _orjson_loads(data)
        except _orjson_error:
            pass  # NaN/Infinity literals, lone surrogates, or invalid: json decides
    return False, None


def _json_dumps(value: JSONValue) -> str:
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"cannot encode message as JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("cannot encode message as JSON: nested too deeply") from exc


def _json_loads(text: str | bytes | bytearray) -> JSONValue:
    try:
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        return _decoder.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ProtocolError("invalid JSON: nested too deeply to decode") from exc


def dumps(value: JSONValue) -> str:
    """Serialise ``value`` to compact JSON text.

    Args:
        value: Any JSON-serialisable value.

    Returns:
        The JSON text.

    Raises:
        ProtocolError: The value cannot be represented as JSON (also when
            nested too deeply or circular).
    """
    if _orjson is not None:
        try:
            out = _orjson_dumps(value, option=_ORJSON_OPTIONS)
        except TypeError:
            pass  # non-str keys, >64-bit ints, lone surrogates, ...: json decides
        else:
            if _orjson_writes_as_json(out):
                return out.decode()
    return _json_dumps(value)


def loads(text: str | bytes) -> JSONValue:
    """Parse JSON text.

    Args:
        text: JSON as str or UTF-8 bytes.

    Returns:
        The decoded value.

    Raises:
        ProtocolError: The text is not valid JSON (or not UTF-8, or nested
            too deeply).
    """
    if _orjson is not None:
        done, value = _orjson_loads_or_none(text)
        if done:
            return value
    return _json_loads(text)


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
                if _orjson is not None:
                    done, value = _orjson_loads_or_none(data)
                    if done:
                        return value
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
