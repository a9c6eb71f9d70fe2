"""Validation and encoding of what goes into the store (DESIGN §2), with errors naming the field."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

import orjson

from core.errors import InvalidEvent

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_STREAM_ID_LENGTH",
    "SYSTEM_STREAM_PREFIX",
    "decode_json",
    "encode_object",
    "refuse_system_stream",
    "validate_event_type",
    "validate_stream_id",
]

#: Streams whose id starts with this are system streams: only Eventscope writes them
#: (``$audit`` records what operators do; no one can append a forged record to it).
SYSTEM_STREAM_PREFIX: Final = "$"
#: JSON integers must fit 64 bits (signed, or unsigned up to 2**64 - 1): what orjson,
#: PostgreSQL's jsonb in practice, and most JSON readers keep exactly.
_MIN_INT: Final = -(2**63)
_MAX_INT: Final = 2**64 - 1

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
    _check_normalised("stream_id", stream_id)
    return stream_id


def refuse_system_stream(stream_id: str) -> None:
    """Refuse a system stream (``$...``) where operators and plugins write.

    Raises:
        InvalidEvent: naming ``stream_id``.
    """
    if stream_id.startswith(SYSTEM_STREAM_PREFIX):
        raise InvalidEvent(
            "stream_id",
            f"{stream_id!r} is a system stream (it starts with {SYSTEM_STREAM_PREFIX}): only "
            "Eventscope writes those",
        )


def _check_normalised(field: str, text: str) -> None:
    """Refuse text that is not in Unicode NFC: ``e`` + a combining accent and ``é`` look
    alike but would name two different streams (or types)."""
    if not unicodedata.is_normalized("NFC", text):
        raise InvalidEvent(
            field,
            f"is not in Unicode NFC form (it looks like {unicodedata.normalize('NFC', text)!r} "
            "but would not match it); write it composed (NFC)",
        )


def decode_json(text: str | bytes) -> Any:
    """Decode JSON text strictly: what ``orjson`` would silently change is refused.

    A duplicate key (orjson keeps the last), an integer beyond 64 bits (orjson makes it a
    float, losing digits), NaN or Infinity, a number too large for a float, invalid
    UTF-8, and nesting over 1,024 levels each raise with the reason. Canonical text
    (compact, as the store and ``export`` write it) takes orjson's fast path alone.

    Raises:
        ValueError: one line saying what is wrong (and where, when the parser knows).
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValueError(str(error.args[0])) from None
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if orjson.dumps(value) == raw.strip():
        return value  # written back byte for byte: no key or digit was dropped
    try:
        return json.loads(
            raw,
            object_pairs_hook=_unique_keys,
            parse_int=_int64,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(str(error)) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r} (which value is meant is ambiguous)")
        seen.add(key)
    return dict(pairs)


def _int64(digits: str) -> int:
    value = int(digits)
    if not _MIN_INT <= value <= _MAX_INT:
        raise ValueError(
            f"integer {digits[:24]}{'…' if len(digits) > 24 else ''} is beyond 64 bits "
            "(JSON readers would lose digits); send it as a string"
        )
    return value


def _finite_float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise ValueError(f"number {digits[:24]} is too large for a 64-bit float")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


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
        _check_normalised("type", event_type)
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
