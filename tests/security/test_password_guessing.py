"""Password guessing against a live Dockyard from two client addresses: the attacker
(127.0.0.2) is held back everywhere a password is checked, the owner (127.0.0.1) is not,
and the counts hold across processes and instances sharing one database."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.security.accounts_support import (
    ATTACKER_ADDRESS,
    OWNER_ADDRESS,
    PASSWORD,
    WebClient,
    live_server,
    server,
    web,
)
from tests.support.dockyard_server import DockyardServer
from tests.support.postgres import PostgresServer

__all__ = ["server", "web"]  # fixtures used by name below
Send = Callable[[httpx.Client, str, str], httpx.Response]


def client(base_url: str, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=30
    )


def get_token(http: httpx.Client, username: str, password: str) -> httpx.Response:
    """docker's way: GET with HTTP Basic."""
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    return http.get(
        "/jwt/auth",
        params={"service": "dependency_proxy"},
        headers={"Authorization": f"Basic {basic}"},
    )


def post_token(http: httpx.Client, username: str, password: str) -> httpx.Response:
    """containerd's way: a POSTed form with grant_type=password."""
    form = {
        "grant_type": "password",
        "service": "dependency_proxy",
        "client_id": "containerd",
        "username": username,
        "password": password,
    }
    return http.post("/jwt/auth", data=form)


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    (error,) = answer.json()["errors"]
    assert error["code"] == "TOOMANYREQUESTS"
    assert "too many failed sign-in attempts" in error["message"]


@pytest.fixture
def owner(server: DockyardServer, request: pytest.FixtureRequest) -> str:
    name = "own" + "".join(ch for ch in request.node.name if ch.isalnum())[-20:].lower()
    server.user(name, PASSWORD)
    return name


@pytest.mark.parametrize("send", [get_token, post_token], ids=["GET", "POST"])
def test_sixty_wrong_passwords_then_the_right_one_is_refused_but_not_for_the_owner(
    server: DockyardServer, owner: str, send: Send
) -> None:
    with client(server.url, ATTACKER_ADDRESS) as attacker:
        statuses = [send(attacker, owner, f"guess number {n}").status_code for n in range(60)]
        assert statuses.count(401) == 5 and statuses.count(429) == 55
        assert_throttled(send(attacker, owner, PASSWORD))
    with client(server.url, OWNER_ADDRESS) as own:
        answer = send(own, owner, PASSWORD)
        assert answer.status_code == 200 and answer.json()["token"]


def test_the_sign_in_form_holds_the_attacker_back_and_lets_the_owner_in(
    server: DockyardServer, web: type[WebClient], owner: str
) -> None:
    attacker = web(ATTACKER_ADDRESS)
    statuses = [attacker.sign_in(owner, f"guess {n}").status_code for n in range(20)]
    assert statuses.count(401) == 5 and statuses.count(429) == 15
    refused = attacker.sign_in(owner)
    assert refused.status_code == 429 and "Too many failed sign-in attempts" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    # The attacker's /jwt/auth attempts from that address wait too: one account, one count.
    with client(server.url, ATTACKER_ADDRESS) as http:
        assert_throttled(get_token(http, owner, PASSWORD))
    owner_browser = web(OWNER_ADDRESS)
    assert owner_browser.sign_in(owner).status_code == 303
    assert owner_browser.signed_in()


def test_username_and_email_are_one_account(server: DockyardServer, owner: str) -> None:
    with client(server.url, ATTACKER_ADDRESS) as attacker:
        for login in (owner, f"{owner}@example.com") * 2 + (owner.upper(),):
            assert get_token(attacker, login, "wrong guess").status_code == 401
        assert_throttled(get_token(attacker, f"{owner}@example.com", PASSWORD))
        assert_throttled(post_token(attacker, owner, PASSWORD))


def test_the_count_holds_across_two_worker_processes(tmp_path: Path) -> None:
    with live_server(tmp_path / "workers", DOCKYARD_WORKERS="2") as running:
        running.user("brute", PASSWORD)
        statuses = []
        for n in range(30):  # a new connection each time: the kernel spreads them
            with client(running.url, ATTACKER_ADDRESS) as http:
                statuses.append(get_token(http, "brute", f"guess {n}").status_code)
        assert statuses.count(401) == 5 and statuses.count(429) == 25


def test_the_count_holds_across_two_instances_on_one_sqlite_database(tmp_path: Path) -> None:
    first = live_server(tmp_path / "first")
    second = live_server(tmp_path / "second", DOCKYARD_DATA_DIR=str(first.data_dir))
    with first, second:
        first.user("brute", PASSWORD)
        assert_count_is_shared(first, second)


def assert_count_is_shared(first: DockyardServer, second: DockyardServer) -> None:
    with client(first.url, ATTACKER_ADDRESS) as http:
        for n in range(5):
            assert get_token(http, "brute", f"guess {n}").status_code == 401
    with client(second.url, ATTACKER_ADDRESS) as http:
        assert_throttled(get_token(http, "brute", PASSWORD))
    with client(second.url, OWNER_ADDRESS) as http:
        assert get_token(http, "brute", PASSWORD).status_code == 200


def test_two_instances_on_one_postgresql_count_a_burst_exactly(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database("throttle")
    # Instances of one Dockyard share the database and the secret key (it keys the counters).
    shared = {"DOCKYARD_DATABASE_URL": url, "DOCKYARD_SECRET_KEY": "scale-out-secret-" + "s" * 32}
    first = live_server(tmp_path / "first", **shared)
    second = live_server(tmp_path / "second", **shared)
    first.cli("migrate")
    with first, second:
        first.user("brute", PASSWORD)
        assert_count_is_shared(first, second)

        second.user("burst", PASSWORD)

        def guess(n: int) -> int:
            target = first if n % 2 else second
            with client(target.url, "127.0.0.3") as http:
                return get_token(http, "burst", f"guess {n}").status_code

        # Forty guesses at once, half on each instance: exactly five reach a password check.
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(guess, range(40)))
        assert statuses.count(401) == 5 and statuses.count(429) == 35
