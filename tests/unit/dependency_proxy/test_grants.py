"""BlobGrants: nothing is granted before the upstream answered, and only for its key."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from app.dependency_proxy.credentials import fingerprint
from app.dependency_proxy.errors import BlobUnknown, UpstreamDenied, UpstreamUnavailable
from app.dependency_proxy.grants import BlobGrants, GrantKey

HUB = "https://registry-1.docker.io"
KEY = GrantKey(
    group_id=1,
    credentials=fingerprint("instance-secret", "alice", "right", HUB),
    repository="https://registry-1.docker.io/private/app",
    digest="sha256:" + "a" * 64,
)


class Upstream:
    """Answers checks as told, counting them; `gate` holds every answer back."""

    def __init__(self, answer: Exception | None = None) -> None:
        self.answer = answer
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def head(self) -> int:
        self.calls += 1
        await self.gate.wait()
        if self.answer is not None:
            raise self.answer
        return 42


async def test_a_key_is_held_only_after_its_check_answered() -> None:
    grants, upstream = BlobGrants(), Upstream()
    upstream.gate.clear()
    checking = asyncio.create_task(grants.confirm(KEY, upstream.head))
    await asyncio.sleep(0)
    assert upstream.calls == 1 and grants.checking(KEY) and not grants.holds(KEY)

    upstream.gate.set()
    await checking
    assert grants.holds(KEY) and not grants.checking(KEY)


@pytest.mark.parametrize(
    "refusal",
    [UpstreamDenied("refused"), BlobUnknown("unknown"), UpstreamUnavailable("down")],
    ids=lambda error: type(error).__name__,
)
async def test_a_failed_check_leaves_nothing_behind(refusal: Exception) -> None:
    grants = BlobGrants()
    with pytest.raises(type(refusal)):
        await grants.confirm(KEY, Upstream(refusal).head)
    assert not grants.holds(KEY) and not grants.checking(KEY)


async def test_a_refusal_revokes_an_earlier_grant() -> None:
    grants = BlobGrants()
    await grants.confirm(KEY, Upstream().head)
    with pytest.raises(UpstreamDenied):
        await grants.check(KEY, Upstream(UpstreamDenied("refused now")).head)
    assert not grants.holds(KEY)


async def test_a_grant_is_scoped_to_group_credentials_repository_and_digest() -> None:
    grants = BlobGrants()
    await grants.confirm(KEY, Upstream().head)
    others = [
        replace(KEY, group_id=2),
        replace(KEY, credentials=fingerprint("instance-secret", "alice", "wrong", HUB)),
        replace(KEY, credentials=""),  # the same group after its credentials were removed
        replace(KEY, repository="https://registry-1.docker.io/private/other"),
        replace(KEY, digest="sha256:" + "b" * 64),
    ]
    assert grants.holds(KEY)
    assert not any(grants.holds(other) for other in others)


async def test_a_crowd_of_one_key_is_checked_once_and_shares_the_answer() -> None:
    grants, upstream = BlobGrants(), Upstream()
    upstream.gate.clear()
    crowd = [asyncio.create_task(grants.confirm(KEY, upstream.head)) for _ in range(10)]
    await asyncio.sleep(0)
    upstream.gate.set()
    await asyncio.gather(*crowd)
    assert upstream.calls == 1 and grants.holds(KEY)


async def test_a_crowd_of_one_key_shares_a_refusal() -> None:
    grants, upstream = BlobGrants(), Upstream(UpstreamDenied("refused"))
    upstream.gate.clear()
    crowd = [asyncio.create_task(grants.confirm(KEY, upstream.head)) for _ in range(5)]
    await asyncio.sleep(0)
    upstream.gate.set()
    results = await asyncio.gather(*crowd, return_exceptions=True)
    assert upstream.calls == 1
    assert all(isinstance(result, UpstreamDenied) for result in results)
    assert not grants.holds(KEY)


async def test_waiters_on_an_abandoned_claim_ask_the_upstream_themselves() -> None:
    grants, upstream = BlobGrants(), Upstream()
    claim = grants.claim(KEY)  # a GET that will never be sent
    waiter = asyncio.create_task(grants.confirm(KEY, upstream.head))
    await asyncio.sleep(0)
    assert upstream.calls == 0  # waits for the claim's answer first

    claim.abandon()
    await waiter
    assert upstream.calls == 1 and grants.holds(KEY)


async def test_a_cancelled_check_grants_nothing_and_frees_its_waiters() -> None:
    grants, upstream = BlobGrants(), Upstream()
    upstream.gate.clear()
    first = asyncio.create_task(grants.confirm(KEY, upstream.head))
    await asyncio.sleep(0)
    second = asyncio.create_task(grants.confirm(KEY, upstream.head))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not grants.holds(KEY)
    upstream.gate.set()
    await second
    assert upstream.calls == 2 and grants.holds(KEY)


async def test_grants_are_bounded_in_number_and_age() -> None:
    few = BlobGrants(max_entries=2)
    keys = [replace(KEY, group_id=n) for n in range(3)]
    for key in keys:
        await few.confirm(key, Upstream().head)
    assert [few.holds(key) for key in keys] == [False, True, True]

    expired = BlobGrants(max_age=0.0)
    await expired.confirm(KEY, Upstream().head)
    assert not expired.holds(KEY)


def test_fingerprints_differ_by_secret_identity_upstream_and_instance_and_hide_the_secret() -> None:
    base = fingerprint("instance-secret", "alice", "right", HUB)
    assert base == fingerprint("instance-secret", "alice", "right", HUB)
    assert base != fingerprint("instance-secret", "alice", "wrong", HUB)
    assert base != fingerprint("instance-secret", "bob", "right", HUB)
    assert base != fingerprint("another-instance", "alice", "right", HUB)
    # The same account on another registry is other credentials.
    assert base != fingerprint("instance-secret", "alice", "right", "https://ghcr.io")
    # Where identity ends and secret begins is part of what is hashed.
    assert fingerprint("k", "ab", "c", HUB) != fingerprint("k", "a", "bc", HUB)
    assert "right" not in base and len(base) == 64
