"""AES-GCM payload encryption: names, emails and phones stay encrypted inside Temporal.

Every payload the client, worker, replayer and API send to Temporal is encrypted with the
current key; the key id travels in the payload's metadata, so older keys keep decrypting
what they wrote while a new key encrypts from now on (rotation: put the new key first).

Keys come from ``LEADFLOW_CODEC_KEYS`` (``id:base64key,id2:base64key``; the first one
encrypts) or from the file named by ``LEADFLOW_CODEC_KEYS_FILE`` (same format, one per line).
Each key is 16, 24 or 32 bytes. With no keys configured, payloads are not encrypted.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from runtime.settings import Settings, current_settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """Encryption keys that cannot be used, or a payload no configured key can open."""


class EncryptionCodec(PayloadCodec):
    """AES-256/192/128-GCM over whole payloads; the first key encrypts, any key decrypts."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]):
        if not keys:
            raise CodecKeyError("no encryption keys given")
        self._current_id, current = keys[0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        self._current = self._ciphers[self._current_id]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current.encrypt(nonce, payload.SerializeToString(), self._current_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self._current_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(f"payload encrypted with key {key_id!r}, which is not configured")
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))


def parse_keys(text: str, source: str) -> list[tuple[str, bytes]]:
    """``id:base64key`` entries separated by commas or new lines."""
    keys: list[tuple[str, bytes]] = []
    for entry in (item.strip() for item in text.replace("\n", ",").split(",")):
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise CodecKeyError(f"{source}: expected id:base64key, got an entry without an id")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"{source}: key {key_id!r} is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise CodecKeyError(f"{source}: key {key_id!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32")
        keys.append((key_id, key))
    if len({key_id for key_id, _ in keys}) != len(keys):
        raise CodecKeyError(f"{source}: key ids must be unique")
    return keys


def configured_codec(settings: Settings | None = None) -> EncryptionCodec | None:
    """The codec for the configured keys (``LEADFLOW_CODEC_KEYS`` or ``_FILE``), or None when encryption is off."""
    settings = settings or current_settings()
    if settings.codec_keys is not None:
        return EncryptionCodec(parse_keys(settings.codec_keys.get_secret_value(), "LEADFLOW_CODEC_KEYS"))
    path = settings.codec_keys_file
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise CodecKeyError(f"LEADFLOW_CODEC_KEYS_FILE {path}: {error.strerror}") from None
        return EncryptionCodec(parse_keys(text, str(path)))
    return None


def new_key() -> str:
    """A fresh random 256-bit key, base64-encoded (for ``leadflow codec new-key``)."""
    return base64.b64encode(os.urandom(32)).decode()
