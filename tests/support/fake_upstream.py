"""A fault-injecting fake upstream registry, Docker-Hub-shaped, on real sockets.

:class:`FakeUpstream` runs two Starlette apps under uvicorn in one background
thread: the registry (``http://127.0.0.1:<port>``, with a ``/token`` endpoint
and Bearer challenges like Docker Hub) and a "CDN" that blob downloads can be
redirected to (``http://localhost:<other port>``: another host *and* port, so
any client that forwards Authorization across origins is caught).

Tests switch behaviour at run time through :attr:`FakeUpstream.faults`
(see :class:`Faults`) and read what arrived in :attr:`FakeUpstream.requests`
(counts by ``(method, kind)``) and :attr:`FakeUpstream.log`::

    with FakeUpstream() as upstream:
        digest = upstream.add_manifest("library/alpine", b"{...}", tags=["3.20"])
        upstream.faults.status["manifest"] = 503
        ...
        assert upstream.requests["GET", "token"] == 1

Request kinds: ``ping`` (``/v2/``), ``manifest``, ``blob``, ``token``, ``cdn``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SERVICE = "fake-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


@dataclass
class Faults:
    """What the fake does wrong right now. Change fields at any time; ``reset()`` clears."""

    #: Force a status per kind ("manifest", "blob", "token", "cdn", "ping"), e.g. 503 or 429.
    status: dict[str, int] = field(default_factory=dict)
    #: Retry-After value sent with a forced 429.
    retry_after: str | None = None
    #: Seconds to sleep before answering, per kind (longer than the client's timeout = "slow").
    delay: dict[str, float] = field(default_factory=dict)
    #: Serve manifests and blobs with one byte flipped (headers still claim the right digest).
    corrupt: bool = False
    #: Send a Docker-Content-Digest that is not the content's digest.
    wrong_digest_header: bool = False
    #: Leave Docker-Content-Digest out of manifest responses.
    omit_digest_header: bool = False
    #: Send this many bytes of a blob, then drop the connection.
    cut_blob_after: int | None = None
    #: Send this many bytes of a blob, then go silent for ``stall_seconds``.
    stall_blob_after: int | None = None
    stall_seconds: float = 30.0
    #: Answer blob GET/HEAD with a 307 to the CDN host, like Docker Hub.
    redirect_blobs: bool = False
    #: (limit, remaining) sent as Docker Hub's ratelimit-limit / ratelimit-remaining headers.
    ratelimit: tuple[int, int] | None = None
    #: Realm advertised in challenges instead of our /token (e.g. a closed port: "token down").
    realm: str | None = None
    #: expires_in of issued tokens; None leaves the field out (clients default to 60 s).
    token_expires_in: int | None = 300
    #: A Set-Cookie header value sent with every registry response (some mirrors
    #: keep a login session in a cookie).
    set_cookie: str | None = None


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    kind: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names


class FakeUpstream:
    """The fake registry + token endpoint + CDN; a context manager that starts and stops them.

    ``auth`` is ``"bearer"`` (Docker Hub's token dance), ``"basic"`` (Basic challenge)
    or ``"none"``. ``users`` maps usernames to passwords; ``private`` images need a user
    (anonymous tokens do not cover them).
    """

    def __init__(
        self,
        *,
        auth: str = "bearer",
        users: dict[str, str] | None = None,
        private: Iterable[str] = (),
    ) -> None:
        self.auth = auth
        self.users = dict(users or {})
        self.private = set(private)
        self.faults = Faults()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.log: list[ReceivedRequest] = []
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self._tokens: dict[str, tuple[str, set[str], float]] = {}  # token -> user, scopes, expiry
        self._lock = threading.Lock()
        self._sockets = [self._bind(), self._bind()]
        self.port = self._sockets[0].getsockname()[1]
        self.cdn_port = self._sockets[1].getsockname()[1]
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # -- addresses -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    @property
    def cdn_url(self) -> str:
        return f"http://localhost:{self.cdn_port}"

    # -- content ---------------------------------------------------------------

    def add_manifest(
        self, name: str, content: bytes, media_type: str = OCI_MANIFEST, tags: Iterable[str] = ()
    ) -> str:
        """Serve ``content`` under its digest and each tag; returns the digest."""
        digest = sha256_digest(content)
        for reference in (digest, *tags):
            self.manifests[name, reference] = (content, media_type)
        return digest

    def add_blob(self, name: str, content: bytes) -> str:
        digest = sha256_digest(content)
        self.blobs[name, digest] = content
        return digest

    def add_image(self, name: str, tag: str, layers: Iterable[bytes]) -> tuple[str, bytes]:
        """A whole single-platform OCI image; returns (manifest digest, manifest bytes)."""
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        descriptors = [
            {"mediaType": media_type, "digest": self.add_blob(name, blob), "size": len(blob)}
            for media_type, blob in [(OCI_CONFIG, config), *((OCI_LAYER, b) for b in layers)]
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptors[0],
            "layers": descriptors[1:],
        }
        content = json.dumps(manifest, indent=2).encode()
        return self.add_manifest(name, content, OCI_MANIFEST, tags=[tag]), content

    # -- inspection --------------------------------------------------------------

    def received(self, kind: str, method: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.log if r.kind == kind and method in (None, r.method)]

    def reset(self) -> None:
        """Clear faults, counts, the log and issued tokens (content stays)."""
        self.faults = Faults()
        with self._lock:
            self.requests.clear()
            self.log.clear()
            self._tokens.clear()

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        for app in (self._registry_app(), self._cdn_app()):
            # log_config=None: leave logging to pytest instead of uvicorn's dictConfig.
            config = uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="off", ws="none",
                timeout_graceful_shutdown=2,
            )  # fmt: skip
            self._servers.append(uvicorn.Server(config))
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not all(server.started for server in self._servers):
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopping is not None:
            # Wake sleeping handlers (slow/stall faults) so shutdown does not wait for them.
            self._loop.call_soon_threadsafe(self._stopping.set)
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        for sock in self._sockets:
            sock.close()
        self._thread = None

    def _run(self) -> None:
        async def serve_all() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            await asyncio.gather(
                *(s.serve(sockets=[k]) for s, k in zip(self._servers, self._sockets, strict=True))
            )

        asyncio.run(serve_all())

    @staticmethod
    def _bind() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        return sock

    # -- the apps ----------------------------------------------------------------

    def _registry_app(self) -> ASGIApp:
        methods = ["GET", "HEAD"]
        app = Starlette(
            routes=[
                Route("/token", self._token, methods=["GET"]),
                Route("/v2/", self._ping, methods=methods),
                Route("/v2/{name:path}/manifests/{reference}", self._manifest, methods=methods),
                Route("/v2/{name:path}/blobs/{digest}", self._blob, methods=methods),
            ]
        )

        async def with_cookie(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_with_cookie(message: Message) -> None:
                cookie = self.faults.set_cookie
                if message["type"] == "http.response.start" and cookie:
                    message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
                await send(message)

            await app(scope, receive, send_with_cookie)

        return with_cookie

    def _cdn_app(self) -> Starlette:
        return Starlette(
            routes=[Route("/blobs/{name:path}/{digest}", self._cdn_blob, methods=["GET", "HEAD"])]
        )

    async def _enter(self, request: Request, kind: str) -> Response | None:
        """Record the request, apply delay and forced status; a Response means stop here."""
        with self._lock:
            self.requests[request.method, kind] += 1
            self.log.append(
                ReceivedRequest(
                    request.method,
                    kind,
                    request.url.path,
                    request.url.query,
                    {k.lower(): v for k, v in request.headers.items()},
                )
            )
        if delay := self.faults.delay.get(kind):
            await self._sleep(delay)
        status = self.faults.status.get(kind)
        if status is None:
            return None
        headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
        if status == 429:
            self._ratelimit_headers(headers)
        body = {"errors": [{"code": "FAKE", "message": f"injected {status}"}]}
        return JSONResponse(body, status, headers=headers)

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _ratelimit_headers(self, headers: dict[str, str]) -> None:
        if self.faults.ratelimit is not None:
            limit, remaining = self.faults.ratelimit
            headers["ratelimit-limit"] = f"{limit};w=21600"
            headers["ratelimit-remaining"] = f"{remaining};w=21600"

    async def _token(self, request: Request) -> Response:
        if (early := await self._enter(request, "token")) is not None:
            return early
        user = ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            user, password = base64.b64decode(header[6:]).decode().split(":", 1)
            if self.users.get(user) != password:
                return JSONResponse({"details": "incorrect username or password"}, 401)
        scopes = set(request.query_params.getlist("scope"))
        token = secrets.token_urlsafe(16)  # opaque, like Docker Hub's from the client's view
        expires_in = self.faults.token_expires_in
        lifetime = expires_in if expires_in is not None else 60
        with self._lock:
            self._tokens[token] = (user, scopes, time.monotonic() + lifetime)
        body: dict[str, object] = {"token": token, "access_token": token, "issued_at": "now"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return JSONResponse(body)

    def _challenge(self, request: Request, name: str | None) -> Response | None:
        """None when the request may proceed, else the 401 a real registry sends."""
        header = request.headers.get("authorization", "")
        if self.auth == "none":
            return None
        if self.auth == "basic":
            if header.lower().startswith("basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) == password:
                    return None
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        scope = f"repository:{name}:pull" if name else ""
        with self._lock:
            grant = self._tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if grant is not None and grant[2] > time.monotonic():
            user, scopes, _ = grant
            if name is None or (scope in scopes and (user or name not in self.private)):
                return None
        params = f'realm="{self.faults.realm or self.realm}",service="{SERVICE}"'
        if scope:
            params += f',scope="{scope}"'
        if grant is not None:
            params += ',error="insufficient_scope"'
        return JSONResponse(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            401,
            headers={"WWW-Authenticate": f"Bearer {params}"},
        )

    async def _ping(self, request: Request) -> Response:
        early = await self._enter(request, "ping") or self._challenge(request, None)
        return early or JSONResponse({})

    async def _manifest(self, request: Request) -> Response:
        name, reference = request.path_params["name"], request.path_params["reference"]
        early = await self._enter(request, "manifest") or self._challenge(request, name)
        if early is not None:
            return early
        headers: dict[str, str] = {}
        self._ratelimit_headers(headers)
        found = self.manifests.get((name, reference))
        if found is None:
            body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            return JSONResponse(body, 404, headers=headers)
        content, media_type = found
        if not self.faults.omit_digest_header:
            headers["Docker-Content-Digest"] = sha256_digest(
                content + b" " if self.faults.wrong_digest_header else content
            )
        headers["Content-Length"] = str(len(content))
        if self.faults.corrupt:
            content = _flip_first_byte(content)
        if request.method == "HEAD":
            return Response(headers=headers, media_type=media_type)
        return Response(content, headers=headers, media_type=media_type)

    async def _blob(self, request: Request) -> Response:
        name, digest = request.path_params["name"], request.path_params["digest"]
        early = await self._enter(request, "blob") or self._challenge(request, name)
        if early is not None:
            return early
        if (name, digest) not in self.blobs:
            body = {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}
            return JSONResponse(body, 404)
        if self.faults.redirect_blobs:
            return RedirectResponse(f"{self.cdn_url}/blobs/{name}/{digest}?sig=fake", 307)
        return self._blob_response(request, self.blobs[name, digest])

    async def _cdn_blob(self, request: Request) -> Response:
        if (early := await self._enter(request, "cdn")) is not None:
            return early
        content = self.blobs.get((request.path_params["name"], request.path_params["digest"]))
        if content is None:
            return Response(status_code=404)
        return self._blob_response(request, content)

    def _blob_response(self, request: Request, content: bytes) -> Response:
        headers = {
            "Content-Length": str(len(content)),
            "Docker-Content-Digest": sha256_digest(content),
        }
        if request.method == "HEAD":
            return Response(headers=headers, media_type="application/octet-stream")
        if self.faults.corrupt:
            content = _flip_first_byte(content)
        return StreamingResponse(
            self._blob_body(content), headers=headers, media_type="application/octet-stream"
        )

    async def _blob_body(self, content: bytes) -> AsyncIterator[bytes]:
        cut, stall = self.faults.cut_blob_after, self.faults.stall_blob_after
        stop = min(x for x in (cut, stall, len(content)) if x is not None)
        for start in range(0, stop, 64 * 1024):
            yield content[start : min(start + 64 * 1024, stop)]
        if stall is not None and stop == stall:
            await self._sleep(self.faults.stall_seconds)
        if cut is not None and stop == cut:
            # Ending the ASGI response early makes uvicorn drop the connection mid-body.
            raise _CutStream("fake upstream cut the blob stream")
        yield content[stop:]


class _CutStream(Exception):
    pass


def _flip_first_byte(content: bytes) -> bytes:
    return bytes([content[0] ^ 0xFF]) + content[1:] if content else b"x"
