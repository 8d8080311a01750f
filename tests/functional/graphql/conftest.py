"""A small world for the API tests: two groups, an Owner, a Guest, a stranger, an admin,
each with a personal access token; helpers to post GraphQL and to add cache rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts import records as accounts
from app.groups import records as groups
from app.groups.models import AccessLevel, Group

OPERATIONS = Path(__file__).parents[3] / "graphql" / "operations"


def operation(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text()


@dataclass
class World:
    client: httpx.AsyncClient
    acme: Group
    other: Group
    tokens: dict[str, str]

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_user: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[as_user]}"} if as_user else {}
        response = await self.client.post(
            "/api/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, as_user: str | None = None
    ) -> dict[str, Any]:
        body = await self.gql(query, variables, as_user=as_user)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]


async def _user_with_token(name: str, scopes: str, *, admin: bool = False) -> str:
    user = await accounts.find_user(name) or await accounts.create_user(
        name, f"{name}@example.com", f"{name}-password", is_admin=admin
    )
    return (await accounts.create_personal_access_token(user, f"{name}-{scopes}", scopes)).secret


@pytest.fixture
async def world(client: httpx.AsyncClient) -> AsyncIterator[World]:
    acme = await groups.create_group("Acme", name="Acme Corp")
    other = await groups.create_group("other")
    tokens = {
        "owner": await _user_with_token("olga", "api"),
        "owner_read_api": await _user_with_token("olga", "read_api"),
        "owner_registry": await _user_with_token("olga", "read_registry"),
        "guest": await _user_with_token("gina", "api"),
        "stranger": await _user_with_token("sam", "api"),
        "admin": await _user_with_token("ada", "api", admin=True),
    }
    await groups.add_member(acme, await accounts.get_user("olga"), AccessLevel.OWNER)
    await groups.add_member(acme, await accounts.get_user("gina"), AccessLevel.GUEST)
    await groups.add_member(other, await accounts.get_user("sam"), AccessLevel.OWNER)
    yield World(client=client, acme=acme, other=other, tokens=tokens)
