from datetime import timedelta

import pytest

from app import clock
from app.accounts import authentication
from app.accounts import records as accounts
from app.accounts.models import UserState
from app.accounts.principal import Principal
from app.errors import AlreadyExists, InsufficientScope, NotFound, PermissionDenied
from app.groups import deploy_tokens, policy
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.support.operator import OPERATOR
from tests.unit.accounts.checks import CHECK

pytestmark = pytest.mark.usefixtures("database")


async def make_tree() -> tuple:
    acme = await groups.create_group("acme")
    platform = await groups.create_group("acme/platform")
    ci = await groups.create_group("acme/platform/ci")
    other = await groups.create_group("other")
    return acme, platform, ci, other


async def test_groups_are_found_case_insensitively_and_unique() -> None:
    await groups.create_group("Acme")
    platform = await groups.create_group("acme/Platform")
    assert platform.full_path == "Acme/Platform"
    assert (await groups.find_group("ACME/platform")).id == platform.id
    with pytest.raises(AlreadyExists):
        await groups.create_group("ACME")
    with pytest.raises(NotFound):
        await groups.create_group("missing/child")


@pytest.mark.parametrize("level", list(AccessLevel))
async def test_every_access_level_may_pull_only_owner_administers(level: AccessLevel) -> None:
    acme, platform, ci, other = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, user, level)
    me = Principal(user=user)
    assert await policy.can_pull(me, ci)  # inherited from the ancestor
    assert await policy.can_read(me, platform)
    assert await policy.can_administer(me, ci) is (level == AccessLevel.OWNER)
    assert not await policy.can_pull(me, other)


async def test_membership_of_a_subgroup_does_not_reach_the_parent() -> None:
    acme, platform, ci, _ = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(platform, user, AccessLevel.OWNER)
    me = Principal(user=user)
    assert await policy.can_administer(me, ci)
    assert not await policy.can_pull(me, acme)


async def test_highest_level_over_ancestors_wins() -> None:
    acme, platform, ci, _ = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, user, AccessLevel.OWNER)
    await groups.add_member(ci, user, AccessLevel.GUEST)
    assert await policy.access_level(user, ci) == AccessLevel.OWNER
    members = await groups.list_members(ci)
    assert [(m.user.username, m.access_level, m.inherited) for m in members] == [
        ("alice", AccessLevel.OWNER, True)
    ]


async def test_non_members_and_blocked_users_get_nothing() -> None:
    acme, *_ = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    assert not await policy.can_pull(Principal(user=user), acme)
    await groups.add_member(acme, user, AccessLevel.OWNER)
    await accounts.set_state(user, UserState.BLOCKED)
    blocked = Principal(user=user)
    assert not await policy.can_pull(blocked, acme)
    assert not await policy.can_administer(blocked, acme)


async def test_admins_may_do_everything() -> None:
    acme, *_ = await make_tree()
    admin = await accounts.create_user("root", "root@example.com", "root-password", is_admin=True)
    me = Principal(user=admin)
    assert await policy.can_pull(me, acme)
    assert await policy.can_administer(me, acme)


@pytest.mark.parametrize(
    ("scopes", "pull", "read", "administer"),
    [
        ("api", True, True, True),
        ("read_api", False, True, False),
        ("read_registry", False, False, False),
        ("read_registry,write_registry", True, False, False),
        ("write_registry", False, False, False),
    ],
)
async def test_personal_access_tokens_are_limited_by_scope(
    scopes: str, pull: bool, read: bool, administer: bool
) -> None:
    acme, *_ = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, user, AccessLevel.OWNER)
    created = await accounts.create_personal_access_token(user, "t", scopes)
    token = await authentication.authenticate("alice", created.secret, CHECK)
    assert token is not None
    assert await policy.can_pull(token, acme) is pull
    assert await policy.can_read(token, acme) is read
    assert await policy.can_administer(token, acme) is administer


async def test_deploy_token_works_for_its_group_and_subgroups_only() -> None:
    acme, platform, ci, other = await make_tree()
    created = await deploy_tokens.create_deploy_token(
        OPERATOR, platform, "d", "read_registry,write_registry"
    )
    token = await authentication.authenticate(created.username, created.secret, CHECK)
    assert token is not None
    assert await policy.can_pull(token, platform)
    assert await policy.can_pull(token, ci)
    assert not await policy.can_pull(token, acme)
    assert not await policy.can_pull(token, other)
    assert not await policy.can_administer(token, platform)
    assert not await policy.can_read(token, platform)


async def test_deploy_token_needs_both_registry_scopes_to_pull() -> None:
    acme, *_ = await make_tree()
    created = await deploy_tokens.create_deploy_token(OPERATOR, acme, "d", "read_registry")
    token = await authentication.authenticate(created.username, created.secret, CHECK)
    assert token is not None and not await policy.can_pull(token, acme)


async def test_expired_deploy_token_fails() -> None:
    acme, *_ = await make_tree()
    created = await deploy_tokens.create_deploy_token(
        OPERATOR,
        acme,
        "d",
        "read_registry,write_registry",
        expires_at=clock.today() + timedelta(days=1),
    )
    later = clock.now() + timedelta(days=2)
    clock.set_clock(lambda: later)
    assert await authentication.authenticate(created.username, created.secret, CHECK) is None


async def test_the_operator_may_do_everything_and_is_nobody_s_member() -> None:
    acme, platform, *_ = await make_tree()
    operator = Principal.operator()
    assert operator.is_admin and operator.user is None
    assert await policy.can_read(operator, platform)
    assert await policy.can_administer(operator, platform)
    await policy.require_administer(operator, acme)  # does not raise


async def test_require_administer_says_why_it_refuses() -> None:
    acme, *_ = await make_tree()
    owner = await accounts.create_user("olga", "olga@example.com", "olga-password")
    guest = await accounts.create_user("gina", "gina@example.com", "gina-password")
    stranger = await accounts.create_user("sam", "sam@example.com", "sam-password")
    await groups.add_member(acme, owner, AccessLevel.OWNER)
    await groups.add_member(acme, guest, AccessLevel.GUEST)
    read_only = await accounts.create_personal_access_token(owner, "r", "read_api")
    owner_reading = await authentication.authenticate("olga", read_only.secret, CHECK)
    assert owner_reading is not None
    # The Owner's read_api token: the scope is the only thing missing, and it is said.
    with pytest.raises(InsufficientScope, match="read_api"):
        await policy.require_administer(owner_reading, acme, "clear its cache")
    # A Guest may read but not administer: refused, but the group is not hidden.
    with pytest.raises(PermissionDenied) as refused:
        await policy.require_administer(Principal(user=guest), acme, "clear its cache")
    assert not isinstance(refused.value, InsufficientScope)
    # A stranger learns nothing: the group does not exist for them.
    with pytest.raises(NotFound):
        await policy.require_administer(Principal(user=stranger), acme, "clear its cache")


async def test_api_implies_read_api() -> None:
    acme, *_ = await make_tree()
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, user, AccessLevel.GUEST)
    created = await accounts.create_personal_access_token(user, "t", "api")
    token = await authentication.authenticate_personal_access_token(created.secret)
    assert token is not None
    assert token.has_scope("read_api") and token.has_scope("api", "read_api")
    assert not token.has_scope("read_registry")
    assert await policy.can_read(token, acme)
