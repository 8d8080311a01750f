"""Download leases in PostgreSQL: which instance fetches a digest from the upstream.

A lease is a row (`DownloadLease`, table `dependency_proxy_download_leases`):
the digest, the holder (one process), the address its instance serves the
growing spool at, and an expiry the holder pushes forward every few seconds.
Taking a lease is one statement: insert, or take over a row whose expiry has
passed (its holder died or lost the database), so two instances can never both
win. Expiries are computed by PostgreSQL's clock: the instances' clocks never
need to agree.

Why a row and not `pg_advisory_lock`: an advisory lock lives as long as one
database session, so each download would pin a pooled connection for minutes
(and a transaction-pooling pgbouncer hands sessions around, silently dropping
such locks); and other instances need more than "taken": the holder's address,
for followers to stream from, and which digests are in flight, for cleanup and
the sweep of incomplete uploads. A row says all of that to anyone who looks.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Collection
from dataclasses import dataclass

from app.dependency_proxy import sql

log = logging.getLogger("dockyard.downloads.leases")

TABLE = "dependency_proxy_download_leases"


@dataclass(frozen=True)
class Holder:
    """Another process holds the lease: stream from `address`."""

    holder: str
    address: str


@dataclass(frozen=True)
class Acquired:
    """This process holds the lease; `took_over` when a dead holder's row was replaced."""

    took_over: bool


def process_name() -> str:
    """This process's name in lease rows: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class PostgresLeases:
    """Take, renew, release and list download leases (PostgreSQL only)."""

    def __init__(self, address: str, lease_seconds: float, holder: str | None = None) -> None:
        self.address = address
        self.lease_seconds = lease_seconds
        self.holder = holder or process_name()

    async def acquire(self, digest: str) -> Acquired | Holder | None:
        """Take the digest's lease, or say who holds it; None if it was released
        between the two looks (ask again)."""
        rows = await sql.fetch(
            f"INSERT INTO {TABLE} AS lease (digest, holder, address, acquired_at, expires_at)"
            " VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4))"
            " ON CONFLICT (digest) DO UPDATE SET holder = excluded.holder,"
            " address = excluded.address, acquired_at = excluded.acquired_at,"
            " expires_at = excluded.expires_at"
            # Our own row too: one this process failed to release (a database
            # hiccup); it must never make us follow ourselves.
            " WHERE lease.expires_at < now() OR lease.holder = excluded.holder"
            # xmax is set on a row that replaced another: a takeover, not a fresh insert.
            " RETURNING (xmax <> 0) AS took_over",
            digest,
            self.holder,
            self.address,
            self.lease_seconds,
        )
        if rows:
            return Acquired(took_over=bool(rows[0]["took_over"]))
        current = await sql.fetch(
            f"SELECT holder, address FROM {TABLE} WHERE digest = $1 AND expires_at >= now()",
            digest,
        )
        if not current:
            return None
        return Holder(holder=str(current[0]["holder"]), address=str(current[0]["address"]))

    async def renew(self, digest: str) -> bool:
        """Push the expiry forward; False if the lease was lost (taken over)."""
        rows = await sql.fetch(
            f"UPDATE {TABLE} SET expires_at = now() + make_interval(secs => $3)"
            " WHERE digest = $1 AND holder = $2 RETURNING 1",
            digest,
            self.holder,
            self.lease_seconds,
        )
        return bool(rows)

    async def release(self, digest: str) -> None:
        await sql.execute(
            f"DELETE FROM {TABLE} WHERE digest = $1 AND holder = $2", digest, self.holder
        )

    async def leased(self, digests: Collection[str]) -> set[str]:
        """Which of `digests` some live process is downloading now (any instance)."""
        found: set[str] = set()
        wanted = sorted(digests)
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            rows = await sql.fetch(
                f"SELECT digest FROM {TABLE}"
                f" WHERE digest IN ({sql.in_list(part, 1)}) AND expires_at >= now()",
                *part,
            )
            found.update(str(row["digest"]) for row in rows)
        return found
