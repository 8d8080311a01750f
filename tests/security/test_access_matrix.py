"""The cross-group access matrix: who may pull what, from which group, with which credential.

Read the three tables below as the policy (README "Groups, roles and tokens",
DESIGN.md §3 "Who may do what"); the tests check every cell of

    credential (9 roles x 7 user credentials, 6 deploy tokens, 6 group access tokens)
    x group (acme, acme/platform, beta, zeta)
    x what (manifest by tag, manifest by digest, blob) x method (GET, HEAD)

against a Dockyard whose four groups all hold the image in their cache (filled
once per module from the real reference registry), so a refusal is never
"nothing cached". For each cell a client does what docker does: ask
`/jwt/auth` for the repository, then pull with the token it got. A second
request uses a token that grants the repository anyway (as one issued before
access was lost would): the pull itself must apply the policy again.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

import httpx
import pytest
import pytest_asyncio

from app.accounts import registry_tokens
from app.accounts.registry_tokens import GrantedAccess
from tests.security.registry_answers import (
    ask_for_token,
    assert_challenge,
    assert_nothing_served,
    assert_oci_error,
    basic,
    bearer,
    granted_access,
    pull_scope,
    repository,
)
from tests.security.tenancy import (
    DEPLOY_TOKENS,
    FOREIGN,
    GROUP_ACCESS_TOKENS,
    GROUPS,
    SUB,
    TOP,
    USER_CREDENTIALS,
    Credential,
    InProcessDockyard,
    Tenancy,
    credential_labels,
    label_of,
)
from tests.support.images import Image, SeededImages

pytestmark = pytest.mark.e2e  # the reference registry is the upstream
# The tests share the module's Dockyard, so they run in its event loop.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

EVERYWHERE = frozenset(GROUPS)
NOWHERE: frozenset[str] = frozenset()
ACME_AND_SUBGROUPS = frozenset({TOP, SUB})

# 1. Where each role may pull. A role in a group counts in its subgroups (not in
#    its parent); instance admins may pull everywhere; a public group opens
#    nothing to non-members; a blocked user is refused everywhere.
ROLE_PULLS_FROM: dict[str, frozenset[str]] = {
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
BLOCKED_ROLES = {"blocked Owner"}


class AtTokenEndpoint(Enum):
    ACCEPTED = "200: a token, with the repository when the pull is allowed"
    FORBIDDEN = "403 DENIED: valid, but may not use the Dependency Proxy"
    UNAUTHORIZED = "401 UNAUTHORIZED: expired, revoked, or its user is blocked"


# 2. What /jwt/auth makes of a user's credential: the password, a PAT with `api`
#    or with both registry scopes; not `read_registry` alone, not `read_api`.
USER_CREDENTIAL_POLICY: dict[str, AtTokenEndpoint] = {
    "password": AtTokenEndpoint.ACCEPTED,
    "PAT api": AtTokenEndpoint.ACCEPTED,
    "PAT read_registry+write_registry": AtTokenEndpoint.ACCEPTED,
    "PAT read_registry": AtTokenEndpoint.FORBIDDEN,
    "PAT read_api": AtTokenEndpoint.FORBIDDEN,
    "PAT api, expired": AtTokenEndpoint.UNAUTHORIZED,
    "PAT api, revoked": AtTokenEndpoint.UNAUTHORIZED,
}

# 3. Deploy tokens: both registry scopes, for their own group and its subgroups.
DEPLOY_TOKEN_POLICY: dict[str, tuple[AtTokenEndpoint, frozenset[str]]] = {
    "deploy token of acme": (AtTokenEndpoint.ACCEPTED, ACME_AND_SUBGROUPS),
    "deploy token of acme/platform": (AtTokenEndpoint.ACCEPTED, frozenset({SUB})),
    "deploy token of zeta": (AtTokenEndpoint.ACCEPTED, frozenset({FOREIGN})),
    "deploy token of acme, read_registry only": (AtTokenEndpoint.FORBIDDEN, NOWHERE),
    "deploy token of acme, expired": (AtTokenEndpoint.UNAUTHORIZED, NOWHERE),
    "deploy token of acme, revoked": (AtTokenEndpoint.UNAUTHORIZED, NOWHERE),
}


# 4. Group access tokens: a bot member of their group with their role, reaching the
#    group and its subgroups (never the parent, never another group); `api`, or both
#    registry scopes, as for personal access tokens; any username at `docker login`.
GROUP_ACCESS_TOKEN_POLICY: dict[str, tuple[AtTokenEndpoint, frozenset[str]]] = {
    "group access token of acme, Guest, registry": (AtTokenEndpoint.ACCEPTED, ACME_AND_SUBGROUPS),
    "group access token of acme/platform, Developer, api": (
        AtTokenEndpoint.ACCEPTED,
        frozenset({SUB}),
    ),
    "group access token of zeta, Owner, api": (AtTokenEndpoint.ACCEPTED, frozenset({FOREIGN})),
    "group access token of acme, Reporter, read_api": (AtTokenEndpoint.FORBIDDEN, NOWHERE),
    "group access token of acme, Owner, api, expired": (AtTokenEndpoint.UNAUTHORIZED, NOWHERE),
    "group access token of acme, Owner, api, revoked": (AtTokenEndpoint.UNAUTHORIZED, NOWHERE),
}


def expected(role: str | None, kind: str, group: str) -> tuple[AtTokenEndpoint, bool]:
    """(what /jwt/auth answers, whether the pull is allowed) for one cell."""
    if role is None:
        tables = {**DEPLOY_TOKEN_POLICY, **GROUP_ACCESS_TOKEN_POLICY}
        at_endpoint, reach = tables[kind]
    elif role in BLOCKED_ROLES:
        at_endpoint, reach = AtTokenEndpoint.UNAUTHORIZED, NOWHERE
    else:
        at_endpoint, reach = USER_CREDENTIAL_POLICY[kind], ROLE_PULLS_FROM[role]
    allowed = at_endpoint is AtTokenEndpoint.ACCEPTED and group in reach
    return at_endpoint, allowed


def test_the_tables_cover_every_credential_the_tenants_hold() -> None:
    assert set(USER_CREDENTIAL_POLICY) == set(USER_CREDENTIALS)
    assert set(DEPLOY_TOKEN_POLICY) == set(DEPLOY_TOKENS)
    assert set(GROUP_ACCESS_TOKEN_POLICY) == set(GROUP_ACCESS_TOKENS)
    assert {role for role, _ in credential_labels() if role} == set(ROLE_PULLS_FROM)


WHATS = ("manifest by tag", "manifest by digest", "blob")
METHODS = ("GET", "HEAD")
TOKEN_CELLS = [(role, kind, group) for role, kind in credential_labels() for group in GROUPS]
PULL_CELLS = [
    (role, kind, group, what, method)
    for role, kind, group in TOKEN_CELLS
    for what in WHATS
    for method in METHODS
]


def _id(*parts: str | None) -> str:
    role, kind, *rest = parts
    return "|".join([label_of(role, kind or ""), *(part or "" for part in rest)])


class Matrix:
    """The module's Dockyard, its tenants, the cached image, and tokens asked for once."""

    def __init__(self, dockyard: InProcessDockyard, world: Tenancy, image: Image) -> None:
        self.dockyard = dockyard
        self.world = world
        self.image = image
        self.layer = image.layers[1]
        self._answers: dict[tuple[str, str], httpx.Response] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self.dockyard.http

    def path(self, group: str, what: str) -> str:
        tail = {
            "manifest by tag": f"manifests/{self.image.tag}",
            "manifest by digest": f"manifests/{self.image.digest}",
            "blob": f"blobs/{self.layer.digest}",
        }[what]
        return f"/v2/{repository(group)}/{tail}"

    async def token_answer(self, credential: Credential, group: str) -> httpx.Response:
        key = (credential.label, group)
        if key not in self._answers:
            self._answers[key] = await ask_for_token(self.http, credential, repository(group))
        return self._answers[key]

    def stale_grant(self, credential: Credential, group: str) -> str:
        """A token naming the repository, as one issued before access was lost."""
        access = [GrantedAccess("repository", repository(group), ("pull",))]
        issued = registry_tokens.issue(
            credential.principal, access, self.dockyard.settings.secret_key, timedelta(minutes=15)
        )
        return issued.token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def access_matrix(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy, seeded_images: SeededImages
) -> Matrix:
    """Every group pulls the image once (as the admin), so every cell meets a warm cache."""
    matrix = Matrix(tenancy_dockyard, tenancy_world, seeded_images.alpine)
    admin = tenancy_world.credential("instance admin", "PAT api")
    for group in GROUPS:
        token = (await matrix.token_answer(admin, group)).json()["token"]
        for what in WHATS:
            answer = await matrix.http.get(matrix.path(group, what), headers=bearer(token))
            assert answer.status_code == 200, answer.text
    return matrix


@in_module_loop
@pytest.mark.parametrize(("role", "kind", "group"), TOKEN_CELLS, ids=[_id(*c) for c in TOKEN_CELLS])
async def test_token_endpoint(
    access_matrix: Matrix, role: str | None, kind: str, group: str
) -> None:
    credential = access_matrix.world.credential(role, kind)
    at_endpoint, allowed = expected(role, kind, group)
    answer = await access_matrix.token_answer(credential, group)
    if at_endpoint is AtTokenEndpoint.UNAUTHORIZED:
        assert_oci_error(answer, 401, "UNAUTHORIZED")
        assert "token" not in answer.json()
    elif at_endpoint is AtTokenEndpoint.FORBIDDEN:
        assert_oci_error(answer, 403, "DENIED")
        assert "token" not in answer.json()
    else:
        assert answer.status_code == 200, answer.text
        repo = repository(group)
        wanted = [{"type": "repository", "name": repo, "actions": ["pull"]}]
        assert granted_access(answer.json()["token"]) == (wanted if allowed else [])


def _assert_served(answer: httpx.Response, matrix: Matrix, what: str) -> None:
    blob = what == "blob"
    digest, body, size = (
        (matrix.layer.digest, matrix.layer.data, matrix.layer.size)
        if blob
        else (matrix.image.digest, matrix.image.manifest, matrix.image.size)
    )
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["docker-content-digest"] == digest
    assert answer.headers["content-length"] == str(size)
    if answer.request.method == "GET":
        assert answer.content == body


@in_module_loop
@pytest.mark.parametrize(
    ("role", "kind", "group", "what", "method"), PULL_CELLS, ids=[_id(*c) for c in PULL_CELLS]
)
async def test_pull(
    access_matrix: Matrix, role: str | None, kind: str, group: str, what: str, method: str
) -> None:
    matrix = access_matrix
    credential = matrix.world.credential(role, kind)
    at_endpoint, allowed = expected(role, kind, group)
    path, scope = matrix.path(group, what), pull_scope(repository(group))
    secrets = (matrix.image.manifest, matrix.layer.data or b"")

    # As docker does: the token /jwt/auth gave, or (refused there) the credential itself.
    token_answer = await matrix.token_answer(credential, group)
    if token_answer.status_code == 200:
        headers = bearer(token_answer.json()["token"])
    else:
        headers = basic(credential.username, credential.secret)
    answer = await matrix.http.request(method, path, headers=headers)
    if allowed:
        _assert_served(answer, matrix, what)
    elif at_endpoint is AtTokenEndpoint.ACCEPTED:
        # A valid token without the repository, for a group it may not pull from:
        # 404, the answer a stale grant gets too (docker prints its message).
        assert_oci_error(answer, 404, "NAME_UNKNOWN")
        assert_nothing_served(answer, *secrets)
    else:
        assert_challenge(answer, scope=scope)
        assert_nothing_served(answer, *secrets)

    # A token that names the repository anyway: the pull checks the policy again.
    stale = await matrix.http.request(
        method, path, headers=bearer(matrix.stale_grant(credential, group))
    )
    if allowed:
        _assert_served(stale, matrix, what)
        return
    if at_endpoint is AtTokenEndpoint.UNAUTHORIZED:
        assert_challenge(stale, scope=scope, error="invalid_token")
    else:
        assert_oci_error(stale, 404, "NAME_UNKNOWN")
    assert_nothing_served(stale, *secrets)
