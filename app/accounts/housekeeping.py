"""Periodic sweeping of the accounts tables, so they stay small however long Dockyard runs."""

from __future__ import annotations

import logging

from app.accounts import throttle, user_sessions

log = logging.getLogger("dockyard.accounts")

# Expired counters only cost disk space and an index entry: a sweep every ten
# minutes keeps the tables bounded by what ten minutes of traffic can create.
SWEEP_SECONDS = 600.0


async def sweep() -> None:
    counters = await throttle.sweep()
    sessions = await user_sessions.sweep()
    if counters or sessions:
        log.debug("swept %d password counters and %d ended sessions", counters, sessions)
