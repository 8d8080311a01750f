"""The GraphQL explorer page (web/graphql_explorer.py): signed-in users only, the
security headers of every page, assets from Dockyard itself, the CSRF token in a meta tag."""

from __future__ import annotations

import re

import httpx

from tests.functional.web.conftest import Browser

EXPLORER = "/-/graphql-explorer"


async def test_anonymous_visitors_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get(EXPLORER)
    assert response.status_code == 303
    assert response.headers["location"] == "/users/sign_in?redirect_to=/-/graphql-explorer"
    assert "csrf" not in response.text.lower()


async def test_the_page_has_the_security_headers_of_every_page(as_owner: Browser) -> None:
    explorer = await as_owner.get(EXPLORER)
    dashboard = await as_owner.get("/")
    assert explorer.status_code == 200
    for header in (
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Cache-Control",
        "Referrer-Policy",
    ):
        assert explorer.headers[header] == dashboard.headers[header], header
    assert "frame-ancestors 'none'" in explorer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in explorer.headers["Content-Security-Policy"]
    assert explorer.headers["X-Frame-Options"] == "DENY"


async def test_the_page_has_no_inline_script_and_loads_only_local_assets(
    as_owner: Browser,
) -> None:
    html = (await as_owner.get(EXPLORER)).text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts, "the explorer loads its scripts"
    for attributes, body in scripts:
        assert body.strip() == "", "an inline script (the CSP would block it)"
        [source] = re.findall(r'src="([^"]+)"', attributes)
        assert source.startswith("/-/static/")
        assert (await as_owner.get(source)).status_code == 200, source
    for stylesheet in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html):
        assert (await as_owner.get(stylesheet)).status_code == 200, stylesheet


async def test_the_session_csrf_token_reaches_the_script_through_a_meta_tag(
    as_owner: Browser,
) -> None:
    html = (await as_owner.get(EXPLORER)).text
    [token] = re.findall(r'<meta name="csrf-token" content="([^"]+)">', html)
    query = {"query": "{ currentUser { username } }"}
    answer = await as_owner.http.post("/api/graphql", json=query, headers={"X-CSRF-Token": token})
    assert answer.json()["data"] == {"currentUser": {"username": "olivia"}}
