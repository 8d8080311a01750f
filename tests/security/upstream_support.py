"""Helpers of the upstream-isolation tests: groups with upstream credentials,
a client per group, and what reached the registry (fixtures: `upstream_fixtures`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import MiB
from tests.support.token_server import PULL_USER

#: alice's right and a wrong secret at the token server.
RIGHT = PULL_USER
WRONG = (PULL_USER[0], "not-alices-secret")
#: A large private layer of LARGE_LAYER bytes takes at least
#: LARGE_LAYER / UPSTREAM_RATE seconds to come through the proxy.
LARGE_LAYER = 24 * MiB
UPSTREAM_RATE = 6 * MiB

_names = itertools.count(1)


def next_number() -> int:
    return next(_names)


def unique(prefix: str) -> str:
    """A group name no other test of the module uses."""
    return f"{prefix}{next(_names)}"


def set_upstream_credentials(
    server: DockyardServer, account: Account, credentials: tuple[str, str] | None
) -> None:
    """What an Owner does on the settings page, through GraphQL with their token."""
    identity, secret = credentials or ("", "")
    query = """mutation($input: UpdateDependencyProxySettingsInput!) {
        updateDependencyProxySettings(input: $input) { errors } }"""
    settings = {"groupPath": account.group, "identity": identity, "secret": secret}
    data = graphql(server, account, query, input=settings)
    assert data["updateDependencyProxySettings"]["errors"] == []


def graphql(server: DockyardServer, account: Account, query: str, **variables: object) -> Any:
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["data"]


def group_with(
    server: DockyardServer, owner: Account, prefix: str, credentials: tuple[str, str] | None
) -> Account:
    """A new top-level group of `owner` (any user may create one) whose upstream
    credentials are `credentials`; the account pulls from that group."""
    path = unique(prefix)
    query = "mutation($path: ID!) { groupCreate(input: {path: $path}) { errors } }"
    assert graphql(server, owner, query, path=path)["groupCreate"]["errors"] == []
    account = replace(owner, group=path)
    if credentials is not None:
        set_upstream_credentials(server, account, credentials)
    return account


@dataclass(frozen=True)
class CacheCounts:
    images: int
    blobs: int


def cache_counts(server: DockyardServer, account: Account) -> CacheCounts:
    """What the group's Dependency Proxy page would say it holds."""
    query = """query($path: ID!) {
        group(fullPath: $path) { dependencyProxyImageCount dependencyProxyBlobCount } }"""
    group = graphql(server, account, query, path=account.group)["group"]
    return CacheCounts(group["dependencyProxyImageCount"], group["dependencyProxyBlobCount"])


class Puller:
    """One group's client of the Dependency Proxy for one image."""

    def __init__(self, server: DockyardServer, account: Account, image: str) -> None:
        self.server = server
        self.base = f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}"
        self.headers = {"Authorization": f"Bearer {server.registry_token(account, image)}"}

    def manifest(self, reference: str, method: str = "GET") -> httpx.Response:
        url = f"{self.base}/manifests/{reference}"
        return httpx.request(method, url, headers=self.headers, timeout=60)

    def blob(self, digest: str, method: str = "GET") -> httpx.Response:
        url = f"{self.base}/blobs/{digest}"
        return httpx.request(method, url, headers=self.headers, timeout=60)

    async def ablob(self, client: httpx.AsyncClient, digest: str) -> httpx.Response:
        return await client.get(f"{self.base}/blobs/{digest}", headers=self.headers)


def in_flight(server: DockyardServer, digest: str) -> bool:
    """Whether Dockyard is downloading the digest right now (its spool file exists)."""
    return (server.data_dir / "spool" / f"{digest.removeprefix('sha256:')}.part").exists()


@dataclass(frozen=True)
class Poll:
    status: int
    content: bytes
    during_download: bool  # the download was in flight before and after this request


async def poll_during(
    server: DockyardServer,
    digest: str,
    download: asyncio.Task[httpx.Response],
    ask: Callable[[], Awaitable[httpx.Response]],
) -> list[Poll]:
    """Ask again and again until `download` is done: what each answer was."""
    while True:  # until the download has started (its spool file exists)
        if in_flight(server, digest) or download.done():
            break
        await asyncio.sleep(0.01)
    polls = []
    while not download.done():
        before = in_flight(server, digest)
        answer = await ask()
        polls.append(Poll(answer.status_code, answer.content, before and in_flight(server, digest)))
        await asyncio.sleep(0.02)
    return polls


def oci_error(answer: httpx.Response) -> tuple[str, str]:
    error = answer.json()["errors"][0]
    return error["code"], error["message"]


def registry_answers(registry: SeededReferenceRegistry, digest: str) -> dict[tuple[str, int], int]:
    """Requests for the blob that reached the registry, by (method, status)."""
    counts: dict[tuple[str, int], int] = {}
    for entry in registry.access_log():
        if entry.path.endswith(f"/blobs/{digest}"):
            counts[entry.method, entry.status] = counts.get((entry.method, entry.status), 0) + 1
    return counts


def successes(counts: dict[tuple[str, int], int], method: str) -> int:
    return sum(n for (m, status), n in counts.items() if m == method and 200 <= status < 300)
