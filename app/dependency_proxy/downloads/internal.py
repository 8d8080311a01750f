"""The internal endpoint's contract: how one instance asks another for a growing blob.

`GET <holder's internal URL>/-/internal/blobs/sha256:<hex>` with
`Authorization: Dockyard-Internal <expiry>.<hmac>` answers the spool of the
download running on that instance (never a committed blob, never anything
else), the last chunk held back until the digest was verified; it fails the
connection if the download fails. The token is an HMAC-SHA256, under a key
derived from the instance secret (`DOCKYARD_SECRET_KEY`, the same on every
instance), of the digest and an expiry a minute ahead: it opens that one
digest's stream for a minute, and nothing else. Clients of the registry never
get such a token, and without one the endpoint answers 401 and no bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from app.logging import outgoing_headers

PATH = "/-/internal/blobs/"
SCHEME = "Dockyard-Internal"
SIZE_HEADER = "Dockyard-Blob-Size"
TOKEN_SECONDS = 60
# Instances' clocks may differ a little: an expiry this far off either way still counts.
CLOCK_SKEW_SECONDS = 30
_CONTEXT = b"dockyard internal blob stream v1"


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), _CONTEXT, hashlib.sha256).digest()


def _mac(secret_key: str, digest: str, expires: int) -> str:
    message = f"{digest}\n{expires}".encode()
    return hmac.new(_key(secret_key), message, hashlib.sha256).hexdigest()


def sign(secret_key: str, digest: str, now: float | None = None) -> str:
    """A token for the growing blob `digest`, valid for TOKEN_SECONDS."""
    expires = int(now if now is not None else time.time()) + TOKEN_SECONDS
    return f"{expires}.{_mac(secret_key, digest, expires)}"


def verify(secret_key: str, digest: str, authorization: str, now: float | None = None) -> bool:
    """Whether the Authorization header carries a live token for exactly `digest`."""
    scheme, _, token = authorization.partition(" ")
    if scheme != SCHEME:
        return False
    expires_text, _, mac = token.strip().partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    current = now if now is not None else time.time()
    if (
        expires < current - CLOCK_SKEW_SECONDS
        or expires > current + TOKEN_SECONDS + CLOCK_SKEW_SECONDS
    ):
        return False
    return hmac.compare_digest(mac, _mac(secret_key, digest, expires))


def headers(secret_key: str, digest: str) -> dict[str, str]:
    """What a follower sends to the holder's internal endpoint: the token, and the
    request id of the client request it serves (`app.logging`), which the holder
    adopts, so one id finds the pull in both instances' logs."""
    return {"Authorization": f"{SCHEME} {sign(secret_key, digest)}", **outgoing_headers()}
