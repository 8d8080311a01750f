"""Who may read shared blob bytes: the isolation rule, and the grants that record it.

Groups are tenants. Blob bytes (on disk, or being downloaded) are shared between
them to save space and upstream traffic; the right to read them is not. The rule,
kept by this module and the services that call it (`services/get_blob.py`):

    A group receives bytes of a blob only after its own upstream identity was
    confirmed for that repository: an upstream HEAD or GET of that blob, sent
    with the group's own credentials, answered 2xx. Nothing is granted before
    the upstream answered; a refusal leaves nothing behind (no grant, no row,
    no spool). A grant is scoped to (group, credentials fingerprint, upstream
    repository, digest), so it dies when the group's credentials change.

A group that holds a row for the digest holds the bytes already: rows are the
group's own cache and are served without asking the upstream again, as GitLab
does (clearing the cache removes them). Manifests are never shared between
groups (each group's rows hold their own bytes), so they need no grant.

A manifest that lists a digest is deliberately *not* confirmation for the blob:
registries accept manifests whose layers they do not hold (foreign or
non-distributable layers with `urls` are not checked; some mirrors check
nothing), so anyone who can push a manifest anywhere upstream could name
another tenant's private layer in it. A HEAD asks the registry about that
blob in that repository; it costs one small request and is free of Docker
Hub's pull limit.

Grants live in this process's memory, bounded in number and age. Concurrent
checks of one key share one upstream request, and the GET that starts a
download is itself the check, so a crowd of one group's clients joining its
own download costs no extra upstream request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from app.dependency_proxy.errors import BlobUnknown, UpstreamDenied

T = TypeVar("T")

#: How long a confirmed grant is trusted without asking the upstream again.
GRANT_MAX_AGE = 600.0
GRANT_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class GrantKey:
    group_id: int
    #: Keyed hash of the group's upstream identity and secret; "" when anonymous.
    credentials: str
    #: The upstream registry and repository name, as the upstream sees it.
    repository: str
    digest: str


class Claim:
    """One upstream check of a key; other requests for the same key wait for its answer."""

    def __init__(self, grants: BlobGrants, key: GrantKey) -> None:
        self._grants = grants
        self._key = key
        self.outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def settled(self) -> bool:
        return self.outcome.done()

    async def run(self, request: Callable[[], Awaitable[T]]) -> T:
        """Send `request` (an upstream HEAD or GET of the blob with the key's
        credentials); the key is granted only if it returns, i.e. answered 2xx."""
        try:
            result = await request()
        except (UpstreamDenied, BlobUnknown) as exc:
            self._grants.revoke(self._key)  # a no now outweighs an earlier yes
            self._settle(exc)
            raise
        except Exception as exc:
            # Waiters with the same key share the refusal (same credentials,
            # same repository, same digest: the same answer).
            self._settle(exc)
            raise
        except BaseException:
            self.abandon()
            raise
        self._grants._record(self._key)
        self._settle(True)
        return result

    def abandon(self) -> None:
        """Give up without an answer (the request was never sent, or was
        cancelled): waiters then ask the upstream themselves."""
        self._settle(False)

    def _settle(self, outcome: bool | Exception) -> None:
        if self.outcome.done():
            return
        if isinstance(outcome, Exception):
            self.outcome.set_exception(outcome)
            self.outcome.exception()  # nobody may be waiting: not "never retrieved"
        else:
            self.outcome.set_result(outcome)
        self._grants._settled(self._key, self)


class BlobGrants:
    """Confirmed (group, credentials, repository, digest) keys, and checks in flight."""

    def __init__(
        self, max_entries: int = GRANT_MAX_ENTRIES, max_age: float = GRANT_MAX_AGE
    ) -> None:
        self._granted: OrderedDict[GrantKey, float] = OrderedDict()  # key -> monotonic expiry
        self._pending: dict[GrantKey, Claim] = {}
        self._max_entries = max_entries
        self._max_age = max_age

    def holds(self, key: GrantKey) -> bool:
        expiry = self._granted.get(key)
        return expiry is not None and expiry > time.monotonic()

    def checking(self, key: GrantKey) -> bool:
        """Whether an upstream check of this key is in flight."""
        return key in self._pending

    def claim(self, key: GrantKey) -> Claim:
        """Start a check of `key` now (synchronously, so that requests arriving
        before its upstream request is even sent wait for it instead of sending
        their own). The caller must `run` or `abandon` it."""
        claim = Claim(self, key)
        self._pending.setdefault(key, claim)
        return claim

    async def check(self, key: GrantKey, request: Callable[[], Awaitable[T]]) -> T:
        """Always send `request` (the caller needs its answer); grant on success."""
        return await self.claim(key).run(request)

    async def confirm(self, key: GrantKey, request: Callable[[], Awaitable[object]]) -> None:
        """Return once `key` is granted: already held, or confirmed by the check
        in flight for it, or by sending `request`. Raises the upstream's refusal."""
        while not self.holds(key):
            pending = self._pending.get(key)
            if pending is None:
                await self.check(key, request)
                return
            # Shielded: this waiter going away must not cancel the shared check.
            if await asyncio.shield(pending.outcome):
                return
            # Abandoned without an answer: look again (and likely ask ourselves).

    def revoke(self, key: GrantKey) -> None:
        """The upstream refused this key after all: forget it at once."""
        self._granted.pop(key, None)

    def _record(self, key: GrantKey) -> None:
        self._granted[key] = time.monotonic() + self._max_age
        self._granted.move_to_end(key)
        while len(self._granted) > self._max_entries:
            self._granted.popitem(last=False)

    def _settled(self, key: GrantKey, claim: Claim) -> None:
        if self._pending.get(key) is claim:
            del self._pending[key]
