"""The instance's cache at a glance, for administrators (`/admin/usage`).

The groups whose caches are largest (from the totals the database keeps), the
images pulled most in the last `TOP_IMAGES_DAYS` days (pulls per image and day,
`usage.py`), the largest cached images, and the disk of the data folder.

The largest images are read from the manifest rows ordered by size: a walk of
the live manifests (no index on the size), acceptable for an admin page opened
now and then, never for a hot path.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.accounts.policy import require_admin_reader
from app.accounts.principal import Principal
from app.dependency_proxy import sql
from app.dependency_proxy.models import CacheStatus
from app.dependency_proxy.usage import DAY, day_of
from app.groups.models import Group
from app.instance.services import disk_budget

TOP = 10
TOP_IMAGES_DAYS = 30


@dataclass(frozen=True)
class GroupSize:
    full_path: str
    image_count: int
    size_bytes: int


@dataclass(frozen=True)
class ImagePulls:
    full_path: str
    image: str
    pulls: int
    hits: int


@dataclass(frozen=True)
class ImageSize:
    full_path: str
    name: str  # image:tag or image@digest
    size_bytes: int


@dataclass(frozen=True)
class DiskUse:
    path: str
    total_bytes: int
    used_bytes: int
    free_bytes: int

    @property
    def used_ratio(self) -> float:
        """As `df` counts it: blocks reserved for root are neither used nor free to us."""
        usable = self.used_bytes + self.free_bytes
        return self.used_bytes / usable if usable else 0.0


@dataclass(frozen=True)
class InstanceUsage:
    groups_by_size: tuple[GroupSize, ...]
    images_by_pulls: tuple[ImagePulls, ...]
    images_by_size: tuple[ImageSize, ...]
    cached_bytes: int  # every group's cache, shared bytes counted per group (as GitLab's sizes)
    disk: DiskUse | None  # None when the data folder cannot be measured
    budget_bytes: int = 0  # the instance's disk budget (0: none), the admin's or the default

    @property
    def budget_ratio(self) -> float:
        return self.cached_bytes / self.budget_bytes if self.budget_bytes else 0.0


async def _paths(group_ids: set[int]) -> dict[int, str]:
    if not group_ids:
        return {}
    rows = await Group.filter(id__in=group_ids).values("id", "full_path")
    return {row["id"]: row["full_path"] for row in rows}


async def _groups_by_size() -> tuple[list[tuple[int, int, int]], int]:
    rows = await sql.fetch(
        "SELECT group_id, manifest_count, manifest_bytes + blob_bytes AS size"
        " FROM dependency_proxy_group_totals ORDER BY size DESC, group_id LIMIT $1",
        TOP,
    )
    total = await sql.fetch(
        "SELECT COALESCE(SUM(manifest_bytes + blob_bytes), 0) AS size"
        " FROM dependency_proxy_group_totals"
    )
    found = [(row["group_id"], int(row["manifest_count"]), int(row["size"])) for row in rows]
    return found, int(total[0]["size"])


async def _images_by_pulls(now: datetime) -> list[dict[str, object]]:
    since = day_of(int(now.timestamp())) - (TOP_IMAGES_DAYS - 1) * DAY
    return await sql.fetch(
        "SELECT group_id, image_name, SUM(pulls) AS pulls, SUM(hits) AS hits"
        " FROM dependency_proxy_image_usage WHERE starts_at >= $1"
        " GROUP BY group_id, image_name ORDER BY pulls DESC, image_name LIMIT $2",
        since,
        TOP,
    )


async def _images_by_size() -> list[dict[str, object]]:
    return await sql.fetch(
        "SELECT group_id, image_name, reference, image_size FROM dependency_proxy_manifests"
        " WHERE status = $1 AND image_size IS NOT NULL ORDER BY image_size DESC, id LIMIT $2",
        int(CacheStatus.DEFAULT),
        TOP,
    )


def _disk_use(path: Path) -> DiskUse | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return DiskUse(str(path), usage.total, usage.used, usage.free)


def _name(image: str, reference: str) -> str:
    return f"{image}{'@' if reference.startswith('sha256:') else ':'}{reference}"


async def get_instance_usage(
    principal: Principal, data_dir: Path, now: datetime, default_budget: int = 0
) -> InstanceUsage:
    """Administrators only (PermissionDenied otherwise). `default_budget`:
    DOCKYARD_DISK_BUDGET, which an admin's budget overrides."""
    require_admin_reader(principal, "see the instance's usage")
    groups, cached_bytes = await _groups_by_size()
    pulled = await _images_by_pulls(now)
    largest = await _images_by_size()
    ids = {row[0] for row in groups} | {int(str(row["group_id"])) for row in pulled + largest}
    paths = await _paths(ids)
    return InstanceUsage(
        groups_by_size=tuple(
            GroupSize(paths.get(group_id, "?"), count, size) for group_id, count, size in groups
        ),
        images_by_pulls=tuple(
            ImagePulls(
                paths.get(int(str(row["group_id"])), "?"),
                str(row["image_name"]),
                int(str(row["pulls"])),
                int(str(row["hits"])),
            )
            for row in pulled
        ),
        images_by_size=tuple(
            ImageSize(
                paths.get(int(str(row["group_id"])), "?"),
                _name(str(row["image_name"]), str(row["reference"])),
                int(str(row["image_size"])),
            )
            for row in largest
        ),
        cached_bytes=cached_bytes,
        disk=await asyncio.to_thread(_disk_use, data_dir),
        budget_bytes=await disk_budget(default_budget),
    )
