"""Two workers keep who may pull in memory; a change at the shell stops the next pull in both.

`dockyard serve` with two workers in front of the real reference registry:
each credential pulls a manifest by digest over many fresh connections (the
kernel hands them to both workers, so both keep the principal and the granted
pull), then the operator revokes, blocks or removes with the CLI (another
process still), and every following request, on fresh connections again, is
refused.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e

ROUNDS = 16  # fresh connections per check: both workers answer some of them


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> DockyardServer:
    server = DockyardServer(
        tmp_path_factory.mktemp("workers"),
        reference_registry_session.url,
        env={"DOCKYARD_WORKERS": "2"},
    )
    with server:
        yield server  # type: ignore[misc]


def pull_statuses(server: DockyardServer, group: str, digest: str, jwt: str) -> set[int]:
    url = f"{server.url}/v2/{group}/dependency_proxy/containers/alpine/manifests/{digest}"
    headers = {"Authorization": f"Bearer {jwt}"}
    # httpx.get opens a new connection each time.
    return {httpx.get(url, headers=headers, timeout=10).status_code for _ in range(ROUNDS)}


def warm(server: DockyardServer, account: Account, digest: str) -> str:
    jwt = server.registry_token(account, "alpine")
    assert pull_statuses(server, account.group, digest, jwt) == {200}
    return jwt


def guest(server: DockyardServer, name: str, group: str) -> Account:
    password = f"{name}-password"
    server.cli("user", "create", name, "--email", f"{name}@example.com", "--password", password)
    server.cli("member", "add", group, name, "--role", "guest")
    token = server.cli(
        "token", "create", name, "--name", "ci", "--scopes", "read_registry,write_registry"
    )["token"]
    return Account(username=name, password=password, token=token, group=group)


def test_revocations_at_the_shell_stop_the_next_pull_in_every_worker(
    server: DockyardServer, seeded_images: SeededImages
) -> None:
    digest = seeded_images.alpine.digest
    server.provision("owner", "acme")
    token_user, blocked_user, removed_user = (
        guest(server, name, "acme") for name in ("tina", "bert", "mona")
    )

    token_jwt = warm(server, token_user, digest)
    server.cli("token", "revoke", "tina", "ci")
    assert pull_statuses(server, "acme", digest, token_jwt) == {401}

    password_login = Account("bert", blocked_user.password, blocked_user.password, "acme")
    blocked_jwt = warm(server, password_login, digest)
    server.cli("user", "block", "bert")
    assert pull_statuses(server, "acme", digest, blocked_jwt) == {401}

    removed_jwt = warm(server, removed_user, digest)
    server.cli("member", "remove", "acme", "mona")
    assert pull_statuses(server, "acme", digest, removed_jwt) == {404}

    created = server.cli(
        "group-token", "create", "acme", "--name", "ci", "--role", "guest",
        "--scopes", "read_registry,write_registry",
    )  # fmt: skip
    bot = Account("anyone", "", created["token"], "acme")
    bot_jwt = warm(server, bot, digest)
    server.cli("group-token", "revoke", "acme", "ci")
    assert pull_statuses(server, "acme", digest, bot_jwt) == {401}
