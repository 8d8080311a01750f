"""Per-request DataLoaders: each group's cache summary is computed once per request,
however many of its fields (count, size, statistics...) a query asks for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.dependency_proxy.services.group_cache import CacheSummary, get_cache_summary
from app.groups.models import Group

if TYPE_CHECKING:
    from app.gql.context import Context


class Loaders:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._groups: dict[int, Group] = {}
        self.cache_summary: DataLoader[int, CacheSummary] = DataLoader(self._load_summaries)

    async def summary_of(self, group: Group) -> CacheSummary:
        self._groups[group.id] = group
        return await self.cache_summary.load(group.id)

    async def _load_summaries(self, group_ids: Sequence[int]) -> list[CacheSummary]:
        context = self._context
        runtime = context.runtime
        statistics = runtime.statistics if runtime is not None else None
        rate_limit = getattr(runtime.upstream, "rate_limit", None) if runtime else None
        return [
            await get_cache_summary(
                context.viewer,
                self._groups[group_id],
                statistics,
                context.settings,
                rate_limit=rate_limit,
            )
            for group_id in group_ids
        ]
