"""Validation and encoding of what goes into the store (DESIGN §2), with errors naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from core.errors import InvalidEvent

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_STREAM_ID_LENGTH",
    "encode_object",
    "validate_event_type",
    "validate_stream_id",
]

DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
MAX_STREAM_ID_LENGTH: Final = 256
MAX_TYPE_LENGTH: Final = 256


def _control_character(text: str) -> int | None:
    for index, char in enumerate(text):
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            return index
    return None


def validate_stream_id(stream_id: object) -> str:
    """Check a stream id: 1–256 characters, no control characters.

    Raises:
        InvalidEvent: naming ``stream_id`` and what is wrong with it.
    """
    if not isinstance(stream_id, str):
        raise InvalidEvent("stream_id", f"must be text, not {type(stream_id).__name__}")
    if not 1 <= len(stream_id) <= MAX_STREAM_ID_LENGTH:
        raise InvalidEvent(
            "stream_id", f"must be 1 to {MAX_STREAM_ID_LENGTH} characters, not {len(stream_id)}"
        )
    if stream_id.isprintable() and stream_id.isascii():
        return stream_id
    bad = _control_character(stream_id)
    if bad is not None:
        raise InvalidEvent("stream_id", f"has a control character at index {bad}")
    _check_utf8("stream_id", stream_id)
    return stream_id


def validate_event_type(event_type: object) -> str:
    """Check an event type: 1–256 characters, no control characters."""
    if not isinstance(event_type, str):
        raise InvalidEvent("type", f"must be text, not {type(event_type).__name__}")
    if not 1 <= len(event_type) <= MAX_TYPE_LENGTH:
        raise InvalidEvent("type", f"must be 1 to {MAX_TYPE_LENGTH} characters")
    if not (event_type.isprintable() and event_type.isascii()):
        if _control_character(event_type) is not None:
            raise InvalidEvent("type", "has a control character")
        _check_utf8("type", event_type)
    return event_type


def _check_utf8(field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(field, "is not valid UTF-8 (lone surrogate)") from None


def encode_object(field: str, value: object, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Encode ``data`` or ``metadata`` as compact JSON text after checking it.

    The value must be a JSON object (a mapping with text keys) holding no NaN or
    Infinity, no invalid UTF-8, and encoding to at most ``max_bytes``.

    Raises:
        InvalidEvent: naming the field (and the path inside it, for NaN/Infinity).
    """
    if not isinstance(value, Mapping):
        raise InvalidEvent(field, f"must be a JSON object, not {_json_kind(value)}")
    if not isinstance(value, dict):
        value = dict(value)
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as error:
        raise InvalidEvent(field, _orjson_reason(error)) from None
    # orjson writes NaN and ±Infinity as null: only a payload containing null can hide one.
    if b"null" in encoded:
        _reject_non_finite(field, value, "")
    if len(encoded) > max_bytes:
        raise InvalidEvent(
            field, f"is {len(encoded):,} bytes encoded, over the limit of {max_bytes:,} bytes"
        )
    return encoded.decode("utf-8")


def _reject_non_finite(field: str, value: Any, path: str) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            where = f" at {path}" if path else ""
            raise InvalidEvent(field, f"{value} is not valid JSON{where}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _reject_non_finite(field, item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_non_finite(field, item, f"{path}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(field, f"{value} is not valid JSON at {path or 'top level'}")


def _json_kind(value: object) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return "a number" if not isinstance(value, bool) else "a boolean"
    return f"a {type(value).__name__}"


def _orjson_reason(error: orjson.JSONEncodeError) -> str:
    text = str(error)
    if "surrogates not allowed" in text or "UTF-8" in text:
        return "holds text that is not valid UTF-8"
    if "Dict key must be str" in text:
        return "has a key that is not text"
    if "Integer exceeds" in text:
        return "holds an integer outside the 64-bit range"
    if "not JSON serializable" in text:
        return f"holds a value that is not JSON ({text.split(':')[-1].strip()})"
    return text
