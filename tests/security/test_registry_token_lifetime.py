"""A registry JWT is only as good as what stands behind it, on every request.

Blocking the user, revoking or expiring the token, removing the membership or
the admin flag, revoking a deploy token or a group access token, and — for a
JWT obtained with the password — a password change, an administrator's reset
or "sign out everywhere": the very next `/v2` request with a JWT issued before
is refused. A JWT names repositories: one granted for group
A's repository does not open group B's (the client gets the
`insufficient_scope` challenge and fetches a new token), and a subgroup's
deploy token does not reach the parent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from app import clock
from app.accounts import active_sessions, user_sessions, users
from app.accounts import records as accounts
from app.accounts.models import DeployToken, PersonalAccessToken, UserState
from app.accounts.principal import Principal
from app.config import Settings
from app.groups import access_tokens, deploy_tokens
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.security.registry_answers import (
    assert_challenge,
    assert_nothing_served,
    assert_oci_error,
    basic,
    bearer,
    granted_access,
    pull_scope,
    repository,
)
from tests.security.tenancy import with_upstream
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.operator import OPERATOR

pytestmark = pytest.mark.e2e  # the reference registry is the upstream
BOTH = "read_registry,write_registry"
PASSWORD = "alice-password-1"


@pytest.fixture
def settings(settings: Settings, reference_registry: SeededReferenceRegistry) -> Settings:
    return with_upstream(settings, reference_registry.url)


@dataclass
class Login:
    username: str
    secret: str


async def jwt_for(client: httpx.AsyncClient, login: Login, *groups_: str) -> str:
    scopes = " ".join(pull_scope(repository(group)) for group in groups_)
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": scopes},
        headers=basic(login.username, login.secret),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def manifest_path(group: str, image: str = "alpine", tag: str = "3.19") -> str:
    return f"/v2/{repository(group, image)}/manifests/{tag}"


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> None:
    """alice: Guest of acme and of beta; acme has a subgroup, acme/platform."""
    user = await accounts.create_user("alice", "alice@example.com", PASSWORD)
    for path in ("acme", "beta"):
        await groups.add_member(await groups.create_group(path), user, AccessLevel.GUEST)
    await groups.create_group("acme/platform")
    await groups.create_group("acme/other")


async def _password() -> Login:
    return Login("alice", PASSWORD)


async def _pat() -> Login:
    user = await accounts.get_user("alice")
    return Login("alice", (await accounts.create_personal_access_token(user, "t", "api")).secret)


async def _deploy() -> Login:
    created = await deploy_tokens.create_deploy_token(
        OPERATOR, await groups.get_group("acme"), "ci", BOTH
    )
    return Login(created.username, created.secret)


async def _admin() -> Login:
    await accounts.create_user("ada", "ada@example.com", "ada-password-1", is_admin=True)
    return Login("ada", "ada-password-1")


async def _block() -> None:
    await accounts.set_state(await accounts.get_user("alice"), UserState.BLOCKED)


async def _revoke_pat() -> None:
    await accounts.revoke_personal_access_token(await accounts.get_user("alice"), "t")


async def _expire_pat() -> None:
    # Today is the first day a token is no longer valid (expires_at > today is).
    await PersonalAccessToken.filter(name="t").update(expires_at=clock.today())


async def _remove_membership() -> None:
    await groups.remove_member(await groups.get_group("acme"), await accounts.get_user("alice"))


async def _remove_admin() -> None:
    await accounts.set_admin(await accounts.get_user("ada"), False)


async def _revoke_deploy_token() -> None:
    await deploy_tokens.revoke_deploy_token(OPERATOR, await groups.get_group("acme"), "ci")


async def _expire_deploy_token() -> None:
    await DeployToken.filter(name="ci").update(expires_at=clock.today())


async def _group_token() -> Login:
    acme = await groups.get_group("acme")
    created = await access_tokens.create_group_access_token(OPERATOR, acme, "bot", "guest", BOTH)
    return Login("whatever-name", created.secret)


async def _revoke_group_token() -> None:
    await access_tokens.revoke_group_access_token(OPERATOR, await groups.get_group("acme"), "bot")


async def _change_password() -> None:
    """What the password page does once the current password is checked."""
    await accounts.set_password(await accounts.get_user("alice"), "a-brand-new-password-7")


async def _admin_resets_password() -> None:
    await users.reset_password(OPERATOR, "alice", "a-password-set-by-an-admin-8")


async def _sign_out_everywhere() -> None:
    """Signed in elsewhere, alice presses "Sign out everywhere else" on the sessions page."""
    alice = await accounts.get_user("alice")
    here = await user_sessions.start(alice, "127.0.0.7", "another browser")
    await active_sessions.sign_out_everywhere_else(Principal(user=alice, session=here.record))


Change = Callable[[], Awaitable[None]]
LoginMaker = Callable[[], Awaitable[Login]]
# (how the client logged in, what changes afterwards, what the next request gets)
CHANGES: dict[str, tuple[LoginMaker, Change, str]] = {
    "password login, user blocked": (_password, _block, "401"),
    "token login, user blocked": (_pat, _block, "401"),
    "token revoked": (_pat, _revoke_pat, "401"),
    "token expired": (_pat, _expire_pat, "401"),
    "password login, membership removed": (_password, _remove_membership, "404"),
    "token login, membership removed": (_pat, _remove_membership, "404"),
    "admin no longer admin": (_admin, _remove_admin, "404"),
    "deploy token revoked": (_deploy, _revoke_deploy_token, "401"),
    "deploy token expired": (_deploy, _expire_deploy_token, "401"),
    "group access token revoked": (_group_token, _revoke_group_token, "401"),
    "password login, password changed": (_password, _change_password, "401"),
    "password login, password reset by an admin": (_password, _admin_resets_password, "401"),
    "password login, signed out everywhere": (_password, _sign_out_everywhere, "401"),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_jwt_stops_working_on_the_very_next_request(
    client: httpx.AsyncClient, alice: None, seeded_images: SeededImages, change: str
) -> None:
    make_login, apply_change, refusal = CHANGES[change]
    token = await jwt_for(client, await make_login(), "acme")
    path = manifest_path("acme")
    before = await client.get(path, headers=bearer(token))
    assert before.status_code == 200 and before.content == seeded_images.alpine.manifest

    await apply_change()
    after = await client.get(path, headers=bearer(token))
    if refusal == "401":
        assert_challenge(after, scope=pull_scope(repository("acme")), error="invalid_token")
        assert_challenge(await client.get("/v2/", headers=bearer(token)))
    else:
        assert_oci_error(after, 404, "NAME_UNKNOWN")
    assert_nothing_served(after, seeded_images.alpine.manifest)


@pytest.mark.parametrize("change", [_change_password, _sign_out_everywhere])
async def test_a_token_login_outlives_password_changes(
    client: httpx.AsyncClient, alice: None, seeded_images: SeededImages, change: Change
) -> None:
    """As on GitLab, personal access tokens are not the password: a JWT obtained with one
    survives a password change or "sign out everywhere" (revoking the token ends it)."""
    token = await jwt_for(client, await _pat(), "acme")
    await change()
    answer = await client.get(manifest_path("acme"), headers=bearer(token))
    assert answer.status_code == 200 and answer.content == seeded_images.alpine.manifest


async def test_a_jwt_for_one_group_does_not_open_another_the_principal_may_pull_from(
    client: httpx.AsyncClient, alice: None, seeded_images: SeededImages
) -> None:
    login = await _pat()
    acme_token = await jwt_for(client, login, "acme")
    for group, image in (("beta", "alpine"), ("acme/platform", "alpine"), ("acme", "nginx")):
        answer = await client.get(manifest_path(group, image), headers=bearer(acme_token))
        assert_challenge(
            answer, scope=pull_scope(repository(group, image)), error="insufficient_scope"
        )
        assert_nothing_served(answer, seeded_images.alpine.manifest)
    # As docker does on that challenge: a new token for the asked repository.
    beta_token = await jwt_for(client, login, "beta")
    answer = await client.get(manifest_path("beta"), headers=bearer(beta_token))
    assert answer.status_code == 200 and answer.content == seeded_images.alpine.manifest


async def test_a_subgroup_deploy_token_does_not_reach_the_parent_or_a_sibling(
    client: httpx.AsyncClient, alice: None, seeded_images: SeededImages
) -> None:
    created = await deploy_tokens.create_deploy_token(
        OPERATOR, await groups.get_group("acme/platform"), "ci", BOTH
    )
    login = Login(created.username, created.secret)
    token = await jwt_for(client, login, "acme", "acme/other", "acme/platform")
    assert [item["name"] for item in granted_access(token)] == [repository("acme/platform")]
    for group in ("acme", "acme/other"):
        answer = await client.get(manifest_path(group), headers=bearer(token))
        assert_oci_error(answer, 404, "NAME_UNKNOWN")
        assert_nothing_served(answer, seeded_images.alpine.manifest)
    own = await client.get(manifest_path("acme/platform"), headers=bearer(token))
    assert own.status_code == 200 and own.content == seeded_images.alpine.manifest


async def test_a_token_presented_under_another_name_is_refused(
    client: httpx.AsyncClient, alice: None
) -> None:
    """The username `docker login` sends must be the token's own."""
    await accounts.create_user("mallory", "mallory@example.com", "mallory-password-1")
    pat = await _pat()
    deploy = await _deploy()
    other_deploy = await deploy_tokens.create_deploy_token(
        OPERATOR, await groups.get_group("beta"), "ci", BOTH, username="beta-ci"
    )
    for username, secret in (
        ("mallory", pat.secret),
        (other_deploy.username, deploy.secret),
        ("alice", deploy.secret),
    ):
        answer = await client.get(
            "/jwt/auth",
            params={"service": "dependency_proxy", "scope": pull_scope(repository("acme"))},
            headers=basic(username, secret),
        )
        assert_oci_error(answer, 401, "UNAUTHORIZED")
        assert "token" not in answer.json()
