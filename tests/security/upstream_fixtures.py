"""Fixtures of the upstream-isolation tests (registered by their module).

A live Dockyard whose upstream is the real reference registry (token auth by the
Docker-Hub-like token server: `alice` may pull `private/...`), reached through a
throttled TCP proxy so that a large layer stays in flight for a known minimum
time while another group knocks on the same digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.security.upstream_support import LARGE_LAYER, UPSTREAM_RATE, next_number
from tests.support.dockyard_server import Account, DockyardServer, s3_settings
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image, push_large_image
from tests.support.reference_registry import RegistryPusher
from tests.support.throttled_proxy import ThrottledProxy
from tests.support.token_server import PUSH_USER


@pytest.fixture(scope="module")
def throttled_upstream(
    reference_registry_session: SeededReferenceRegistry,
) -> Iterator[ThrottledProxy]:
    with ThrottledProxy(reference_registry_session.port, bytes_per_second=UPSTREAM_RATE) as proxy:
        yield proxy


@pytest.fixture(scope="module", params=["local", "s3"])
def isolated_dockyard(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    throttled_upstream: ThrottledProxy,
) -> Iterator[DockyardServer]:
    """On both blob stores: shared bytes on disk and in a bucket obey the same rule."""
    # Read timeout above the proxy's pace for a 1 MiB read, with room to spare.
    env = {"DOCKYARD_UPSTREAM_READ_TIMEOUT": "10"}
    if request.param == "s3":
        seaweed = request.getfixturevalue("seaweed")
        env.update(s3_settings(seaweed, f"isolation-{next_number()}/"))
    server = DockyardServer(tmp_path_factory.mktemp("isolation"), throttled_upstream.url, env=env)
    with server:
        yield server


@pytest.fixture
def push_private_large_image(
    reference_registry_session: SeededReferenceRegistry,
) -> Callable[[], Image]:
    """Pushes a new `private/large-N:1` with one LARGE_LAYER-byte layer (a digest
    that no Dockyard of the module has seen)."""

    def push() -> Image:
        number = next_number()
        with RegistryPusher(reference_registry_session.url, *PUSH_USER) as pusher:
            return push_large_image(
                pusher, f"private/large-{number}", "1", size=LARGE_LAYER, seed=70_000 + number
            )

    return push


@pytest.fixture(scope="module")
def owner(isolated_dockyard: DockyardServer) -> Account:
    """A user whose groups hold the upstream credentials that may pull `private/`."""
    return isolated_dockyard.provision("olivia", "olivias-group")


@pytest.fixture(scope="module")
def stranger(isolated_dockyard: DockyardServer) -> Account:
    """Another user, free to create groups of their own (as anyone is)."""
    return isolated_dockyard.provision("sam", "sams-group")
