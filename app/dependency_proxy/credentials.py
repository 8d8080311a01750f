"""Upstream credentials at rest: AES-GCM with a key derived from the instance secret."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_CONTEXT = b"dockyard upstream credentials v1"


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(_CONTEXT + secret_key.encode()).digest()


def encrypt(secret_key: str, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key)).encrypt(nonce, plaintext.encode(), _CONTEXT)
    return base64.b64encode(nonce + sealed).decode()


def decrypt(secret_key: str, token: str) -> str | None:
    """The plaintext, or None when the secret key changed or the value is damaged."""
    try:
        raw = base64.b64decode(token)
        return AESGCM(_key(secret_key)).decrypt(raw[:12], raw[12:], _CONTEXT).decode()
    except (InvalidTag, ValueError):
        return None
