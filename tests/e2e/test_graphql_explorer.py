"""The GraphQL explorer in a real browser, with every other host unreachable (issue 10,
point 8: it stayed blank offline, loading React and GraphiQL from a CDN)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.web_support import PASSWORD, browser, dockyard, new_page
from tests.support.dockyard_server import DockyardServer

pytestmark = pytest.mark.e2e
__all__ = ["browser", "dockyard", "new_page"]  # fixtures used by name below


def offline(page: Any, instance: str) -> list[str]:
    """Abort every request to another host; returns the list of those attempted."""
    attempted: list[str] = []

    def handle(route: Any) -> None:
        if route.request.url.startswith(instance):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    page.context.route("**/*", handle)
    return attempted


def test_the_explorer_runs_a_query_offline_with_the_session(
    dockyard: DockyardServer, new_page: Any
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    dockyard.user("olga", PASSWORD)
    dockyard.cli("group", "create", "explorers")
    dockyard.cli("member", "add", "explorers", "olga", "--role", "owner")
    page = new_page()
    attempted = offline(page, dockyard.url)
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto("/-/graphql-explorer")
    assert "/users/sign_in?redirect_to=" in page.url  # signed out: no explorer
    page.fill("#login", "olga")  # the sign-in form leads back to the explorer
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Sign in')")
    page.wait_for_url(f"{dockyard.url}/-/graphql-explorer")

    page.click(".graphiql-execute-button")  # the default query: currentUser and groups
    response = page.locator(".graphiql-response")
    expect(response).to_contain_text('"username": "olga"')
    expect(response).to_contain_text('"fullPath": "explorers"')

    page.click("button[aria-label='Show Documentation Explorer']")  # the schema, by introspection
    expect(page.locator(".graphiql-doc-explorer")).to_contain_text("Query")

    assert attempted == []
    assert problems == []  # no script error, no blocked resource (CSP)
