"""`/jwt/auth` holds password guessing back: 429 TOOMANYREQUESTS with Retry-After."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette

from app.accounts import records as accounts

PASSWORD = "brute-force-target-1"
Client = Callable[[str], Awaitable[httpx.AsyncClient]]


def basic(username: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


@pytest.fixture
async def from_address(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[Client]:
    """Clients of the running app, each from the client address it is given."""
    opened: list[httpx.AsyncClient] = []

    async def make(address: str) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://dockyard.test",
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def get_token(http: httpx.AsyncClient, username: str, secret: str) -> httpx.Response:
    return await http.get(
        "/jwt/auth", params={"service": "dependency_proxy"}, headers=basic(username, secret)
    )


async def post_token(http: httpx.AsyncClient, username: str, secret: str) -> httpx.Response:
    """containerd's form: grant_type=password with the credentials in the body."""
    form = {
        "grant_type": "password",
        "service": "dependency_proxy",
        "client_id": "containerd-client",
        "username": username,
        "password": secret,
    }
    return await http.post("/jwt/auth", data=form)


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) >= 1
    (error,) = answer.json()["errors"]
    assert error["code"] == "TOOMANYREQUESTS"
    assert error["message"].startswith("too many failed sign-in attempts: try again in")


@pytest.mark.parametrize("send", [get_token, post_token], ids=["GET", "POST"])
async def test_wrong_passwords_then_even_the_right_one_waits(
    from_address: Client, send: Callable[..., Awaitable[httpx.Response]]
) -> None:
    await accounts.create_user("brute", "brute@example.com", PASSWORD)
    attacker, owner = await from_address("127.0.0.2"), await from_address("127.0.0.1")
    statuses = [(await send(attacker, "brute", f"guess-{n}")).status_code for n in range(60)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert_throttled(await send(attacker, "brute", PASSWORD))
    # The owner, from another address, is not held back.
    answer = await send(owner, "brute", PASSWORD)
    assert answer.status_code == 200 and answer.json()["token"]


async def test_username_and_email_count_as_one_account(from_address: Client) -> None:
    await accounts.create_user("brute", "brute@example.com", PASSWORD)
    attacker = await from_address("127.0.0.2")
    for login in ("brute", "brute@example.com", "brute", "brute@example.com", "BRUTE"):
        assert (await get_token(attacker, login, "wrong!")).status_code == 401
    assert_throttled(await get_token(attacker, "brute@example.com", PASSWORD))
    assert_throttled(await post_token(attacker, "brute", PASSWORD))


async def test_tokens_are_not_throttled(from_address: Client) -> None:
    user = await accounts.create_user("brute", "brute@example.com", PASSWORD)
    token = (await accounts.create_personal_access_token(user, "ci", "api")).secret
    http = await from_address("127.0.0.2")
    for _ in range(10):
        assert (await get_token(http, "brute", "dypat-not-a-real-token")).status_code == 401
    for _ in range(5):
        await get_token(http, "brute", "wrong!")
    assert_throttled(await get_token(http, "brute", PASSWORD))
    assert (await get_token(http, "brute", token)).status_code == 200


async def test_the_metric_counts_throttled_checks_by_surface(from_address: Client) -> None:
    admin = await accounts.create_user("ada", "ada@example.com", "ada-password", is_admin=True)
    scrape = (await accounts.create_personal_access_token(admin, "m", "read_api")).secret
    http = await from_address("127.0.0.2")

    async def throttled() -> float:
        text = (await http.get("/metrics", headers={"PRIVATE-TOKEN": scrape})).text
        line = next(
            (
                item
                for item in text.splitlines()
                if 'dockyard_auth_throttled_total{surface="registry"}' in item
            ),
            None,
        )
        return float(line.split()[-1]) if line else 0.0

    before = await throttled()
    for _ in range(8):
        await get_token(http, "ghost", "wrong!")
    assert await throttled() == before + 3
