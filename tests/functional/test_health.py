from pathlib import Path

import httpx
import pytest

from app.asgi import create_app
from app.config import Settings, load_settings, prepare_data_dir


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/-/liveness")).json() == {"status": "ok"}
    ready = await client.get("/-/readiness")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "data_dir": "ok"}


async def test_readiness_is_503_when_the_data_dir_is_gone(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    moved = settings.data_dir.with_name("moved-away")
    settings.data_dir.rename(moved)
    try:
        answer = await client.get("/-/readiness")
    finally:
        moved.rename(settings.data_dir)
    assert answer.status_code == 503
    assert answer.json()["checks"]["data_dir"] == "not writable"


async def test_readiness_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = prepare_data_dir(
        load_settings(
            {},
            data_dir=tmp_path / "data",
            database_url="postgres://nobody:nothing@127.0.0.1:1/none",
            secret_key="s" * 40,
        )
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/-/readiness")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"].startswith("unreachable")


async def test_unknown_paths_get_a_json_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/no/such/page")
    assert answer.status_code == 404
    assert answer.json() == {"error": "not found"}


async def test_access_log_has_one_line_per_request_and_no_secrets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="dockyard.access")
    await client.get("/-/liveness?private_token=sekrit", headers={"Authorization": "Bearer sekrit"})
    lines = [record.getMessage() for record in caplog.records if record.name == "dockyard.access"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /-/liveness 200 ")
    assert "sekrit" not in caplog.text


async def test_browsers_get_an_html_404_page_and_clients_json(client: httpx.AsyncClient) -> None:
    page = await client.get("/no/such/page", headers={"Accept": "text/html,*/*"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = await client.get("/api/nothing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json() == {"error": "not found"}
