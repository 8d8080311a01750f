"""`tags/list` through a live Dockyard from the real reference registry (issue 9 point 5):
skopeo's list-tags, paging as the OCI spec says, the short cache, stale-if-error, and
one group's list never answering another group."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.security.upstream_support import set_upstream_credentials
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import push_small_image
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PULL_USER, PUSH_USER

pytestmark = pytest.mark.e2e

TAGS = ["1.0", "1.1", "2.0", "2.1", "latest"]
TAGS_LIST = re.compile(r"/tags/list$")


@pytest.fixture(scope="module")
def tagged(reference_registry_session: SeededReferenceRegistry) -> list[str]:
    """`library/tagged` with five tags of one image."""
    with RegistryPusher(reference_registry_session.url, *PUSH_USER) as pusher:
        image = push_small_image(pusher, "library/tagged", TAGS[0], seed=500)
        for tag in TAGS[1:]:
            pusher.push_manifest("library/tagged", tag, image.manifest, image.media_type)
    return TAGS


@pytest.fixture(scope="module")
def owner(dockyard: DockyardServer) -> Account:
    return dockyard.provision("tagger", "tags-a")


def tags_request(
    server: DockyardServer, account: Account, image: str, *, method: str = "GET", **query: str
) -> httpx.Response:
    token = server.registry_token(account, image)
    return httpx.request(
        method,
        f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}/tags/list",
        params=query,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_skopeo_list_tags_through_dockyard(
    dockyard: DockyardServer, owner: Account, tagged: list[str]
) -> None:
    result = subprocess.run(
        [
            require("skopeo"), "list-tags", "--tls-verify=false",
            "--creds", f"{owner.username}:{owner.token}",
            f"docker://{dockyard.prefix(owner.group)}/tagged",
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    listed = json.loads(result.stdout)
    assert listed["Tags"] == tagged
    assert listed["Repository"].endswith(f"{owner.group}/dependency_proxy/containers/tagged")


def test_skopeo_inspect_needs_no_tags_flag_any_more(
    dockyard: DockyardServer, owner: Account, tagged: list[str]
) -> None:
    result = subprocess.run(
        [
            require("skopeo"), "inspect", "--tls-verify=false",
            "--creds", f"{owner.username}:{owner.token}",
            f"docker://{dockyard.prefix(owner.group)}/tagged:2.0",
        ],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["RepoTags"] == tagged


def test_pages_follow_the_link_header_on_our_own_path(
    dockyard: DockyardServer, owner: Account, tagged: list[str]
) -> None:
    seen: list[str] = []
    query = {"n": "2"}
    pages = 0
    while True:
        answer = tags_request(dockyard, owner, "tagged", **query)
        assert answer.status_code == 200
        body = answer.json()
        assert body["name"] == f"{owner.group}/dependency_proxy/containers/tagged"
        assert len(body["tags"]) <= 2
        seen += body["tags"]
        pages += 1
        link = answer.headers.get("link")
        if link is None:
            break
        match = re.fullmatch(r'<(/v2/[^>]+)>; rel="next"', link)
        assert match is not None, link
        url = httpx.URL(match.group(1))
        assert url.path == f"/v2/{owner.group}/dependency_proxy/containers/tagged/tags/list"
        query = dict(url.params)
        assert query["n"] == "2"
    assert seen == tagged and pages == 3


def test_a_page_is_cached_briefly_and_head_agrees_with_get(
    dockyard: DockyardServer,
    owner: Account,
    tagged: list[str],
    reference_registry: SeededReferenceRegistry,
) -> None:
    first = tags_request(dockyard, owner, "tagged", n="3")
    assert first.headers["x-cache"] == "MISS"
    asked = reference_registry.count("GET", TAGS_LIST)
    again = tags_request(dockyard, owner, "tagged", n="3")
    head = tags_request(dockyard, owner, "tagged", method="HEAD", n="3")
    assert again.headers["x-cache"] == head.headers["x-cache"] == "HIT"
    assert again.json() == first.json()
    assert reference_registry.count("GET", TAGS_LIST) == asked
    volatile = {"date", "x-request-id"}  # a request id is per request by design
    assert {k: v for k, v in head.headers.items() if k not in volatile} == {
        k: v for k, v in again.headers.items() if k not in volatile
    }
    assert head.content == b""


def test_errors_unknown_repository_bad_page_size_and_no_access(
    dockyard: DockyardServer, owner: Account
) -> None:
    unknown = tags_request(dockyard, owner, "no-such-image")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    bad = tags_request(dockyard, owner, "tagged", n="-1")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"
    anonymous = httpx.get(
        f"{dockyard.url}/v2/{owner.group}/dependency_proxy/containers/tagged/tags/list"
    )
    assert anonymous.status_code == 401
    assert (
        f'scope="repository:{owner.group}/dependency_proxy/containers/tagged:pull"'
        in anonymous.headers["www-authenticate"]
    )
    stranger = dockyard.provision("tag-stranger", "tags-stranger")
    token = dockyard.registry_token(stranger, "tagged")
    refused = httpx.get(
        f"{dockyard.url}/v2/{owner.group}/dependency_proxy/containers/tagged/tags/list",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code in (401, 404)  # no pull scope for that group in the token
    assert refused.json()["errors"][0]["code"] in ("UNAUTHORIZED", "NAME_UNKNOWN")


def test_one_groups_list_never_answers_another_group(
    dockyard: DockyardServer,
    owner: Account,
    tagged: list[str],
    reference_registry: SeededReferenceRegistry,
) -> None:
    # tags-a can list the private repository with alice's upstream credentials.
    set_upstream_credentials(dockyard, owner, PULL_USER)
    private = tags_request(dockyard, owner, "private/secret")
    assert private.status_code == 200 and private.json()["tags"] == ["1.0"]
    public = tags_request(dockyard, owner, "tagged", n="4")
    assert public.status_code == 200

    other = dockyard.provision("tag-other", "tags-b")  # anonymous upstream
    before = reference_registry.count("GET", TAGS_LIST)
    refused = tags_request(dockyard, other, "private/secret")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "DENIED"
    own = tags_request(dockyard, other, "tagged", n="4")
    assert own.headers["x-cache"] == "MISS" and own.json()["tags"] == tagged[:4]
    # Both went to the upstream with tags-b's own (anonymous) identity.
    assert reference_registry.count("GET", TAGS_LIST) > before + 1


@pytest.fixture
def uncached(
    tmp_path: Path, reference_registry: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    env = {"DOCKYARD_TAGS_LIST_CACHE_SECONDS": "0"}
    with DockyardServer(tmp_path / "uncached", reference_registry.url, env=env) as server:
        yield server


def test_the_last_page_is_served_stale_when_the_upstream_is_down(
    uncached: DockyardServer, tagged: list[str], reference_registry: SeededReferenceRegistry
) -> None:
    account = uncached.provision("stale-tagger", "stale-tags")
    fresh = tags_request(uncached, account, "tagged")
    assert fresh.headers["x-cache"] == "MISS"
    again = tags_request(uncached, account, "tagged")
    assert again.headers["x-cache"] == "MISS"  # cache time 0: asked again
    reference_registry.stop()
    stale = tags_request(uncached, account, "tagged")
    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "STALE" and stale.json()["tags"] == tagged
    never_listed = tags_request(uncached, account, "alpine")
    assert never_listed.status_code == 503
    assert never_listed.json()["errors"][0]["code"] == "UNAVAILABLE"
