"""The groups domain's records: groups and memberships created, found and changed
*without* asking who wants it.

Only the domain's checked services (`services`, `deploy_tokens`,
`access_tokens`), other domains' services and test fixtures call these;
surfaces and the CLI go through the checked services with their principal
(the architecture contracts forbid surfaces to import this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.accounts.models import User, UserState, UserType
from app.errors import AlreadyExists, InvalidInput, NotFound
from app.groups.models import AccessLevel, Group, Membership, Visibility
from app.groups.paths import full_path_error, full_path_key
from app.pagination import Page, paginate

ROLE_NAMES = {level.name.lower(): level for level in AccessLevel}


@dataclass(frozen=True)
class MemberView:
    user: User
    access_level: AccessLevel
    source_group: Group  # the group whose membership grants the level
    inherited: bool

    @property
    def id(self) -> int:
        """Members are paged by their user's id."""
        return self.user.id


def parse_role(role: str) -> AccessLevel:
    try:
        return ROLE_NAMES[role.strip().lower()]
    except KeyError:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLE_NAMES)}") from None


async def find_group(full_path: str) -> Group | None:
    """The group at `full_path` (case-insensitive), or None."""
    key = full_path_key(full_path)
    if not key or full_path_error(key):
        return None
    return await Group.get_or_none(full_path_key=key)


async def get_group(full_path: str) -> Group:
    group = await find_group(full_path)
    if group is None:
        raise NotFound(f"group {full_path!r} not found")
    return group


async def create_group(
    full_path: str,
    *,
    name: str | None = None,
    description: str = "",
    visibility: Visibility = Visibility.PRIVATE,
    owner: User | None = None,
) -> Group:
    """Create a group (its parent must exist); `owner` becomes its Owner."""
    full_path = full_path.strip("/")
    if error := full_path_error(full_path):
        raise InvalidInput(error)
    parent_path, _, path = full_path.rpartition("/")
    parent = None
    if parent_path:
        parent = await find_group(parent_path)
        if parent is None:
            raise NotFound(f"parent group {parent_path!r} not found: create it first")
        full_path = f"{parent.full_path}/{path}"
    if name is not None and not name.strip():
        raise InvalidInput("name can't be blank")
    try:
        async with in_transaction():
            group = await Group.create(
                parent=parent,
                path=path,
                full_path=full_path,
                full_path_key=full_path_key(full_path),
                name=(name or path).strip(),
                description=description,
                visibility=visibility,
            )
            if owner is not None:
                await Membership.create(group=group, user=owner, access_level=AccessLevel.OWNER)
    except IntegrityError:
        raise AlreadyExists(f"group {full_path!r} already exists") from None
    return group


async def list_groups(search: str | None = None) -> list[Group]:
    query = Group.all().order_by("full_path_key")
    if search:
        query = query.filter(full_path_key__icontains=search.lower())
    return await query


async def ancestors_and_self(group: Group) -> list[Group]:
    """This group and its ancestors, top-level first."""
    groups = await Group.filter(full_path_key__in=group.ancestor_keys)
    return sorted(groups, key=lambda item: item.full_path_key.count("/"))


async def add_member(group: Group, user: User, access_level: AccessLevel) -> Membership:
    """Add `user` to `group`, or change the level of an existing membership."""
    membership = await Membership.get_or_none(group=group, user=user)
    if membership is None:
        try:
            return await Membership.create(group=group, user=user, access_level=access_level)
        except IntegrityError:
            membership = await Membership.get(group=group, user=user)
    membership.access_level = access_level
    await membership.save(update_fields=["access_level", "updated_at"])
    return membership


async def remove_member(group: Group, user: User) -> None:
    deleted = await Membership.filter(group=group, user=user).delete()
    if not deleted:
        raise NotFound(f"{user.username} is not a direct member of {group.full_path}")


async def list_members(group: Group) -> list[MemberView]:
    """Direct and inherited members, each with their effective (highest) level."""
    lineage = await ancestors_and_self(group)
    memberships = await Membership.filter(
        group_id__in=[item.id for item in lineage]
    ).prefetch_related("user")
    return sorted(
        _best_levels(group, lineage, memberships), key=lambda item: item.user.username_key
    )


async def members_page(group: Group, search: str | None = None, **page: Any) -> Page[MemberView]:
    """One keyset page (by user id) of the group's direct and inherited members, with
    their effective level; bots of revoked group access tokens are left out. Two
    queries: the page of users, then their memberships in the group's lineage."""
    lineage = await ancestors_and_self(group)
    lineage_ids = [item.id for item in lineage]
    # Bots of revoked group access tokens are blocked: they are no members any more.
    users = User.filter(
        ~Q(user_type=UserType.GROUP_BOT, state=UserState.BLOCKED),
        memberships__group_id__in=lineage_ids,
    )
    if search and search.strip():
        users = users.filter(username_key__icontains=search.strip().lower())
    found = await paginate(users.distinct(), newest_first=False, **page)
    memberships = await Membership.filter(
        group_id__in=lineage_ids, user_id__in=[user.id for user in found.items]
    )
    by_user = {user.id: user for user in found.items}
    for membership in memberships:
        membership.user = by_user[membership.user_id]  # type: ignore[attr-defined]
    views = {view.user.id: view for view in _best_levels(group, lineage, memberships)}
    return Page(
        [views[user.id] for user in found.items if user.id in views],
        has_next_page=found.has_next_page,
        has_previous_page=found.has_previous_page,
    )


def _best_levels(
    group: Group, lineage: list[Group], memberships: list[Membership]
) -> list[MemberView]:
    by_id = {item.id: item for item in lineage}
    best: dict[int, MemberView] = {}
    for membership in memberships:
        source = by_id[membership.group_id]  # type: ignore[attr-defined]
        view = MemberView(
            user=membership.user,
            access_level=AccessLevel(membership.access_level),
            source_group=source,
            inherited=source.id != group.id,
        )
        current = best.get(membership.user.id)
        if current is None or view.access_level > current.access_level:
            best[membership.user.id] = view
    return list(best.values())
