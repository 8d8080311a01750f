"""The GraphQL explorer and the pages around it, against a live `dockyard serve`
(issue 8, point 6; issue 10, point 8): the explorer is for signed-in users only,
carries every page's security headers, and no page Dockyard serves makes the
browser load anything from another host (Dockyard runs in networks without internet)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.dockyard_server import DockyardServer

pytestmark = pytest.mark.e2e

EXPLORER = "/-/graphql-explorer"
PASSWORD = "correct horse battery staple"
# Where a page, a stylesheet or a script names something the browser fetches.
HTML_REFERENCE = re.compile(
    r"""\b(?:src|href|action|formaction|poster)\s*=\s*["']([^"']*)""", re.IGNORECASE
)
CSS_REFERENCE = re.compile(r"""url\(\s*["']?([^"')\s]+)|@import\s+["']([^"']+)""")
JS_REFERENCE = re.compile(
    r"""\bimport\s*\(?\s*["']([^"']+)|\bfrom\s*["']([^"']+)|importScripts\(\s*["']([^"']+)"""
)


@dataclass
class Site:
    server: DockyardServer
    admin: httpx.Client
    guest: httpx.Client
    anonymous: httpx.Client


def signed_in(server: DockyardServer, username: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=30, headers={"Accept": "text/html"})
    form = http.get("/users/sign_in").text
    [token] = re.findall(r'name="authenticity_token" value="([^"]+)"', form)
    answer = http.post(
        "/users/sign_in",
        data={"authenticity_token": token, "login": username, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return http


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = DockyardServer(tmp_path_factory.mktemp("pages"), "http://127.0.0.1:9")
    with server:
        server.user("ada", PASSWORD, admin=True)
        server.user("gus", PASSWORD)
        for group in ("acme", "acme/platform"):
            server.cli("group", "create", group)
        server.cli("member", "add", "acme", "ada", "--role", "owner")
        server.cli("member", "add", "acme", "gus", "--role", "guest")
        clients = Site(
            server,
            signed_in(server, "ada"),
            signed_in(server, "gus"),
            httpx.Client(base_url=server.url, timeout=30, headers={"Accept": "text/html"}),
        )
        try:
            yield clients
        finally:
            for http in (clients.admin, clients.guest, clients.anonymous):
                http.close()


def test_anonymous_visitors_get_no_explorer_and_no_csrf_token(site: Site) -> None:
    response = site.anonymous.get(EXPLORER)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/users/sign_in?redirect_to=")
    assert "csrf" not in response.text.lower()


def test_the_explorer_cannot_be_framed_and_runs_only_its_own_scripts(site: Site) -> None:
    response = site.admin.get(EXPLORER)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def outside(reference: str, instance: str) -> bool:
    """An absolute http(s) or protocol-relative URL to a host other than the instance."""
    parts = urlsplit(reference.strip())
    if parts.scheme not in ("", "http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower() != instance


def crawl(http: httpx.Client, starts: list[str]) -> dict[str, str]:
    """Every page reachable by links from `starts` (GET only, same host): url -> HTML."""
    pages: dict[str, str] = {}
    queue = list(starts)
    while queue and len(pages) < 80:
        path = queue.pop(0)
        if path in pages:
            continue
        response = http.get(path)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        pages[path] = response.text
        for link in re.findall(r'<a [^>]*href="([^"#]+)', response.text):
            target = urlsplit(urljoin(path, link))
            if not target.netloc and not target.path.startswith("/-/static/"):
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return pages


def error_pages(site: Site) -> dict[str, str]:
    big_form = {"login": "x", "password": "a" * (2 * 1024 * 1024)}
    answers = {
        "404": site.admin.get("/no/such/page"),
        "403 or 404 (guest on /admin)": site.guest.get("/admin"),
        "413": site.anonymous.post("/users/sign_in", data=big_form),
    }
    assert answers["404"].status_code == 404
    assert answers["403 or 404 (guest on /admin)"].status_code in (403, 404)
    assert answers["413"].status_code == 413
    return {name: response.text for name, response in answers.items()}


def test_no_page_makes_the_browser_fetch_from_another_host(site: Site) -> None:
    instance = site.server.host
    pages = crawl(site.admin, ["/", EXPLORER, "/admin", "/-/user_settings/personal_access_tokens"])
    pages |= crawl(site.guest, ["/"])
    pages["/users/sign_in"] = site.anonymous.get("/users/sign_in").text
    pages |= error_pages(site)
    assert len(pages) >= 10, sorted(pages)  # the crawl reached the group pages
    assert {"/", EXPLORER, "/admin", "/groups/acme/-/dependency_proxy"} <= set(pages)

    offending: list[str] = []
    assets: set[str] = set()
    for name, html in pages.items():
        for reference in HTML_REFERENCE.findall(html):
            if outside(reference, instance):
                offending.append(f"{name}: {reference}")
            elif reference.startswith("/-/static/"):
                assets.add(reference)
    assert {"/-/static/vendor/graphiql/graphiql.min.js", "/-/static/dockyard.css"} <= assets
    for asset in sorted(assets):
        response = site.anonymous.get(asset)
        assert response.status_code == 200, asset
        pattern = JS_REFERENCE if asset.endswith(".js") else CSS_REFERENCE
        if asset.endswith((".js", ".css")):
            for groups in pattern.findall(response.text):
                references = [groups] if isinstance(groups, str) else [g for g in groups if g]
                offending += [f"{asset}: {ref}" for ref in references if outside(ref, instance)]
    assert offending == []
