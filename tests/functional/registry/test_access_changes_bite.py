"""What this process keeps about who may pull (app/access_version.py) never outlives a change.

Each test first pulls a cached manifest by digest a few times, so the
principal and the granted pull are kept in memory, then changes who may pull
and asserts that the very next request is refused. The last tests make the
change through another database connection, as the CLI or another worker
does: only the triggers can tell this process.
"""

from __future__ import annotations

import base64
import sqlite3
from dataclasses import dataclass

import httpx
import pytest

from app import access_version, clock
from app.accounts import authentication
from app.accounts import records as accounts
from app.accounts.models import PersonalAccessToken, UserState
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.group_settings import setting_for
from app.groups import records as groups
from app.groups.access_tokens import create_group_access_token, revoke_group_access_token
from app.groups.deploy_tokens import create_deploy_token, revoke_deploy_token
from app.groups.models import AccessLevel
from app.instance.services import update_instance_settings
from tests.support.cache_rows import add_manifest

IMAGE = "library/alpine"
REPO = f"acme/platform/dependency_proxy/containers/{IMAGE}"
SCOPE = f"repository:{REPO}:pull"
WARM_UP = 3


def basic(username: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


@dataclass
class World:
    client: httpx.AsyncClient
    settings: Settings
    digest: str

    async def login(self, username: str, secret: str) -> dict[str, str]:
        answer = await self.client.get(
            "/jwt/auth",
            params={"service": "dependency_proxy", "scope": SCOPE},
            headers=basic(username, secret),
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    async def pull(self, bearer: dict[str, str]) -> httpx.Response:
        return await self.client.get(f"/v2/{REPO}/manifests/{self.digest}", headers=bearer)

    async def warm(self, bearer: dict[str, str]) -> None:
        """Pull until what the process keeps is in use (several hits, nothing moving)."""
        for _ in range(WARM_UP):
            answer = await self.pull(bearer)
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Cache"] == "HIT"


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    """alice, Guest of acme (the parent of acme/platform, whose cache holds alpine)."""
    acme = await groups.create_group("acme")
    platform = await groups.create_group("acme/platform")
    alice = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, alice, AccessLevel.GUEST)
    row = await add_manifest(platform, IMAGE, "3.20")
    return World(client, settings, row.digest)


def assert_invalid_token(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


def assert_no_group(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_revoked_personal_access_token_is_refused_on_the_next_request(
    world: World,
) -> None:
    alice = await accounts.get_user("alice")
    secret = (await accounts.create_personal_access_token(alice, "ci", "api")).secret
    bearer = await world.login("alice", secret)
    await world.warm(bearer)
    await accounts.revoke_personal_access_token(alice, "ci")
    assert_invalid_token(await world.pull(bearer))


async def test_blocked_user_is_refused_on_the_next_request(world: World) -> None:
    bearer = await world.login("alice", "alice-password")
    await world.warm(bearer)
    await accounts.set_state(await accounts.get_user("alice"), UserState.BLOCKED)
    assert_invalid_token(await world.pull(bearer))


async def test_removed_member_is_refused_on_the_next_request(world: World) -> None:
    alice = await accounts.get_user("alice")
    secret = (
        await accounts.create_personal_access_token(alice, "ci", "read_registry,write_registry")
    ).secret
    bearer = await world.login("alice", secret)
    await world.warm(bearer)
    # The membership is on the parent group: the pull is in its subgroup.
    await groups.remove_member(await groups.get_group("acme"), alice)
    assert_no_group(await world.pull(bearer))


async def test_revoked_group_access_token_is_refused_on_the_next_request(world: World) -> None:
    acme = await groups.get_group("acme")
    created = await create_group_access_token(
        Principal.operator(), acme, "ci", "guest", "read_registry,write_registry"
    )
    bearer = await world.login("anyone", created.secret)
    await world.warm(bearer)
    await revoke_group_access_token(Principal.operator(), acme, "ci")
    assert_invalid_token(await world.pull(bearer))


async def test_revoked_deploy_token_is_refused_on_the_next_request(world: World) -> None:
    acme = await groups.get_group("acme")
    created = await create_deploy_token(
        Principal.operator(), acme, "ci", "read_registry,write_registry"
    )
    bearer = await world.login(created.username, created.secret)
    await world.warm(bearer)
    await revoke_deploy_token(Principal.operator(), acme, "ci")
    assert_invalid_token(await world.pull(bearer))


async def test_switching_the_proxy_off_bites_on_the_next_request(world: World) -> None:
    bearer = await world.login("alice", "alice-password")
    await world.warm(bearer)
    setting = await setting_for(await groups.get_group("acme/platform"))
    setting.enabled = False
    await setting.save()
    answer = await world.pull(bearer)
    assert answer.status_code == 403
    assert "disabled for group acme/platform" in answer.json()["errors"][0]["message"]

    setting.enabled = True
    await setting.save()
    await world.warm(bearer)
    await update_instance_settings(
        Principal.operator(), world.settings, dependency_proxy_enabled=False
    )
    answer = await world.pull(bearer)
    assert answer.status_code == 403
    assert "disabled on this Dockyard instance" in answer.json()["errors"][0]["message"]


def _write_elsewhere(settings: Settings, statement: str, *parameters: object) -> None:
    """A write through a connection of its own, as `dockyard` at the shell or
    another worker makes it: nothing in this process hears of it."""
    assert settings.sqlite_path is not None
    with sqlite3.connect(settings.sqlite_path, timeout=10) as other:
        other.execute(statement, parameters)
    other.close()


async def test_a_revocation_by_another_process_bites_on_the_next_request(world: World) -> None:
    alice = await accounts.get_user("alice")
    secret = (await accounts.create_personal_access_token(alice, "ci", "api")).secret
    bearer = await world.login("alice", secret)
    await world.warm(bearer)
    _write_elsewhere(
        world.settings,
        "UPDATE personal_access_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE name = ?",
        "ci",
    )
    assert_invalid_token(await world.pull(bearer))


async def test_a_membership_removed_by_another_process_bites_on_the_next_request(
    world: World,
) -> None:
    bearer = await world.login("alice", "alice-password")
    await world.warm(bearer)
    _write_elsewhere(world.settings, "DELETE FROM memberships")
    assert_no_group(await world.pull(bearer))


async def test_nothing_is_read_again_while_nothing_changes(world: World) -> None:
    """The point of keeping: with the version standing still, the principal kept
    at the first request is the one every later request gets."""
    alice = await accounts.get_user("alice")
    before = await access_version.current()
    first = await authentication.load_principal("user", alice.id, alice.credentials_version)
    again = await authentication.load_principal("user", alice.id, alice.credentials_version)
    assert first is not None and again is first
    assert await access_version.current() == before
    # A write about access moves it; one that is not (a token's last use) does not.
    secret = (await accounts.create_personal_access_token(alice, "ci", "api")).secret
    moved = await access_version.current()
    assert moved > before
    await world.login("alice", secret)  # marks the token used (at most once a minute)
    settled = await access_version.current()
    await PersonalAccessToken.filter(name="ci").update(last_used_at=clock.now())
    assert await access_version.current() == settled
