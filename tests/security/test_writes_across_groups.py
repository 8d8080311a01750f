"""No tenant changes another tenant's group: every mutation and every group form,
tried by every credential that may not administer the group, is refused and
changes nothing.

The attacks are the useful ones: make oneself Owner, demote or remove the
real Owner, point the proxy at one's own Docker Hub credentials or put one's
own registry first in its upstream list, switch it off, clear the cache,
plant a subgroup, mint oneself a group access token or revoke the group's,
rotate (and so take over) another person's token. Who may administer is the
README's last column: Owner (a role counting in subgroups) through the session
or a personal access token with `api`, a group access token with the Owner
role and `api` in its own group, and instance admins. Mutations are found
in the schema and forms in the group pages, so a new one must be listed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from app.gql.schema import schema
from tests.security.tenancy import (
    GROUP_ACCESS_TOKENS,
    GROUPS,
    SUB,
    TOP,
    Credential,
    InProcessDockyard,
    Tenancy,
    credential_labels,
    is_group_access_token,
    label_of,
)
from tests.security.tenancy_state import database_state
from tests.security.tenant_browsers import TenantBrowsers
from tests.support.cache_rows import add_manifest
from web.groups import GROUP_PAGES

pytestmark = pytest.mark.e2e  # the tenants' Dockyard has the reference registry as upstream
in_module_loop = pytest.mark.asyncio(loop_scope="module")

EVERYWHERE = frozenset(GROUPS)
ACME_AND_SUBGROUPS = frozenset({TOP, SUB})
# Who administers what; everyone else is an attacker there. Those who may read
# the group see a 403 page for its forms, the others a 404.
ROLE_ADMINISTERS = {"Owner": ACME_AND_SUBGROUPS, "instance admin": EVERYWHERE}
ADMINISTERING_CREDENTIALS = {"password", "PAT api"}
ROLE_SEES = {
    "Guest": ACME_AND_SUBGROUPS,
    "Reporter": ACME_AND_SUBGROUPS,
    "Developer": ACME_AND_SUBGROUPS,
    "Maintainer": ACME_AND_SUBGROUPS,
    "Owner": ACME_AND_SUBGROUPS,
    "Guest of acme/platform only": frozenset({SUB}),
    "instance admin": EVERYWHERE,
}
# How /api/graphql takes each credential before any policy applies.
API_STATUS = {
    "password": 200,  # the session (anonymous when the sign-in was refused)
    "PAT api": 200,
    "PAT read_api": 200,
    "PAT read_registry+write_registry": 403,
    "PAT read_registry": 403,
    "PAT api, expired": 401,
    "PAT api, revoked": 401,
}
# Group access tokens: how /api/graphql takes them, and where they administer.
GROUP_TOKEN_API_STATUS = {
    "group access token of acme, Guest, registry": 403,
    "group access token of acme/platform, Developer, api": 200,
    "group access token of zeta, Owner, api": 200,
    "group access token of acme, Reporter, read_api": 200,
    "group access token of acme, Owner, api, expired": 401,
    "group access token of acme, Owner, api, revoked": 401,
}
GROUP_TOKEN_ADMINISTERS = {"group access token of zeta, Owner, api": frozenset({"zeta"})}

# Every mutation, aimed at $path by the user $me (the real owner of zeta is zoe).
MUTATION_ATTACKS = {
    "groupMemberAdd": "groupMemberAdd(input: {groupPath: $path, username: $me, "
    "accessLevel: OWNER}) { errors }",
    "groupMemberUpdate": "groupMemberUpdate(input: {groupPath: $path, username: $victim, "
    "accessLevel: GUEST}) { errors }",
    "groupMemberRemove": "groupMemberRemove(input: {groupPath: $path, username: $victim}) "
    "{ errors }",
    "updateDependencyProxySettings": "updateDependencyProxySettings(input: {groupPath: $path, "
    'enabled: false, identity: "attacker", secret: "attacker-secret"}) { errors }',
    "updateDependencyProxyImageTtlGroupPolicy": "updateDependencyProxyImageTtlGroupPolicy("
    "input: {groupPath: $path, enabled: true, ttl: 1}) { errors }",
    "clearDependencyProxyCache": "clearDependencyProxyCache(input: {groupPath: $path}) { errors }",
    "groupCreate": "groupCreate(input: {path: $subgroup}) { errors }",
    # Put one's own registry first: the group's pulls would come from it.
    "dependencyProxyUpstreamCreate": "dependencyProxyUpstreamCreate(input: {groupPath: $path, "
    'url: "https://attacker.example", position: 1}) { errors }',
    "dependencyProxyUpstreamDelete": "dependencyProxyUpstreamDelete(input: {groupPath: $path, "
    'name: "docker-hub"}) { errors }',
    "groupAccessTokenCreate": "groupAccessTokenCreate(input: {groupPath: $path, name: $me, "
    'accessLevel: OWNER, scopes: ["api"]}) { errors token }',
    "groupAccessTokenRevoke": "groupAccessTokenRevoke(input: {groupPath: $path, "
    "name: $groupToken}) { errors }",
    "personalAccessTokenRotate": "personalAccessTokenRotate(input: {id: $victimToken}) "
    "{ errors token }",
    "destroyDependencyProxyManifest": "destroyDependencyProxyManifest(input: {id: $manifest, "
    "deletePlatformManifests: true}) { errors }",
    "updateDependencyProxyManifest": "updateDependencyProxyManifest(input: {id: $manifest, "
    "pinned: true}) { errors }",
    # Fill another group's cache (and spend its upstream quota) with one's choice.
    "createDependencyProxyWarmJob": "createDependencyProxyWarmJob(input: {groupPath: $path, "
    'images: ["alpine:3.19"]}) { errors }',
}
# What Maintainers may do too: left out of their attacks on acme and its subgroup.
MAINTAINER_MUTATIONS = frozenset({"createDependencyProxyWarmJob"})
MAINTAINER_FORMS = frozenset({"dependency_proxy/warm"})


def mutation_for(maintainer: bool) -> str:
    attacks = {
        name: field
        for name, field in MUTATION_ATTACKS.items()
        if not (maintainer and name in MAINTAINER_MUTATIONS)
    }
    return (
        "mutation ($path: ID!, $me: String!, $victim: String!, $subgroup: ID!, "
        "$groupToken: String!, $victimToken: PersonalAccessTokenID!, "
        "$manifest: DependencyProxyManifestID!) {\n"
        + "\n".join(f"  {name}: {field}" for name, field in attacks.items())
        + "\n}"
    )


# Every form of a group's pages, posted with the attacker's own valid CSRF token.
FORM_ATTACKS: dict[str, dict[str, str | list[str]]] = {
    "group_members": {"username": "{me}", "role": "owner"},
    "group_members/role": {"username": "{victim}", "role": "guest"},
    "group_members/remove": {"username": "{victim}"},
    "group_members/deploy_tokens": {"name": "mine", "scopes": ["read_registry", "write_registry"]},
    "group_members/deploy_tokens/revoke": {"name": "ci"},
    "dependency_proxy/clear_cache": {},
    "dependency_proxy/images/delete": {"manifest_id": "{manifest}", "delete_platforms": "1"},
    "dependency_proxy/images/pin": {"manifest_id": "{manifest}", "pinned": "1"},
    "dependency_proxy/warm": {"images": "alpine:3.19"},
    "settings/packages_and_registries": {"revalidation_interval": "0"},
    "settings/packages_and_registries/ttl": {"enabled": "on", "ttl": "1"},
    "settings/packages_and_registries/credentials": {"identity": "attacker", "secret": "s3cret"},
    "settings/packages_and_registries/size_limit": {"size_limit": "1MiB"},
    "settings/packages_and_registries/upstreams": {
        "url": "https://attacker.example",
        "position": "1",
    },
    "settings/packages_and_registries/upstreams/remove": {"name": "docker-hub"},
    "settings/access_tokens": {"name": "mine", "role": "owner", "scopes": ["api"]},
    "settings/access_tokens/revoke": {"name": "{group_token}"},
}
VICTIMS = {TOP: "olivia", SUB: "olivia", "beta": "ada", "zeta": "zoe"}
# A live group access token of each group, for the attacks that revoke one.
GROUP_TOKENS = {
    TOP: "group access token of acme, Guest, registry",
    SUB: "group access token of acme/platform, Developer, api",
    "beta": "none",
    "zeta": "group access token of zeta, Owner, api",
}


def maintains(role: str | None, kind: str, group: str) -> bool:
    """A Maintainer's own groups, with a credential that may change things."""
    return role == "Maintainer" and kind in ADMINISTERING_CREDENTIALS and group in (TOP, SUB)


def administers(role: str | None, kind: str, group: str) -> bool:
    if role is None and is_group_access_token(kind):
        return group in GROUP_TOKEN_ADMINISTERS.get(kind, frozenset())
    if role is None or kind not in ADMINISTERING_CREDENTIALS:
        return False
    return group in ROLE_ADMINISTERS.get(role, frozenset())


ATTACKS = [
    (role, kind, group)
    for role, kind in credential_labels()
    for group in GROUPS
    if not administers(role, kind, group)
]


def test_the_tables_name_every_group_access_token() -> None:
    assert set(GROUP_TOKEN_API_STATUS) == set(GROUP_ACCESS_TOKENS)


def test_the_tables_name_every_mutation_and_group_form() -> None:
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    assert set(mutation_type.fields) == set(MUTATION_ATTACKS), "add the mutation's attack"
    forms = {page for method, page in GROUP_PAGES if method == "POST"}
    assert forms == set(FORM_ATTACKS), "add the form's attack"


class Writes:
    def __init__(self, dockyard: InProcessDockyard, world: Tenancy) -> None:
        self.dockyard = dockyard
        self.world = world
        self.browsers = TenantBrowsers(dockyard.app)
        self.manifests: dict[str, int] = {}  # each group's cached alpine:3.19


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cross_writes(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy
) -> AsyncIterator[Writes]:
    """A cached manifest in every group, so that clearing, deleting or pinning would show."""
    writes = Writes(tenancy_dockyard, tenancy_world)
    for path, group in tenancy_world.groups.items():
        writes.manifests[path] = (await add_manifest(group, "alpine", "3.19")).id
    yield writes
    await writes.browsers.close()


def api_status(role: str | None, kind: str) -> int:
    if role is None and is_group_access_token(kind):
        return GROUP_TOKEN_API_STATUS[kind]
    if role is None:  # deploy tokens are no API credential
        return 401
    if role == "blocked Owner" and kind != "password":
        return 401
    return API_STATUS[kind]


async def _mutate(writes: Writes, credential: Credential, group: str) -> httpx.Response:
    victim = VICTIMS[group]
    variables = {
        "path": group,
        "me": credential.username,
        "victim": victim,
        "subgroup": f"{group}/planted",
        "groupToken": GROUP_TOKENS[group],
        "victimToken": f"gid://dockyard/PersonalAccessToken/{writes.world.api_token_ids[victim]}",
        "manifest": f"gid://dockyard/DependencyProxy::Manifest/{writes.manifests[group]}",
    }
    maintainer = maintains(credential.role, credential.kind, group)
    body = {"query": mutation_for(maintainer), "variables": variables}
    if credential.kind == "password":
        browser = await writes.browsers.of(credential)
        headers = {"X-CSRF-Token": browser.csrf}
        return await browser.http.post("/api/graphql", json=body, headers=headers)
    headers = {"Authorization": f"Bearer {credential.secret}"}
    return await writes.dockyard.http.post("/api/graphql", json=body, headers=headers)


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group"), ATTACKS, ids=[f"{label_of(r, k)}|{g}" for r, k, g in ATTACKS]
)
async def test_mutations_on_a_group_one_does_not_own_change_nothing(
    cross_writes: Writes, role: str | None, kind: str, group: str
) -> None:
    credential = cross_writes.world.credential(role, kind)
    if credential.kind == "password":
        # Signing in records a session and a password check: done before the snapshot.
        await cross_writes.browsers.of(credential)
    before = await database_state()
    answer = await _mutate(cross_writes, credential, group)
    assert await database_state() == before
    assert answer.status_code == api_status(role, kind), answer.text
    if answer.status_code != 200:
        return
    body = answer.json()
    assert body["data"] is None or all(body["data"].get(name) is None for name in MUTATION_ATTACKS)
    assert {error["message"] for error in body["errors"]} == {RESOURCE_NOT_AVAILABLE}


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group"),
    [cell for cell in ATTACKS if cell[1] == "password"],
    ids=[f"{label_of(r, k)}|{g}" for r, k, g in ATTACKS if k == "password"],
)
async def test_group_forms_one_may_not_use_change_nothing(
    cross_writes: Writes, role: str | None, kind: str, group: str
) -> None:
    credential = cross_writes.world.credential(role, kind)
    browser = await cross_writes.browsers.of(credential)
    before = await database_state()
    for page, template in FORM_ATTACKS.items():
        if page in MAINTAINER_FORMS and maintains(role, kind, group):
            continue
        data = {
            name: value.format(
                me=credential.username,
                victim=VICTIMS[group],
                group_token=GROUP_TOKENS[group],
                manifest=cross_writes.manifests[group],
            )
            if isinstance(value, str)
            else value
            for name, value in template.items()
        }
        data["authenticity_token"] = browser.csrf
        answer = await browser.http.post(f"/groups/{group}/-/{page}", data=data)
        if role == "blocked Owner":  # never signed in
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/users/sign_in")
        else:
            sees = group in ROLE_SEES.get(role or "", frozenset())
            assert answer.status_code == (403 if sees else 404), (page, answer.status_code)
        assert await database_state() == before, page
