"""Password guessing: backoff counters in the database, shared by every process and instance.

Three counters stand in front of every password check:

- **(account, address)**: the direct guesser. Always applies; a success resets it.
- **address**: one place trying many accounts (password spraying).
- **account**: many places trying one account. A single address adds at most its
  free attempts to it, so a flood from one address never slows the owner elsewhere.

The address and account counters do not apply to a *known* address: one from
which this account's password was checked successfully in the last 30 days. So
the owner keeps signing in from where they usually do, whatever the flood.

Each counter allows `limit` failures, then every further attempt waits: 10 s,
then twice as long each time, up to the maximum delay. Counts are forgotten after
an hour without failures (or twice the maximum delay, if longer).

An attempt is counted *before* the password is checked, with a compare-and-set
on the row's version, so a burst of concurrent requests from any number of
processes gets exactly the allowed number of checks; a success gives the
attempt back. Rows are keyed by an HMAC (instance secret) of what they count,
so a login typed by mistake into the password field is never stored readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from app import clock
from app.accounts.errors import TooManyAttempts
from app.accounts.models import PasswordThrottle, User
from app.config import Settings

FIRST_DELAY = timedelta(seconds=10)
QUIET_PERIOD = timedelta(hours=1)
KNOWN_ADDRESS_PERIOD = timedelta(days=30)
# A known address's row is refreshed at most this often (a write per sign-in is waste).
KNOWN_ADDRESS_REFRESH = timedelta(hours=1)
# Compare-and-set rounds before a contended attempt is told to retry.
CAS_ROUNDS = 5


@dataclass(frozen=True)
class ThrottlePolicy:
    per_account_address: int = 5
    per_address: int = 30
    per_account: int = 20
    max_delay: timedelta = timedelta(minutes=15)
    key: bytes = field(default=b"dockyard-password-throttle", repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            per_account_address=settings.password_throttle_per_account_address,
            per_address=settings.password_throttle_per_address,
            per_account=settings.password_throttle_per_account,
            max_delay=timedelta(seconds=settings.password_throttle_max_delay_seconds),
            key=hmac.new(
                settings.secret_key.encode(), b"dockyard-password-throttle", hashlib.sha256
            ).digest(),
        )

    @property
    def quiet_period(self) -> timedelta:
        return max(QUIET_PERIOD, 2 * self.max_delay)

    def delay(self, failures: int, limit: int) -> timedelta:
        """How long the next attempt waits after `failures` failures on a counter."""
        if failures < limit:
            return timedelta(0)
        doublings = min(failures - limit, 30)
        return min(self.max_delay, FIRST_DELAY * 2**doublings)

    def digest(self, *parts: str) -> str:
        return hmac.new(self.key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def account_key(user: User | None, login: str) -> str:
    """A username and an email of one user are one account; an unknown login is its own
    key and is counted exactly like a real one, so the throttle tells nothing about
    which accounts exist."""
    return f"user:{user.id}" if user is not None else f"login:{login.strip().lower()}"


def address_bucket(address: str) -> str:
    """IPv6 clients are counted per /64, the block one subscriber usually gets."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class _Counted:
    row_id: int
    version: int  # the version this attempt wrote
    failures: int
    # The row's values before this attempt, to give it back; None: this attempt created it.
    previous: dict[str, object] | None


@dataclass(frozen=True)
class Reservation:
    """One counted attempt; `succeeded` gives it back when the password was right."""

    policy: ThrottlePolicy
    known_key: str
    known_row: PasswordThrottle | None
    pair: _Counted
    refundable: tuple[_Counted, ...]


def _wait(rows: list[PasswordThrottle | None], now: datetime) -> None:
    waits = [
        row.next_attempt_at - now
        for row in rows
        if row is not None and row.next_attempt_at is not None and row.next_attempt_at > now
    ]
    if waits:
        raise TooManyAttempts(math.ceil(max(waits).total_seconds()))


async def reserve(account: str, address: str, policy: ThrottlePolicy) -> Reservation:
    """Count one attempt on every counter that applies, or raise TooManyAttempts.

    Call before checking the password; call `succeeded` when it was right.
    """
    now = clock.now()
    bucket = address_bucket(address)
    pair_key = policy.digest("pair", account, bucket)
    address_key = policy.digest("address", bucket)
    whole_account_key = policy.digest("account", account)
    known_key = policy.digest("known", account, bucket)
    found = await PasswordThrottle.filter(
        key_digest__in=[pair_key, address_key, whole_account_key, known_key]
    )
    rows: dict[str, PasswordThrottle] = {row.key_digest: row for row in found}
    known_row = rows.get(known_key)
    known = (
        known_row is not None
        and known_row.last_success_at is not None
        and now - known_row.last_success_at < KNOWN_ADDRESS_PERIOD
    )
    counters = [(pair_key, policy.per_account_address)]
    if not known:
        counters += [(address_key, policy.per_address), (whole_account_key, policy.per_account)]
    _wait([rows.get(key) for key, _ in counters], now)

    pair = await _count(pair_key, rows.get(pair_key), policy.per_account_address, policy, now)
    refundable: list[_Counted] = []
    if not known:
        refundable.append(
            await _count(address_key, rows.get(address_key), policy.per_address, policy, now)
        )
        if pair.failures <= policy.per_account_address:
            refundable.append(
                await _count(
                    whole_account_key, rows.get(whole_account_key), policy.per_account, policy, now
                )
            )
    return Reservation(policy, known_key, known_row, pair, tuple(refundable))


async def _count(
    key: str, row: PasswordThrottle | None, limit: int, policy: ThrottlePolicy, now: datetime
) -> _Counted:
    for _ in range(CAS_ROUNDS):
        if row is None:
            delay = policy.delay(1, limit)
            try:
                created = await PasswordThrottle.create(
                    key_digest=key,
                    failures=1,
                    last_failure_at=now,
                    next_attempt_at=now + delay if delay else None,
                    expires_at=now + policy.quiet_period + delay,
                    version=1,
                )
            except IntegrityError:  # another process created it first: count on that row
                row = await PasswordThrottle.get_or_none(key_digest=key)
                continue
            return _Counted(created.id, 1, 1, None)
        _wait([row], now)
        fresh = row.last_failure_at is not None and now - row.last_failure_at < policy.quiet_period
        failures = (row.failures if fresh else 0) + 1
        delay = policy.delay(failures, limit)
        previous: dict[str, object] = {
            "failures": row.failures,
            "last_failure_at": row.last_failure_at,
            "next_attempt_at": row.next_attempt_at,
            "expires_at": row.expires_at,
        }
        updated = await PasswordThrottle.filter(id=row.id, version=row.version).update(
            failures=failures,
            last_failure_at=now,
            next_attempt_at=now + delay if delay else None,
            expires_at=now + policy.quiet_period + delay,
            version=row.version + 1,
        )
        if updated:
            return _Counted(row.id, row.version + 1, failures, previous)
        row = await PasswordThrottle.get_or_none(key_digest=key)
    # Heavy contention on one counter is itself a flood: the client tries again later.
    raise TooManyAttempts(1)


async def succeeded(reservation: Reservation) -> None:
    """The password was right: reset the (account, address) counter, give the attempt
    back to the others (unless they moved on meanwhile), remember the address."""
    now = clock.now()
    await PasswordThrottle.filter(id=reservation.pair.row_id).delete()
    for counted in reservation.refundable:
        mine = PasswordThrottle.filter(id=counted.row_id, version=counted.version)
        if counted.previous is None:
            await mine.delete()
        else:
            await mine.update(**counted.previous, version=counted.version + 1)
    known = reservation.known_row
    expires_at = now + KNOWN_ADDRESS_PERIOD
    if known is None:
        with contextlib.suppress(IntegrityError):  # a concurrent success recorded it
            await PasswordThrottle.create(
                key_digest=reservation.known_key, last_success_at=now, expires_at=expires_at
            )
    elif known.last_success_at is None or now - known.last_success_at >= KNOWN_ADDRESS_REFRESH:
        await PasswordThrottle.filter(id=known.id).update(
            last_success_at=now, expires_at=expires_at
        )


async def sweep(now: datetime | None = None) -> int:
    """Delete expired counters and known addresses; returns how many."""
    return await PasswordThrottle.filter(expires_at__lt=now or clock.now()).delete()
