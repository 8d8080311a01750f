"""Token secrets: generated with a recognisable prefix, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PERSONAL_ACCESS_TOKEN_PREFIX = "dypat-"
DEPLOY_TOKEN_PREFIX = "dydt-"
GROUP_ACCESS_TOKEN_PREFIX = "dygat-"


def new_secret(prefix: str) -> str:
    # 32 random bytes: a plain sha256 of such a secret cannot be brute-forced,
    # and it lets us find the row by its hash in one indexed lookup.
    return prefix + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())
