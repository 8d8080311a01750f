"""The schema as a contract: committed SDL, operations that validate and run, the
explorer page, and the web session + CSRF path."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, parse, validate
from itsdangerous import TimestampSigner

from app.accounts import records as accounts
from app.accounts import user_sessions
from app.asgi import SESSION_COOKIE
from app.gql.schema import sdl
from app.groups.access_tokens import create_group_access_token
from tests.conftest import TEST_SECRET
from tests.functional.graphql.conftest import OPERATIONS, World
from tests.support.cache_rows import add_blob, add_manifest
from tests.support.operator import OPERATOR

SCHEMA_FILE = OPERATIONS.parent / "schema.graphql"
DOCKYARD = Path(sys.executable).parent / "dockyard"

# Variables that make every committed operation do real work in the `world`.
VARIABLES: dict[str, dict[str, Any]] = {
    "getDependencyProxyDetails": {"fullPath": "acme", "first": 10},
    "getDependencyProxyBlobs": {"fullPath": "acme", "first": 10},
    "getDependencyProxyStatistics": {"fullPath": "acme"},
    "getDependencyProxyUsage": {"fullPath": "acme", "period": "DAILY"},
    "getDependencyProxyCacheClear": {"fullPath": "acme"},
    "getDependencyProxySettings": {"fullPath": "acme"},
    "getGroups": {"search": "acme"},
    "getCurrentUser": {},
    "getGroupMembers": {"fullPath": "acme"},
    "updateDependencyProxySettings": {"input": {"groupPath": "acme", "enabled": True}},
    "updateDependencyProxyImageTtlGroupPolicy": {"input": {"groupPath": "acme", "ttl": 30}},
    "clearDependencyProxyCache": {"groupPath": "acme"},
    "createDependencyProxyWarmJob": {
        "input": {"groupPath": "acme", "images": ["alpine:3.19"], "platforms": ["linux/arm64"]}
    },
    "getDependencyProxyWarmJobs": {"fullPath": "acme", "first": 5},
    # The test's one cached manifest (alpine:latest) is the first row.
    "destroyDependencyProxyManifest": {"id": "gid://dockyard/DependencyProxy::Manifest/1"},
    "updateDependencyProxyManifest": {
        "id": "gid://dockyard/DependencyProxy::Manifest/1",
        "pinned": True,
    },
    "groupCreate": {"path": "acme/new"},
    "groupMemberAdd": {"groupPath": "acme", "username": "sam", "accessLevel": "REPORTER"},
    "groupMemberUpdate": {"groupPath": "acme", "username": "gina", "accessLevel": "REPORTER"},
    "groupMemberRemove": {"groupPath": "acme", "username": "gina"},
    "getDependencyProxyUpstreams": {"fullPath": "acme"},
    "dependencyProxyUpstreamCreate": {
        "input": {"groupPath": "acme", "url": "https://ghcr.io", "username": "u", "password": "p"}
    },
    "dependencyProxyUpstreamDelete": {"groupPath": "acme", "name": "ghcr.io"},
    "groupAccessTokenCreate": {
        "input": {
            "groupPath": "acme",
            "name": "ci",
            "accessLevel": "REPORTER",
            "scopes": ["read_registry", "write_registry"],
        }
    },
    "groupAccessTokenRevoke": {"groupPath": "acme", "name": "existing-bot"},
    "getGroupAccessTokens": {"fullPath": "acme", "first": 10},
    # olga's read_api token (the world's second token), rotated with her api token.
    "personalAccessTokenRotate": {"id": "gid://dockyard/PersonalAccessToken/2"},
}
OPERATION_FILES = sorted(OPERATIONS.glob("*.graphql"))
OPERATION_TEXTS = {path.stem: path.read_text() for path in OPERATION_FILES}


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), (
        "run `dockyard graphql-schema > graphql/schema.graphql`"
    )


def test_cli_prints_the_committed_schema() -> None:
    result = subprocess.run(
        [str(DOCKYARD), "graphql-schema"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCHEMA_FILE.read_text()


def test_no_python_file_under_graphql_folder() -> None:
    assert not list(OPERATIONS.parent.rglob("*.py"))


@pytest.mark.parametrize("path", OPERATION_FILES, ids=lambda path: path.stem)
def test_operation_validates_against_the_schema(path: Path) -> None:
    errors = validate(build_schema(SCHEMA_FILE.read_text()), parse(path.read_text()))
    assert not errors, errors
    assert path.stem in VARIABLES, f"add {path.stem} to VARIABLES so a test executes it"


@pytest.mark.parametrize("name", sorted(OPERATION_TEXTS))
async def test_operation_executes(world: World, name: str) -> None:
    await add_manifest(world.acme, "alpine", "latest")
    await add_blob(world.acme, "layer")
    await create_group_access_token(OPERATOR, world.acme, "existing-bot", "guest", "read_api")
    if name == "dependencyProxyUpstreamDelete":  # something to delete
        create = "dependencyProxyUpstreamCreate"
        await world.data(OPERATION_TEXTS[create], VARIABLES[create], as_user="owner")
    body = await world.gql(OPERATION_TEXTS[name], VARIABLES[name], as_user="owner")
    assert "errors" not in body, body
    [payload] = body["data"].values()
    assert payload is not None
    if isinstance(payload, dict) and "errors" in payload:
        assert payload["errors"] == []


def session_cookie(data: dict[str, Any]) -> str:
    """What Starlette's SessionMiddleware would set after `sessions.sign_in`."""
    payload = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(TEST_SECRET).sign(payload).decode()


async def test_web_session_needs_the_csrf_token_for_posts(world: World) -> None:
    olga = await accounts.get_user("olga")
    started = await user_sessions.start(olga, "127.0.0.1", "test")
    world.client.cookies.set(
        SESSION_COOKIE,
        session_cookie({"session_id": started.secret, "csrf_token": "right-token"}),
    )
    query = {"query": "{ currentUser { username } }"}
    without = await world.client.post("/api/graphql", json=query)
    assert without.json()["data"] == {"currentUser": None}
    wrong = await world.client.post("/api/graphql", json=query, headers={"X-CSRF-Token": "no"})
    assert wrong.json()["data"] == {"currentUser": None}
    right = await world.client.post(
        "/api/graphql", json=query, headers={"X-CSRF-Token": "right-token"}
    )
    assert right.json()["data"] == {"currentUser": {"username": "olga"}}
    mutation = 'mutation { clearDependencyProxyCache(input: {groupPath: "acme"}) { errors } }'
    cleared = await world.client.post(
        "/api/graphql", json={"query": mutation}, headers={"X-CSRF-Token": "right-token"}
    )
    assert cleared.json()["data"] == {"clearDependencyProxyCache": {"errors": []}}
    world.client.cookies.clear()
