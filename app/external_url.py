"""Requests for another host than the external URL's: a proxy or a port forward without
`DOCKYARD_EXTERNAL_URL`.

The external URL is the token realm docker is sent to and the prefix pages show;
when users reach Dockyard by another name, `docker login` fails with "connection
refused" on an address they never typed. This middleware notices the mismatch
and says so once per host in the log, and the admin page lists the hosts.

Only what is trustworthy counts: the `Host` header, or `X-Forwarded-Host` when
the connection itself came from a trusted proxy (`DOCKYARD_TRUSTED_PROXIES`).
A value is remembered only if it is a plain `host[:port]`, and only a few are
remembered, so a client sending made-up hosts can neither flood the log nor grow
memory, and nothing it sends reaches a page unchecked.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("dockyard")

#: Distinct mismatching hosts remembered (and warned about) per process.
MAX_REMEMBERED = 8
#: Load balancers, scrapers and other instances (the internal endpoint) address the
#: backend directly: not a user's host.
UNCHECKED_PREFIXES = ("/-/liveness", "/-/readiness", "/-/internal/", "/metrics")
#: The scope key `app/http_protocol.py` fills with the connection's own peer
#: (uvicorn's proxy-headers middleware replaces `client` with the forwarded one).
PEER_KEY = "dockyard.peer"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]{{2,45}}\])(?::(?P<port>\d{{1,5}}))?"
)
_LOOPBACK_NAMES = ("localhost", "[::1]")


def _normal_host(host: str) -> str:
    """Loopback names are one host: a newcomer's browser on localhost is not a mismatch."""
    host = host.rstrip(".")
    if host in _LOOPBACK_NAMES or host.startswith("127."):
        return "loopback"
    return host


class HostMismatches:
    """The hosts requests arrived for that differ from the external URL's (bounded)."""

    def __init__(self, external_url: str, trusted_proxies: Iterable[str] = ()) -> None:
        self.external_url = external_url
        parts = urlsplit(external_url)
        expected = (parts.hostname or "").lower()
        self._expected_host = _normal_host(f"[{expected}]" if ":" in expected else expected)
        self._expected_port = parts.port or (443 if parts.scheme == "https" else 80)
        self._trusted = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]
        self._matching: set[str] = set()  # raw values already found to match (bounded too)
        self.hosts: list[str] = []
        self._overflowed = False

    def observe(self, scope: Scope) -> None:
        if scope.get("path", "").startswith(UNCHECKED_PREFIXES):
            return
        value = self._requested_host(scope)
        if value is None or value in self._matching or value in self.hosts:
            return
        match = _HOST.fullmatch(value)
        if match is None:
            return  # not a host name: nothing to learn from it, nothing to repeat
        host, port = _normal_host(match["host"]), match["port"]
        # Without a port the scheme decides it, which a proxy may hide: compare names only.
        if host == self._expected_host and (port is None or int(port) == self._expected_port):
            if len(self._matching) < MAX_REMEMBERED:
                self._matching.add(value)
            return
        self._remember(value)

    def _requested_host(self, scope: Scope) -> str | None:
        host = forwarded = None
        for name, raw in scope.get("headers", ()):
            if name == b"host":
                host = raw
            elif name == b"x-forwarded-host" and forwarded is None:
                forwarded = raw
        if forwarded is not None and self._from_trusted_proxy(scope):
            host = forwarded.split(b",", 1)[0]
        if host is None or len(host) > 260:
            return None
        return host.decode("latin-1").strip().lower()

    def _from_trusted_proxy(self, scope: Scope) -> bool:
        peer = scope.get(PEER_KEY) or scope.get("client")
        if not self._trusted or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def _remember(self, value: str) -> None:
        if len(self.hosts) >= MAX_REMEMBERED:
            if not self._overflowed:
                self._overflowed = True
                log.warning(
                    "requests arrive for more hosts that differ from the external URL %s; "
                    "no more are listed",
                    self.external_url,
                )
            return
        self.hosts.append(value)
        log.warning(
            "requests arrive for host %s, but the external URL is %s: docker is sent there "
            "to log in, and pages show image names under it. Set DOCKYARD_EXTERNAL_URL to "
            "the URL users reach (behind a proxy, also DOCKYARD_TRUSTED_PROXIES)",
            value,
            self.external_url,
        )


class ExternalUrlCheck:
    """ASGI middleware feeding every HTTP request's host to `HostMismatches`."""

    def __init__(self, app: ASGIApp, mismatches: HostMismatches) -> None:
        self.app = app
        self.mismatches = mismatches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.mismatches.observe(scope)
        await self.app(scope, receive, send)
