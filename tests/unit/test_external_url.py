"""Warnings about requests for another host than the external URL's (app/external_url.py):
once per host, only from trustworthy headers, bounded."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.external_url import MAX_REMEMBERED, PEER_KEY, HostMismatches

EXTERNAL = "http://127.0.0.1:5000"
PROXY = ("10.0.0.2", 41000)


def scope(
    host: str | None,
    *,
    forwarded_host: str | None = None,
    client: tuple[str, int] = ("192.0.2.7", 50000),
    peer: tuple[str, int] | None = None,
    path: str = "/v2/",
) -> dict[str, Any]:
    headers = []
    if host is not None:
        headers.append((b"host", host.encode("latin-1")))
    if forwarded_host is not None:
        headers.append((b"x-forwarded-host", forwarded_host.encode("latin-1")))
    value: dict[str, Any] = {"type": "http", "path": path, "headers": headers, "client": client}
    if peer is not None:
        value[PEER_KEY] = peer
    return value


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:5000", "localhost:5000", "LOCALHOST:5000", "[::1]:5000", "127.0.0.1", "localhost"],
)
def test_the_external_urls_host_by_any_loopback_name_is_no_mismatch(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    mismatches = HostMismatches(EXTERNAL)
    with caplog.at_level(logging.WARNING):
        mismatches.observe(scope(host))
    assert mismatches.hosts == [] and warnings(caplog) == []


def test_a_port_forward_is_warned_about_once_with_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mismatches = HostMismatches(EXTERNAL)
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            mismatches.observe(scope("buildhost.lan:15240"))
    assert mismatches.hosts == ["buildhost.lan:15240"]
    assert warnings(caplog) == [
        "requests arrive for host buildhost.lan:15240, but the external URL is "
        "http://127.0.0.1:5000: docker is sent there to log in, and pages show image names "
        "under it. Set DOCKYARD_EXTERNAL_URL to the URL users reach (behind a proxy, also "
        "DOCKYARD_TRUSTED_PROXIES)"
    ]


def test_the_same_host_on_another_port_is_a_mismatch() -> None:
    mismatches = HostMismatches(EXTERNAL)
    mismatches.observe(scope("127.0.0.1:8080"))
    assert mismatches.hosts == ["127.0.0.1:8080"]


def test_behind_a_proxy_without_a_port_only_the_name_counts() -> None:
    # TLS ends at the proxy: the request says http, the external URL https.
    mismatches = HostMismatches("https://dockyard.example.com")
    mismatches.observe(scope("dockyard.example.com"))
    mismatches.observe(scope("Dockyard.Example.com."))
    assert mismatches.hosts == []


def test_x_forwarded_host_counts_only_from_a_trusted_proxy() -> None:
    mismatches = HostMismatches(EXTERNAL, trusted_proxies=["10.0.0.0/24"])
    # Straight from a client, whatever it claims: its X-Forwarded-Host is not believed.
    for claimed_client in (("10.0.0.9", 1), ("192.0.2.7", 1)):
        mismatches.observe(
            scope(
                "127.0.0.1:5000",
                forwarded_host="evil.example",
                client=claimed_client,
                peer=("192.0.2.9", 50000),
            )
        )
    assert mismatches.hosts == []
    # Through the proxy (uvicorn already replaced `client` with the forwarded address).
    mismatches.observe(scope("127.0.0.1:5000", forwarded_host="dockyard.example.com", peer=PROXY))
    assert mismatches.hosts == ["dockyard.example.com"]


def test_without_trusted_proxies_x_forwarded_host_is_ignored() -> None:
    mismatches = HostMismatches(EXTERNAL)
    mismatches.observe(scope("127.0.0.1:5000", forwarded_host="dockyard.example.com", peer=PROXY))
    assert mismatches.hosts == []


@pytest.mark.parametrize(
    "host",
    [
        "<script>alert(1)</script>",
        "evil.example\r\nX-Injected: 1",
        "evil.example/path",
        "user@evil.example",
        "a" * 300,
        "",
        "evil..example",
    ],
)
def test_a_host_header_that_is_no_host_name_is_never_remembered(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    mismatches = HostMismatches(EXTERNAL)
    with caplog.at_level(logging.WARNING):
        mismatches.observe(scope(host))
    assert mismatches.hosts == [] and warnings(caplog) == []


def test_made_up_hosts_cannot_flood_the_log_or_grow_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mismatches = HostMismatches(EXTERNAL)
    with caplog.at_level(logging.WARNING):
        for number in range(1000):
            mismatches.observe(scope(f"host{number}.example"))
    assert mismatches.hosts == [f"host{number}.example" for number in range(MAX_REMEMBERED)]
    assert len(warnings(caplog)) == MAX_REMEMBERED + 1
    assert warnings(caplog)[-1] == (
        "requests arrive for more hosts that differ from the external URL "
        "http://127.0.0.1:5000; no more are listed"
    )


def test_health_checks_and_scrapes_by_address_are_not_users() -> None:
    mismatches = HostMismatches(EXTERNAL)
    for path in ("/-/liveness", "/-/readiness", "/metrics"):
        mismatches.observe(scope("10.1.2.3:5000", path=path))
    assert mismatches.hosts == []
