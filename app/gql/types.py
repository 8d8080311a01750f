"""GraphQL object types, named and shaped as GitLab's so GitLab scripts work unchanged.

Fields GitLab lacks are Dockyard's own additions (documented in docs/graphql.md);
none renames a GitLab field.
"""

from __future__ import annotations

from collections.abc import Awaitable
from enum import Enum
from typing import Annotated, TypeVar

import strawberry
from graphql import GraphQLError

from app.dependency_proxy.models import Blob, CacheStatus, GroupSetting, ImageTtlGroupPolicy
from app.dependency_proxy.models import Manifest as ManifestModel
from app.dependency_proxy.services import group_cache
from app.dependency_proxy.services.group_cache import CacheSummary
from app.errors import DockyardError
from app.gql.cache_clear import DependencyProxyCacheClear
from app.gql.connections import Connection, connection
from app.gql.context import Info
from app.gql.scalars import BigInt, DependencyProxyManifestID, Time, global_id, human_size
from app.gql.upstreams import DependencyProxyUpstream, upstreams_of
from app.gql.usage import DependencyProxyUsage, UsagePeriod, usage_of
from app.gql.users import AccessLevelType, GroupAccessToken, UserCore
from app.gql.warm_jobs import DependencyProxyWarmJob, warm_jobs_of
from app.groups import access_tokens
from app.groups import services as groups
from app.groups.models import Group as GroupModel
from app.groups.services import MemberView

GRAPHQL_INT_MAX = 2**31 - 1

T = TypeVar("T")


@strawberry.enum(name="DependencyProxyManifestStatus")
class ManifestStatus(Enum):
    DEFAULT = "DEFAULT"
    PENDING_DESTRUCTION = "PENDING_DESTRUCTION"
    PROCESSING = "PROCESSING"
    ERROR = "ERROR"

    @classmethod
    def of(cls, status: int) -> ManifestStatus:
        return cls[CacheStatus(status).name]


@strawberry.type(name="DependencyProxyManifest")
class DependencyProxyManifest:
    model: strawberry.Private[ManifestModel]

    @strawberry.field
    def id(self) -> DependencyProxyManifestID:
        return DependencyProxyManifestID(global_id("DependencyProxy::Manifest", self.model.id))

    @strawberry.field
    def created_at(self) -> Time:
        return Time(self.model.created_at)

    @strawberry.field
    def updated_at(self) -> Time:
        return Time(self.model.updated_at)

    @strawberry.field
    def digest(self) -> str:
        return self.model.digest

    @strawberry.field
    def file_name(self) -> str:
        return self.model.file_name

    @strawberry.field(description="Name of the image, with its tag or digest (`alpine:latest`).")
    def image_name(self) -> str:
        return self.model.file_name.removesuffix(".json")

    @strawberry.field(description="Size of the manifest file, in bytes.")
    def size(self) -> str:
        return str(self.model.size)

    @strawberry.field
    def status(self) -> ManifestStatus:
        return ManifestStatus.of(self.model.status)

    @strawberry.field(description="Dockyard: when the manifest was last pulled.")
    def last_pulled_at(self) -> Time:
        return Time(self.model.read_at)

    @strawberry.field(description="Dockyard: the manifest's media type.")
    def content_type(self) -> str:
        return self.model.content_type

    @strawberry.field(description="Dockyard: pinned by an Owner; the TTL policy never expires it.")
    def pinned(self) -> bool:
        return bool(self.model.pinned)


@strawberry.type(name="DependencyProxyBlob")
class DependencyProxyBlob:
    model: strawberry.Private[Blob]

    @strawberry.field
    def created_at(self) -> Time:
        return Time(self.model.created_at)

    @strawberry.field
    def updated_at(self) -> Time:
        return Time(self.model.updated_at)

    @strawberry.field
    def file_name(self) -> str:
        return self.model.file_name

    @strawberry.field(description="Size of the blob file, in bytes.")
    def size(self) -> str:
        return str(self.model.size)

    @strawberry.field(description="Dockyard: the blob's digest.")
    def digest(self) -> str:
        return self.model.digest

    @strawberry.field(description="Dockyard: when the blob was last pulled.")
    def last_pulled_at(self) -> Time:
        return Time(self.model.read_at)


@strawberry.type(name="DependencyProxySetting")
class DependencyProxySetting:
    enabled: bool
    identity: str | None
    revalidation_interval: int = strawberry.field(
        description="Dockyard: seconds a cached tag is served without asking the upstream."
    )
    size_limit_bytes: BigInt | None = strawberry.field(
        default=None,
        description="Dockyard: the most the group's cache may hold, in bytes; over it the "
        "least recently pulled images are evicted. Null: no limit.",
    )

    @classmethod
    def of_row(cls, setting: GroupSetting, identity: str | None) -> DependencyProxySetting:
        return cls(
            enabled=setting.enabled,
            identity=identity,
            revalidation_interval=setting.revalidation_interval,
            size_limit_bytes=setting.size_limit_bytes,
        )

    @classmethod
    def of(cls, summary: CacheSummary) -> DependencyProxySetting:
        return cls(
            enabled=summary.enabled,
            identity=summary.identity,
            revalidation_interval=summary.revalidation_interval,
            size_limit_bytes=(
                BigInt(summary.size_limit_bytes) if summary.size_limit_bytes is not None else None
            ),
        )


@strawberry.type(name="DependencyProxyImageTtlGroupPolicy")
class DependencyProxyImageTtlGroupPolicy:
    created_at: Time | None
    enabled: bool
    ttl: int | None
    updated_at: Time | None

    @classmethod
    def of(cls, row: ImageTtlGroupPolicy) -> DependencyProxyImageTtlGroupPolicy:
        saved = row.id is not None  # an unsaved row carries the defaults, no timestamps
        return cls(
            created_at=Time(row.created_at) if saved else None,
            enabled=row.enabled,
            ttl=row.ttl,
            updated_at=Time(row.updated_at) if saved else None,
        )


@strawberry.type(description="Dockyard: how well the group's cache works.")
class DependencyProxyStatistics:
    manifest_hits: int
    manifest_misses: int
    blob_hits: int
    blob_misses: int
    hit_ratio: float | None
    bytes_from_cache: BigInt
    bytes_from_upstream: BigInt
    pending_destruction_count: int


@strawberry.type(description="Dockyard: the upstream's last rate-limit headers.")
class DependencyProxyUpstreamRateLimit:
    limit: int | None
    remaining: int | None


@strawberry.type(name="GroupMember")
class GroupMember:
    view: strawberry.Private[MemberView]

    @strawberry.field
    def user(self) -> UserCore:
        return UserCore(model=self.view.user)

    @strawberry.field
    def access_level(self) -> AccessLevelType:
        return AccessLevelType.of(self.view.access_level)

    @strawberry.field(description="Dockyard: granted by an ancestor group.")
    def inherited(self) -> bool:
        return self.view.inherited


@strawberry.type(name="Group")
class Group:
    model: strawberry.Private[GroupModel]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_id("Group", self.model.id))

    @strawberry.field
    def name(self) -> str:
        return self.model.name

    @strawberry.field
    def path(self) -> str:
        return self.model.path

    @strawberry.field
    def full_path(self) -> strawberry.ID:
        return strawberry.ID(self.model.full_path)

    @strawberry.field
    def description(self) -> str:
        return self.model.description

    async def _summary(self, info: Info) -> CacheSummary:
        return await info.context.loaders.summary_of(self.model)

    @strawberry.field
    async def dependency_proxy_setting(self, info: Info) -> DependencyProxySetting | None:
        summary = await self._summary(info)
        if not summary.can_administer:  # GitLab: authorize :admin_dependency_proxy
            return None
        return DependencyProxySetting.of(summary)

    @strawberry.field(
        description="Dockyard: the upstream registries the group's pulls use, in order "
        "(its own, inherited, or the default); null unless you are an Owner."
    )
    async def dependency_proxy_upstreams(self, info: Info) -> list[DependencyProxyUpstream] | None:
        return await upstreams_of(info, self.model)

    @strawberry.field
    async def dependency_proxy_image_ttl_policy(
        self, info: Info
    ) -> DependencyProxyImageTtlGroupPolicy | None:
        row = await group_cache.get_image_ttl_policy(info.context.viewer, self.model)
        return DependencyProxyImageTtlGroupPolicy.of(row) if row is not None else None

    @strawberry.field
    async def dependency_proxy_image_prefix(self, info: Info) -> str:
        return (await self._summary(info)).image_prefix

    @strawberry.field
    async def dependency_proxy_image_count(self, info: Info) -> int:
        return (await self._summary(info)).image_count

    @strawberry.field
    async def dependency_proxy_blob_count(self, info: Info) -> int:
        return (await self._summary(info)).blob_count

    @strawberry.field(description="Total size of the cached files, human-readable (`1.18 MB`).")
    async def dependency_proxy_total_size(self, info: Info) -> str:
        return human_size((await self._summary(info)).total_size_bytes)

    @strawberry.field
    async def dependency_proxy_total_size_bytes(self, info: Info) -> BigInt:
        return BigInt((await self._summary(info)).total_size_bytes)

    @strawberry.field(
        deprecation_reason="Use `dependencyProxyTotalSizeBytes`. Deprecated in GitLab 16.1."
    )
    async def dependency_proxy_total_size_in_bytes(self, info: Info) -> int:
        # GraphQL's Int is 32 bits: clamp rather than fail the whole query.
        return min((await self._summary(info)).total_size_bytes, GRAPHQL_INT_MAX)

    @strawberry.field
    async def dependency_proxy_manifests(
        self,
        info: Info,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[DependencyProxyManifest] | None:
        page = await field_errors(
            group_cache.list_manifests(
                info.context.viewer, self.model, first=first, after=after, last=last, before=before
            )
        )
        return connection(page, DependencyProxyManifest)

    @strawberry.field
    async def dependency_proxy_blobs(
        self,
        info: Info,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[DependencyProxyBlob] | None:
        page = await field_errors(
            group_cache.list_blobs(
                info.context.viewer, self.model, first=first, after=after, last=last, before=before
            )
        )
        return connection(page, DependencyProxyBlob)

    @strawberry.field
    async def dependency_proxy_statistics(self, info: Info) -> DependencyProxyStatistics:
        summary = await self._summary(info)
        return DependencyProxyStatistics(
            manifest_hits=summary.manifest_hits,
            manifest_misses=summary.manifest_misses,
            blob_hits=summary.blob_hits,
            blob_misses=summary.blob_misses,
            hit_ratio=summary.hit_ratio,
            bytes_from_cache=BigInt(summary.bytes_from_cache),
            bytes_from_upstream=BigInt(summary.bytes_from_upstream),
            pending_destruction_count=summary.pending_destruction_count,
        )

    @strawberry.field(description="Dockyard: the latest cache clear (null if never cleared).")
    async def dependency_proxy_cache_clear(self, info: Info) -> DependencyProxyCacheClear | None:
        progress = (await self._summary(info)).last_clear
        return DependencyProxyCacheClear.of(progress) if progress is not None else None

    @strawberry.field(description="Dockyard: the newest pre-warm jobs, or the one `id` names.")
    async def dependency_proxy_warm_jobs(
        self, info: Info, first: int = 20, id: strawberry.ID | None = None
    ) -> list[DependencyProxyWarmJob]:
        return await field_errors(warm_jobs_of(info.context.viewer, self.model, first, id))

    @strawberry.field
    async def dependency_proxy_upstream_rate_limit(
        self, info: Info
    ) -> DependencyProxyUpstreamRateLimit | None:
        summary = await self._summary(info)
        if summary.rate_limit_limit is None and summary.rate_limit_remaining is None:
            return None
        return DependencyProxyUpstreamRateLimit(
            limit=summary.rate_limit_limit, remaining=summary.rate_limit_remaining
        )

    @strawberry.field(
        description="Dockyard: pulls, hits, misses, bytes and upstream requests per hour "
        "or day (UTC). Default range: the last 24 hours (HOURLY) or 30 days (DAILY), the "
        "current one included; `from` is rounded down and `to` (exclusive) up to whole periods."
    )
    async def dependency_proxy_usage(
        self,
        info: Info,
        period: UsagePeriod = UsagePeriod.HOURLY,
        from_: Annotated[Time | None, strawberry.argument(name="from")] = None,
        to: Time | None = None,
    ) -> DependencyProxyUsage | None:
        return await field_errors(usage_of(info, self.model, period, from_, to))

    @strawberry.field(description="Direct and inherited members, with their effective level.")
    async def group_members(
        self,
        info: Info,
        search: str | None = None,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[GroupMember]:
        page = await field_errors(
            groups.members_page(
                info.context.viewer,
                self.model,
                search,
                first=first,
                after=after,
                last=last,
                before=before,
            )
        )
        return connection(page, lambda model: GroupMember(view=model))

    @strawberry.field(description="Dockyard: the group's access tokens (Owners; else null).")
    async def access_tokens(
        self,
        info: Info,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[GroupAccessToken] | None:
        if not await groups.may_administer(info.context.viewer, self.model):
            return None
        page = await field_errors(
            access_tokens.group_access_tokens_page(
                info.context.viewer, self.model, first=first, after=after, last=last, before=before
            )
        )
        return connection(page, lambda model: GroupAccessToken.of(model))


async def field_errors(work: Awaitable[T]) -> T:
    """Invalid arguments (a bad cursor, first and last together) become a field error."""
    try:
        return await work
    except DockyardError as error:
        raise GraphQLError(error.message) from None
