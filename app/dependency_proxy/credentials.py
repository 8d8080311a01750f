"""Upstream credentials at rest (AES-GCM) and their fingerprint (HMAC-SHA256),
each with its own key derived from the instance secret."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_CONTEXT = b"dockyard upstream credentials v1"
_FINGERPRINT_CONTEXT = b"dockyard upstream credential fingerprint v1"


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


@functools.lru_cache(maxsize=8)
def _fingerprint_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), _FINGERPRINT_CONTEXT, hashlib.sha256).digest()


def fingerprint(secret_key: str, identity: str, secret: str, url: str) -> str:
    """A keyed hash of the upstream URL, identity and secret: equal only for equal
    credentials on the same upstream, and useless to anyone without the instance
    secret. Upstream tokens and blob grants are keyed by it, never by the identity
    alone or by the raw secret; the URL keeps one account's answers on one registry
    from standing for another registry's."""
    parts = [url.rstrip("/").encode(), identity.encode()]
    # Length-prefixed, so ("ab", "c") and ("a", "bc") never meet.
    message = b"".join(len(part).to_bytes(4, "big") + part for part in parts) + secret.encode()
    return hmac.digest(_fingerprint_key(secret_key), message, "sha256").hex()
