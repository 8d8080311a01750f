"""Another group's cache stays invisible through GraphQL, GitLab's REST purge and the pages.

Every credential of the tenants (tenancy.py) asks about each of the four
groups. The README's "may see the cache" column is the policy: members
(Guest or more, a role counting in subgroups) through the web session or a
personal access token with `api` or `read_api`; instance admins everywhere;
never a deploy token; a group access token as its bot, a member of its own
group with the token's role. Whoever may not read gets `group: null`, no listed
manifest, a 404 from the REST purge (with nothing marked) and 404 pages —
and never the group's cached digests anywhere in the answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum

import httpx
import pytest
import pytest_asyncio

from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.dependency_proxy.usage import UsageAccumulator
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
from tests.security.tenant_browsers import TenantBrowsers
from tests.support.cache_rows import add_blob, add_manifest
from web.groups import GROUP_PAGES

pytestmark = pytest.mark.e2e  # the reference registry is the upstream
in_module_loop = pytest.mark.asyncio(loop_scope="module")

EVERYWHERE = frozenset(GROUPS)
NOWHERE: frozenset[str] = frozenset()
ACME_AND_SUBGROUPS = frozenset({TOP, SUB})

# Where each role sees the cache (Guest or more, counting in subgroups), and
# where it may clear it (Owner).
ROLE_SEES: dict[str, frozenset[str]] = {
    "no role": NOWHERE,
    "Guest": ACME_AND_SUBGROUPS,
    "Reporter": ACME_AND_SUBGROUPS,
    "Developer": ACME_AND_SUBGROUPS,
    "Maintainer": ACME_AND_SUBGROUPS,
    "Owner": ACME_AND_SUBGROUPS,
    "Guest of acme/platform only": frozenset({SUB}),
    "instance admin": EVERYWHERE,
    "blocked Owner": NOWHERE,
}
ROLE_CLEARS: dict[str, frozenset[str]] = {
    "Owner": ACME_AND_SUBGROUPS,
    "instance admin": EVERYWHERE,
}
BLOCKED_ROLES = {"blocked Owner"}


class AtApi(Enum):
    SESSION = "the web session (signed in with the password)"
    READS = "a token that may read (api, read_api)"
    INSUFFICIENT_SCOPE = "403: a valid token without api or read_api"
    INVALID_TOKEN = "401: expired, revoked, a blocked user's, or not a personal access token"


API_CREDENTIAL_POLICY: dict[str, AtApi] = {
    "password": AtApi.SESSION,
    "PAT api": AtApi.READS,
    "PAT read_api": AtApi.READS,
    "PAT read_registry+write_registry": AtApi.INSUFFICIENT_SCOPE,
    "PAT read_registry": AtApi.INSUFFICIENT_SCOPE,
    "PAT api, expired": AtApi.INVALID_TOKEN,
    "PAT api, revoked": AtApi.INVALID_TOKEN,
}


# Group access tokens: (how the API takes them, where they read, where they clear).
GROUP_ACCESS_TOKEN_POLICY: dict[str, tuple[AtApi, frozenset[str], frozenset[str]]] = {
    "group access token of acme, Guest, registry": (AtApi.INSUFFICIENT_SCOPE, NOWHERE, NOWHERE),
    "group access token of acme/platform, Developer, api": (
        AtApi.READS,
        frozenset({SUB}),
        NOWHERE,
    ),
    "group access token of zeta, Owner, api": (
        AtApi.READS,
        frozenset({"zeta"}),
        frozenset({"zeta"}),
    ),
    "group access token of acme, Reporter, read_api": (AtApi.READS, ACME_AND_SUBGROUPS, NOWHERE),
    "group access token of acme, Owner, api, expired": (AtApi.INVALID_TOKEN, NOWHERE, NOWHERE),
    "group access token of acme, Owner, api, revoked": (AtApi.INVALID_TOKEN, NOWHERE, NOWHERE),
}


def expected(role: str | None, kind: str, group: str) -> tuple[AtApi, bool, bool]:
    """(how the API takes the credential, may read the group, may clear its cache)."""
    if role is None and is_group_access_token(kind):
        at_api, sees, clears_in = GROUP_ACCESS_TOKEN_POLICY[kind]
        return at_api, group in sees, group in clears_in
    if role is None:  # deploy tokens: pulls only
        return AtApi.INVALID_TOKEN, False, False
    at_api = API_CREDENTIAL_POLICY[kind]
    if role in BLOCKED_ROLES:
        at_api = AtApi.SESSION if at_api is AtApi.SESSION else AtApi.INVALID_TOKEN
        return at_api, False, False
    reads = at_api in (AtApi.SESSION, AtApi.READS) and group in ROLE_SEES[role]
    clears = kind == "PAT api" and group in ROLE_CLEARS.get(role, NOWHERE)
    return at_api, reads, clears


def test_the_group_token_table_covers_every_group_access_token() -> None:
    assert set(GROUP_ACCESS_TOKEN_POLICY) == set(GROUP_ACCESS_TOKENS)


QUERY = """
query ($path: ID!) {
  group(fullPath: $path) {
    fullPath
    dependencyProxyImageCount
    dependencyProxyManifests { nodes { digest imageName } }
    dependencyProxyBlobs { nodes { digest } }
    dependencyProxyUsage(period: DAILY) { nodes { pulls } }
  }
  groups { nodes { fullPath } }
}
"""
CELLS = [(role, kind, group) for role, kind in credential_labels() for group in GROUPS]
OWNER_ONLY_PAGES = {
    "settings/packages_and_registries",
    "settings/access_tokens",
    "dependency_proxy/clear_cache",
    "dependency_proxy/images/delete",
}
# Pages about one cached image name it in the query string: the group's own image.
IMAGE_PAGES = {"dependency_proxy/images/delete"}
GROUP_GET_PAGES = ["", *sorted(page for method, page in GROUP_PAGES if method == "GET")]


class Reads:
    """The module's tenants, one cached manifest and blob per group, signed-in browsers."""

    def __init__(self, dockyard: InProcessDockyard, world: Tenancy) -> None:
        self.dockyard = dockyard
        self.world = world
        self.digests: dict[str, tuple[str, str]] = {}
        self.manifest_ids: dict[str, int] = {}
        self.pulls: dict[str, int] = {}  # usage over time: a count of its own per group
        self.browsers = TenantBrowsers(dockyard.app)

    async def fill(self) -> None:
        for path, group in self.world.groups.items():
            manifest = await add_manifest(group, "alpine", "3.19")
            blob = await add_blob(group, f"blob of {path}")
            self.digests[path] = (manifest.digest, blob.digest)
            self.manifest_ids[path] = manifest.id
            self.pulls[path] = 11 + len(self.pulls)
            usage = UsageAccumulator()
            for _ in range(self.pulls[path]):
                usage.record_pull(group.id, "alpine", hit=True, docker_hub=True)
            await usage.flush()

    async def marked(self, group: str) -> int:
        group_id = self.world.groups[group].id
        leaving = CacheStatus.PENDING_DESTRUCTION
        return (
            await Manifest.filter(group_id=group_id, status=leaving).count()
            + await Blob.filter(group_id=group_id, status=leaving).count()
        )

    async def unmark(self, group: str) -> None:
        group_id = self.world.groups[group].id
        for model in (Manifest, Blob):
            await model.filter(group_id=group_id).update(status=CacheStatus.DEFAULT)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cache_reads(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy
) -> AsyncIterator[Reads]:
    reads = Reads(tenancy_dockyard, tenancy_world)
    await reads.fill()
    yield reads
    await reads.browsers.close()


def _assert_hidden(answer: httpx.Response, reads: Reads, group: str) -> None:
    for digest in reads.digests[group]:
        assert digest not in answer.text


async def _graphql(reads: Reads, credential: Credential, group: str) -> httpx.Response:
    body = {"query": QUERY, "variables": {"path": group}}
    if credential.kind == "password":
        browser = await reads.browsers.of(credential)
        headers = {"X-CSRF-Token": browser.csrf}
        return await browser.http.post("/api/graphql", json=body, headers=headers)
    headers = {"Authorization": f"Bearer {credential.secret}"}
    return await reads.dockyard.http.post("/api/graphql", json=body, headers=headers)


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group"), CELLS, ids=[f"{label_of(r, k)}|{g}" for r, k, g in CELLS]
)
async def test_graphql(cache_reads: Reads, role: str | None, kind: str, group: str) -> None:
    at_api, reads, _ = expected(role, kind, group)
    answer = await _graphql(cache_reads, cache_reads.world.credential(role, kind), group)
    if at_api is AtApi.INVALID_TOKEN:
        assert answer.status_code == 401, answer.text
    elif at_api is AtApi.INSUFFICIENT_SCOPE:
        assert answer.status_code == 403, answer.text
    else:
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        listed = {node["fullPath"] for node in data["groups"]["nodes"]}
        if reads:
            manifest_digest, blob_digest = cache_reads.digests[group]
            assert data["group"]["fullPath"] == group and group in listed
            nodes = data["group"]["dependencyProxyManifests"]["nodes"]
            assert [node["digest"] for node in nodes] == [manifest_digest]
            blobs = data["group"]["dependencyProxyBlobs"]["nodes"]
            assert [node["digest"] for node in blobs] == [blob_digest]
            usage = data["group"]["dependencyProxyUsage"]["nodes"]
            assert sum(node["pulls"] for node in usage) == cache_reads.pulls[group]
            return
        assert data["group"] is None and group not in listed
    _assert_hidden(answer, cache_reads, group)


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group"), CELLS, ids=[f"{label_of(r, k)}|{g}" for r, k, g in CELLS]
)
async def test_rest_purge(cache_reads: Reads, role: str | None, kind: str, group: str) -> None:
    at_api, _, clears = expected(role, kind, group)
    credential = cache_reads.world.credential(role, kind)
    # GitLab's :id is the URL-encoded full path or the group's number: both are tried.
    for ident in (group.replace("/", "%2F"), str(cache_reads.world.groups[group].id)):
        url = f"/api/v4/groups/{ident}/dependency_proxy/cache"
        if at_api is AtApi.SESSION:  # the REST API takes tokens, never the session cookie
            answer = await (await cache_reads.browsers.of(credential)).http.delete(url)
        else:
            headers = {"PRIVATE-TOKEN": credential.secret}
            answer = await cache_reads.dockyard.http.delete(url, headers=headers)
        if clears:
            assert answer.status_code == 202
            assert await cache_reads.marked(group) == 2
            await cache_reads.unmark(group)  # for the next cells
            continue
        expected_status = 404 if at_api in (AtApi.READS, AtApi.INSUFFICIENT_SCOPE) else 401
        assert answer.status_code == expected_status, answer.text
        assert await cache_reads.marked(group) == 0


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group"), CELLS, ids=[f"{label_of(r, k)}|{g}" for r, k, g in CELLS]
)
async def test_group_pages(cache_reads: Reads, role: str | None, kind: str, group: str) -> None:
    at_api, reads, _ = expected(role, kind, group)
    credential = cache_reads.world.credential(role, kind)
    for page in GROUP_GET_PAGES:
        url = f"/groups/{group}" + (f"/-/{page}" if page else "")
        if page in IMAGE_PAGES:
            url += f"?id={cache_reads.manifest_ids[group]}"
        if at_api is AtApi.SESSION:
            answer = await (await cache_reads.browsers.of(credential)).http.get(url)
        else:  # pages take the session only: a token is nobody there
            headers = {"Authorization": f"Bearer {credential.secret}"}
            answer = await cache_reads.dockyard.http.get(url, headers=headers)
        if role in BLOCKED_ROLES or at_api is not AtApi.SESSION:
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/users/sign_in")
        elif not reads:
            assert answer.status_code == 404, (url, answer.status_code)
        elif page in OWNER_ONLY_PAGES and group not in ROLE_CLEARS.get(role or "", NOWHERE):
            assert answer.status_code == 403, (url, answer.status_code)
        else:
            assert answer.status_code == 200, (url, answer.status_code)
            continue
        _assert_hidden(answer, cache_reads, group)
