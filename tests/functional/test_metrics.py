"""/metrics: Prometheus text, never open to everyone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.accounts import records as accounts
from app.asgi import create_app
from app.config import Settings, load_settings, prepare_data_dir

METRICS_TOKEN = "metrics-" + "m" * 40


async def admin_and_user_tokens() -> tuple[str, str]:
    ada = await accounts.create_user("ada", "ada@example.com", "ada-password", is_admin=True)
    sam = await accounts.create_user("sam", "sam@example.com", "sam-password")
    admin = await accounts.create_personal_access_token(ada, "metrics", "read_api")
    user = await accounts.create_personal_access_token(sam, "metrics", "api")
    return admin.secret, user.secret


async def test_without_a_metrics_token_only_admins_read(client: httpx.AsyncClient) -> None:
    admin, user = await admin_and_user_tokens()
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"PRIVATE-TOKEN": "nonsense"})).status_code == 401
    assert (await client.get("/metrics", headers={"PRIVATE-TOKEN": user})).status_code == 404
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "dockyard_cache_requests" in response.text


@pytest.fixture
async def token_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with DOCKYARD_METRICS_TOKEN set."""
    with_token = prepare_data_dir(
        load_settings(
            {},
            data_dir=settings.data_dir,
            secret_key=settings.secret_key,
            external_url=settings.external_url,
            metrics_token=METRICS_TOKEN,
        )
    )
    app = create_app(with_token)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dockyard.test") as http:
            yield http


async def test_metrics_token_is_required_when_set(token_client: httpx.AsyncClient) -> None:
    client = token_client
    admin, _ = await admin_and_user_tokens()
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    # With a metrics token configured, the token is the only key.
    by_admin = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert by_admin.status_code == 401
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "dockyard_http_requests" in ok.text


def sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_requests_and_live_figures_are_counted(client: httpx.AsyncClient) -> None:
    admin, _ = await admin_and_user_tokens()
    auth = {"Authorization": f"Bearer {admin}"}
    liveness = 'dockyard_http_requests_total{route="liveness",status="200"}'
    challenged = 'dockyard_http_requests_total{route="v2_root",status="401"}'
    before = (await client.get("/metrics", headers=auth)).text
    await client.get("/-/liveness")
    await client.get("/-/liveness")
    await client.get("/v2/")
    after = (await client.get("/metrics", headers=auth)).text
    assert sample(after, liveness) - sample(before, liveness) == 2
    assert sample(after, challenged) - sample(before, challenged) == 1
    assert "dockyard_downloads_in_flight 0.0" in after


async def test_an_admin_s_api_token_reads_metrics_too(client: httpx.AsyncClient) -> None:
    """`api` implies `read_api`: the README's "any admin token" holds for `api` tokens."""
    ada = await accounts.create_user("ada", "ada@example.com", "ada-password", is_admin=True)
    sam = await accounts.create_user("sam", "sam@example.com", "sam-password")
    admin_api = await accounts.create_personal_access_token(ada, "scripts", "api")
    registry_only = await accounts.create_personal_access_token(ada, "pulls", "read_registry")
    user_api = await accounts.create_personal_access_token(sam, "scripts", "api")
    for header in ("PRIVATE-TOKEN", "Authorization"):
        value = admin_api.secret if header == "PRIVATE-TOKEN" else f"Bearer {admin_api.secret}"
        answer = await client.get("/metrics", headers={header: value})
        assert answer.status_code == 200 and "dockyard_http_requests" in answer.text
    # An admin's token without an API scope, and a non-admin's api token: not found.
    for secret in (registry_only.secret, user_api.secret):
        answer = await client.get("/metrics", headers={"PRIVATE-TOKEN": secret})
        assert answer.status_code == 404
