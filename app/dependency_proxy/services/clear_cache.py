"""Clear a group's cache: mark every manifest and blob row pending destruction.

Marking instead of deleting keeps this safe while pulls run: the pull path
only uses rows in the DEFAULT status and creates a fresh row next to a
marked one, and the cleanup worker deletes a file only when no row in any
group references it and no download of it is in flight. The marking itself
goes in chunks of short transactions (`clearing.py`), so a clear of 100k
rows never holds the database for more than a moment.

Scripts and the CLI wait for the whole clear and get its counts; a page or
the REST purge hands the rest of a large clear to `background` and answers
at once, while the page shows its progress.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy import clearing
from app.groups.models import Group
from app.groups.policy import require_administer

log = logging.getLogger("dockyard.cleanup")

# A page marks this many chunks before answering: a small cache is cleared
# by the time the page reloads; a large one goes on in the background.
STEPS_BEFORE_ANSWERING = 2

Spawn = Callable[[Awaitable[None], str], None]


@dataclass(frozen=True)
class ClearCacheResult:
    manifests_marked: int
    blobs_marked: int
    total_count: int  # what the clear marks in all (an estimate while it runs)
    finished: bool


def _result(progress: clearing.ClearProgress) -> ClearCacheResult:
    return ClearCacheResult(
        manifests_marked=progress.manifests_marked,
        blobs_marked=progress.blobs_marked,
        total_count=progress.total_count,
        finished=not progress.running,
    )


async def clear_cache(
    principal: Principal, group: Group, *, background: Spawn | None = None
) -> ClearCacheResult:
    """Owner only; idempotent (a second call marks nothing).

    Without `background` the call returns when every row is marked. With it,
    the call marks a few chunks, passes the rest to `background(work, name)`
    and returns the progress so far.
    """
    await require_administer(principal, group, "clear its cache")
    clear, leased = await clearing.begin(group.id)
    if background is None:
        return _result(await clearing.wait_or_run(clear, leased))
    if leased and not await clearing.run(clear, steps=STEPS_BEFORE_ANSWERING):

        async def rest() -> None:
            try:
                await clearing.run(clear)
            except Exception:  # its lease runs out and the cleanup worker takes over
                log.exception("clearing the cache of %s stopped", group.full_path)

        background(rest(), f"clearing the cache of {group.full_path}")
    return _result(clearing.ClearProgress.of(clear))
