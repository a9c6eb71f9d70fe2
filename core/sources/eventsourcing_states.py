"""Decoding the eventsourcing library's stored states: decrypt (AES-GCM), decompress
(zlib), JSON, with the library's transcodings shown as plain values."""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from core.events import to_micros

__all__ = ["StateDecoder", "Undecodable", "plain_state", "state_timestamp"]

_ZLIB_TOPICS: Final = frozenset({"eventsourcing.compressor:ZlibCompressor", "zlib"})
_AES_TOPICS: Final = frozenset(
    {"eventsourcing.cipher:AESCipher", "eventsourcing.cryptography:AESCipher"}
)
_DEFAULT_CIPHER: Final = "eventsourcing.cipher:AESCipher"


# -- decoding states ------------------------------------------------------------------------


class Undecodable(Exception):
    """A state that cannot be decoded; the message is the one-line reason shown."""


def plain_state(value: Any) -> Any:
    """A decoded state with the JSON transcoder's ``{"_type_": …, "_data_": …}`` values
    as plain values (recursively): ``uuid_hex`` as a canonical UUID string, and the
    others (``datetime_iso``, ``decimal_str``, custom transcodings) as their ``_data_``."""
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            kind, data = value["_type_"], value["_data_"]
            if kind == "uuid_hex" and isinstance(data, str):
                try:
                    return str(uuid.UUID(data))
                except ValueError:
                    return data
            return plain_state(data)
        return {key: plain_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_state(item) for item in value]
    return value


def _setting(environ: Mapping[str, str], app: str | None, key: str) -> str | None:
    """A setting as the library's ``Environment.get`` reads it: ``APP_KEY``, then ``KEY``."""
    names = [f"{app.upper()}_{key}", key] if app else [key]
    for name in names:
        value = environ.get(name)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class StateDecoder:
    """Turns stored state bytes into the event's data: decrypt, decompress, JSON.

    Build it with :meth:`from_environment`. ``problem`` set means no state can be
    decoded (a setting the library would refuse, or a topic unknown here): every
    event is then listed as undecodable with that reason.
    """

    cipher_key: bytes | None = None
    cipher_topic: str | None = None
    compressed: bool = False
    problem: str | None = None

    @classmethod
    def from_environment(
        cls, app: str | None, environ: Mapping[str, str] | None = None
    ) -> StateDecoder:
        """The decoder of the application named ``app`` (None: no ``APPNAME_`` prefix)."""
        env = os.environ if environ is None else environ
        compressor = _setting(env, app, "COMPRESSOR_TOPIC") or None
        cipher_topic = _setting(env, app, "CIPHER_TOPIC") or None
        cipher_key = _setting(env, app, "CIPHER_KEY") or None
        if cipher_key and not cipher_topic:
            cipher_topic = _DEFAULT_CIPHER  # as the library's factory defaults it
        if compressor is not None and compressor not in _ZLIB_TOPICS:
            return cls(problem=f"COMPRESSOR_TOPIC {compressor!r} is not supported (only zlib)")
        if cipher_topic is None:
            return cls(compressed=compressor is not None)
        if cipher_topic not in _AES_TOPICS:
            return cls(problem=f"CIPHER_TOPIC {cipher_topic!r} is not supported (only AES-GCM)")
        if not cipher_key:
            return cls(problem=f"CIPHER_TOPIC is {cipher_topic!r} but CIPHER_KEY is not set")
        try:
            key = base64.b64decode(cipher_key.encode("utf-8"), validate=True)
        except (binascii.Error, ValueError):
            return cls(problem="CIPHER_KEY is not base64")
        if len(key) not in (16, 24, 32):
            return cls(problem=f"CIPHER_KEY has {len(key)} bytes, not 16, 24 or 32")
        return cls(key, cipher_topic, compressor is not None)

    def decode(self, state: bytes) -> dict[str, Any]:
        """The state as a plain dict.

        Raises:
            Undecodable: with the one-line reason.
        """
        if self.problem is not None:
            raise Undecodable(self.problem)
        if self.cipher_key is not None:
            state = _aes_gcm_decrypt(self.cipher_key, state)
        if self.compressed:
            try:
                state = zlib.decompress(state)
            except zlib.error as error:
                raise Undecodable(f"not zlib-compressed ({error})") from None
        try:
            decoded = orjson.loads(state)
        except orjson.JSONDecodeError:
            decoded = _loads_lenient(state, self)
        if not isinstance(decoded, dict):
            raise Undecodable(f"the state is JSON {type(decoded).__name__}, not an object")
        result = plain_state(decoded)
        assert isinstance(result, dict)
        return result


def _loads_lenient(state: bytes, decoder: StateDecoder) -> Any:
    """Python's json (NaN and Infinity, as the library's encoder writes them), else why not."""
    try:
        return json.loads(state.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if decoder.cipher_key is None and not decoder.compressed:
            hint = " (encrypted or compressed? set CIPHER_KEY / COMPRESSOR_TOPIC)"
        else:
            hint = ""
        raise Undecodable(f"the state is not JSON{hint}") from None


def _aes_gcm_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """AES-GCM as both of the library's ciphers lay it out: nonce (12), tag (16), data."""
    nonce, tag, encrypted = ciphertext[:12], ciphertext[12:28], ciphertext[28:]
    if len(nonce) != 12 or len(tag) != 16:
        raise Undecodable("damaged cipher text (too short for a nonce and a tag)")
    try:
        from Crypto.Cipher import AES
    except ImportError:  # pycryptodome missing: the `cryptography` package does the same
        try:
            from cryptography.exceptions import InvalidTag  # type: ignore[import-not-found,unused-ignore]
            from cryptography.hazmat.primitives.ciphers.aead import (  # type: ignore[import-not-found,unused-ignore]
                AESGCM,
            )
        except ImportError:
            raise Undecodable(
                "AES-GCM needs pycryptodome or cryptography (pip install pycryptodome)"
            ) from None
        try:
            return bytes(AESGCM(key).decrypt(nonce, encrypted + tag, None))
        except InvalidTag:
            raise Undecodable("decryption failed (wrong CIPHER_KEY or damaged bytes)") from None
    try:
        cipher: Any = AES.new(key, AES.MODE_GCM, nonce=nonce)
        return bytes(cipher.decrypt_and_verify(encrypted, tag))
    except ValueError:
        raise Undecodable("decryption failed (wrong CIPHER_KEY or damaged bytes)") from None


def state_timestamp(data: Mapping[str, Any]) -> int | None:
    """The state's ``timestamp`` as microseconds (naive times taken as UTC), or None."""
    value = data.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_micros(moment)
