"""The password-guessing throttle: counters per (account, address), address and account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.accounts import throttle
from app.accounts.errors import TooManyAttempts
from app.accounts.models import PasswordThrottle
from app.accounts.throttle import ThrottlePolicy

pytestmark = pytest.mark.usefixtures("database")

POLICY = ThrottlePolicy()
OWNER = "user:1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)
        clock.set_clock(lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def moving_clock() -> Clock:
    return Clock()


async def fail(account: str, address: str, policy: ThrottlePolicy = POLICY) -> None:
    """One wrong password: counted, never given back."""
    await throttle.reserve(account, address, policy)


async def refused_for(account: str, address: str, policy: ThrottlePolicy = POLICY) -> int:
    """Seconds the throttle makes this attempt wait (0: it may go ahead)."""
    try:
        await throttle.reserve(account, address, policy)
    except TooManyAttempts as error:
        return error.retry_after
    return 0


async def sign_in(account: str, address: str) -> None:
    await throttle.succeeded(await throttle.reserve(account, address, POLICY))


async def test_five_failures_then_each_attempt_waits_twice_as_long(moving_clock: Clock) -> None:
    for _ in range(5):
        await fail(OWNER, "10.0.0.1")
    waits = []
    for _ in range(9):
        wait = await refused_for(OWNER, "10.0.0.1")
        assert wait > 0
        waits.append(wait)
        moving_clock.advance(wait)
        await fail(OWNER, "10.0.0.1")  # the one attempt let through after the wait
    assert waits == [10, 20, 40, 80, 160, 320, 640, 900, 900]  # capped at 15 minutes


async def test_a_success_resets_the_count_for_that_address(moving_clock: Clock) -> None:
    for _ in range(4):
        await fail(OWNER, "10.0.0.1")
    await sign_in(OWNER, "10.0.0.1")
    for _ in range(5):
        assert await refused_for(OWNER, "10.0.0.1") == 0
    assert await refused_for(OWNER, "10.0.0.1") == 10


async def test_a_flood_from_one_address_never_slows_the_owner_elsewhere(
    moving_clock: Clock,
) -> None:
    checked = 0
    while checked < 60:  # sixty wrong passwords, as fast as the backoff lets them in
        if wait := await refused_for(OWNER, "10.6.6.6"):
            moving_clock.advance(wait)
        else:
            checked += 1
    assert await refused_for(OWNER, "10.6.6.6") == 900
    # A new address, where the owner never signed in before, is not held back.
    await sign_in(OWNER, "192.0.2.10")


async def test_many_addresses_slow_new_addresses_but_not_a_known_one(
    moving_clock: Clock,
) -> None:
    await sign_in(OWNER, "192.0.2.10")  # the owner's usual place
    for attacker in range(4):  # a botnet: 4 × 5 free failures = the account's 20
        for _ in range(5):
            await fail(OWNER, f"10.0.1.{attacker}")
    assert await refused_for(OWNER, "10.0.2.1") == 10  # any new address now waits
    await sign_in(OWNER, "192.0.2.10")  # the known address does not


async def test_one_address_trying_many_accounts_is_slowed(moving_clock: Clock) -> None:
    await sign_in("user:7", "10.0.0.9")  # someone who works from behind the same address
    for number in range(30):
        await fail(f"login:victim{number}", "10.0.0.9")
    assert await refused_for("login:victim-next", "10.0.0.9") == 10
    assert await refused_for("user:7", "10.0.0.9") == 0  # known there: not held back
    assert await refused_for("login:victim-next", "10.0.0.10") == 0


async def test_counts_are_forgotten_after_an_hour_without_failures(moving_clock: Clock) -> None:
    for _ in range(5):
        await fail(OWNER, "10.0.0.1")
    assert await refused_for(OWNER, "10.0.0.1") == 10
    moving_clock.advance(3600)
    for _ in range(5):
        assert await refused_for(OWNER, "10.0.0.1") == 0


async def test_concurrent_attempts_get_exactly_the_free_ones(moving_clock: Clock) -> None:
    results = await asyncio.gather(*(refused_for(OWNER, "10.0.0.1") for _ in range(25)))
    assert results.count(0) == 5
    row = await PasswordThrottle.get(key_digest=POLICY.digest("pair", OWNER, "10.0.0.1"))
    assert row.failures == 5


async def test_ipv6_clients_are_counted_per_64_block(moving_clock: Clock) -> None:
    for host in range(5):  # every address of one /64 is one client
        await fail(OWNER, f"2001:db8:1:2::{host + 1}")
    assert await refused_for(OWNER, "2001:db8:1:2:ffff::9") == 10
    assert await refused_for(OWNER, "2001:db8:1:3::1") == 0
    assert throttle.address_bucket("::ffff:192.0.2.1") == "192.0.2.1"


async def test_rows_are_keyed_by_an_hmac_and_swept_when_expired(moving_clock: Clock) -> None:
    await fail("login:my-password-typed-as-login", "10.0.0.1")
    await sign_in(OWNER, "10.0.0.2")
    stored = " ".join(row.key_digest for row in await PasswordThrottle.all())
    assert "password" not in stored and "10.0.0" not in stored
    other_key = ThrottlePolicy(key=b"another instance secret")
    assert other_key.digest("address", "10.0.0.1") != POLICY.digest("address", "10.0.0.1")

    moving_clock.advance(2 * 3600)
    assert await throttle.sweep() == 3  # the failure's counters; the known address stays
    moving_clock.advance(31 * 86400)
    assert await throttle.sweep() == 1
    assert await PasswordThrottle.all().count() == 0
