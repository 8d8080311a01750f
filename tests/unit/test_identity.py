"""The one authentication backend: which credential each path takes, and what it makes of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import HTTPConnection

from app.accounts import records as accounts
from app.accounts import registry_tokens, user_sessions
from app.accounts.principal import Principal
from app.accounts.sessions import CSRF_KEY, SESSION_KEY
from app.config import Settings
from app.identity import DockyardAuthentication, Failure, Identity, Via

pytestmark = pytest.mark.usefixtures("database")


def connection(
    path: str, method: str = "GET", headers: dict[str, str] | None = None, session: Any = None
) -> HTTPConnection:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "query_string": b"",
        "session": session if session is not None else {},
    }
    return HTTPConnection(scope)


async def identify(settings: Settings, conn: HTTPConnection) -> Identity:
    identity, user = await DockyardAuthentication(settings).authenticate(conn)
    assert user.principal is identity.principal
    return identity


@pytest.fixture
async def alice() -> dict[str, Any]:
    user = await accounts.create_user("alice", "alice@example.com", "alice-password-1")
    api = await accounts.create_personal_access_token(user, "api", "api")
    registry = await accounts.create_personal_access_token(user, "reg", "read_registry")
    session = await user_sessions.start(user, "127.0.0.1", "test")
    return {
        "user": user,
        "api": api.secret,
        "registry": registry.secret,
        "session": {SESSION_KEY: session.secret, CSRF_KEY: "csrf-1"},
    }


async def test_api_takes_tokens_in_both_headers(settings: Settings, alice: dict) -> None:
    for headers in ({"PRIVATE-TOKEN": alice["api"]}, {"Authorization": f"Bearer {alice['api']}"}):
        identity = await identify(settings, connection("/api/graphql", "POST", headers))
        assert identity.via is Via.ACCESS_TOKEN and identity.failure is None
        assert identity.principal is not None and identity.principal.user is not None
        assert identity.principal.user.username == "alice"


async def test_api_says_why_a_token_does_not_serve(settings: Settings, alice: dict) -> None:
    bad = await identify(settings, connection("/api/graphql", headers={"PRIVATE-TOKEN": "dypat-x"}))
    assert bad.principal is None and bad.failure is Failure.INVALID_TOKEN
    narrow = await identify(
        settings, connection("/api/graphql", headers={"PRIVATE-TOKEN": alice["registry"]})
    )
    assert narrow.failure is Failure.INSUFFICIENT_SCOPE and narrow.principal is not None


async def test_the_session_counts_on_the_api_for_unsafe_methods_only_with_the_header(
    settings: Settings, alice: dict
) -> None:
    session = alice["session"]
    read = await identify(settings, connection("/api/graphql", session=dict(session)))
    assert read.via is Via.SESSION
    post = await identify(settings, connection("/api/graphql", "POST", session=dict(session)))
    assert post.principal is None
    headers = {"X-CSRF-Token": "csrf-1"}
    ok = await identify(settings, connection("/api/graphql", "POST", headers, dict(session)))
    assert ok.via is Via.SESSION
    # The REST API never takes the cookie, header or not.
    rest = connection("/api/v4/groups/1/dependency_proxy/cache", "DELETE", headers, session)
    assert (await identify(settings, rest)).principal is None


async def test_pages_take_the_session_and_nothing_else(settings: Settings, alice: dict) -> None:
    token = {"Authorization": f"Bearer {alice['api']}"}
    assert (await identify(settings, connection("/admin", headers=token))).principal is None
    page = await identify(settings, connection("/admin", session=dict(alice["session"])))
    assert page.via is Via.SESSION and page.principal is not None
    assert page.principal.session is not None


async def test_v2_takes_only_a_registry_jwt_and_looks_its_principal_up(
    settings: Settings, alice: dict
) -> None:
    api_token = {"Authorization": f"Bearer {alice['api']}"}
    assert (await identify(settings, connection("/v2/", headers=api_token))).principal is None
    issued = registry_tokens.issue(
        Principal(user=alice["user"]), [], settings.secret_key, timedelta(minutes=5)
    )
    jwt = {"Authorization": f"Bearer {issued.token}"}
    found = await identify(settings, connection("/v2/", headers=jwt))
    assert found.via is Via.REGISTRY_TOKEN and found.registry_claims is not None
    # The password changes: a token obtained with the old one stands for no one.
    await accounts.set_password(alice["user"], "another-password-2")
    gone = await identify(settings, connection("/v2/", headers=jwt))
    assert gone.principal is None and gone.failure is Failure.PRINCIPAL_GONE


async def test_metrics_token_is_the_only_key_when_set(settings: Settings, alice: dict) -> None:
    with_token = replace(settings, metrics_token="m" * 40)
    scraper = await identify(
        with_token, connection("/metrics", headers={"Authorization": "Bearer " + "m" * 40})
    )
    assert scraper.principal == Principal.metrics_scraper()
    admin_token = {"Authorization": f"Bearer {alice['api']}"}
    refused = await identify(with_token, connection("/metrics", headers=admin_token))
    assert refused.principal is None and refused.failure is Failure.INVALID_TOKEN
    # Without a metrics token, /metrics takes API tokens.
    plain = await identify(settings, connection("/metrics", headers=admin_token))
    assert plain.via is Via.ACCESS_TOKEN


async def test_the_login_static_files_and_probes_need_nothing(settings: Settings) -> None:
    for path in ("/jwt/auth", "/-/static/dockyard.css", "/-/liveness", "/-/readiness"):
        identity = await identify(settings, connection(path))
        assert identity.principal is None and identity.failure is None


def test_no_surface_mentions_the_operator_principal() -> None:
    """`Principal.operator()` is the command line's; no HTTP code path may build one."""
    root = Path(__file__).resolve().parents[2]
    for package in ("registry", "web", "app/api", "app/gql", "app/identity.py"):
        for path in (
            (root / package).rglob("*.py") if (root / package).is_dir() else [root / package]
        ):
            assert "operator()" not in path.read_text(), path
