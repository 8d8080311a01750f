"""A Docker-Hub-like token server (auth.docker.io) for the reference upstream.

``GET /token?service=...&scope=repository:NAME:pull[,push]`` (scope may repeat),
optionally with HTTP Basic credentials, answers the Docker token-spec JSON
``{"token", "access_token", "expires_in", "issued_at"}``. Tokens are ES256 JWTs
whose ``kid`` header is the libtrust key id of the public key in the
certificate written to :attr:`TokenServer.certificate_path`, which is what
distribution 2.8 (``auth: token: rootcertbundle``) looks up.

Like Docker Hub, a caller asking for a repository it may not read still gets a
token, just without that access; the registry then answers 401. Only a wrong
password (or an unknown user) is refused here, with 401.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ANONYMOUS = ""
PULL = "pull"
PUSH = "push"


@dataclass(frozen=True)
class User:
    """A token-server account. ``pull_private`` grants pulls under ``private/``."""

    name: str
    password: str
    pull_private: bool = False
    push: bool = False


#: (name, password) of the user who may pull everything, ``private/`` included.
PULL_USER = ("alice", "alice-secret")
#: (name, password) of the user who may push and pull everything (seeding).
PUSH_USER = ("pusher", "pusher-secret")
DEFAULT_USERS: tuple[User, ...] = (
    User(*PULL_USER, pull_private=True),
    User(*PUSH_USER, pull_private=True, push=True),
)


@dataclass(frozen=True)
class TokenRequest:
    """One request that reached the token server, as the tests see it."""

    account: str
    service: str
    scopes: tuple[str, ...]
    status: int


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id distribution 2.8 (docker/libtrust) derives from a public key."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _self_signed_certificate(key: ec.EllipticCurvePrivateKey, issuer: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TokenServer:
    """The token server: its policy, its counters and its uvicorn thread."""

    workdir: Path
    issuer: str = "dockyard-test-issuer"
    users: tuple[User, ...] = DEFAULT_USERS
    expires_in: int = 300
    #: Seconds from now to the ``exp`` claim, when it should differ from
    #: ``expires_in``. distribution accepts tokens up to 60 s past ``exp``, so
    #: -61 gives tokens the registry already rejects.
    claims_lifetime: int | None = None
    #: When set, every request is answered with this status (fault injection).
    fail_with: int | None = None
    requests: list[TokenRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _socket: socket.socket | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.key_id = libtrust_key_id(self._key.public_key())
        certificate = _self_signed_certificate(self._key, self.issuer)
        self.certificate_path = self.workdir / "token-cert.pem"
        self.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.port = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def start(self, timeout: float = 10.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="warning", access_log=False, lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="token-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("token server did not start")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    # -- counters ----------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        """Forget counted requests; undo :attr:`fail_with` and :attr:`claims_lifetime`."""
        with self._lock:
            self.requests.clear()
        self.fail_with = None
        self.claims_lifetime = None

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- tokens ------------------------------------------------------------

    def allowed_actions(self, account: str, repository: str) -> set[str]:
        user = next((u for u in self.users if u.name == account), None)
        if repository.startswith("private/") and not (user and user.pull_private):
            return set()
        return {PULL, PUSH} if user is not None and user.push else {PULL}

    def issue(self, account: str, service: str, scopes: list[str]) -> str:
        """Sign a token granting ``account`` what it asked for and may have."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            wanted = {a for a in actions.split(",") if a}
            granted = sorted(wanted & self.allowed_actions(account, name))
            access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": service,
            "iat": now,
            "nbf": now - 10,
            "exp": now
            + (self.expires_in if self.claims_lifetime is None else self.claims_lifetime),
            "jti": secrets.token_hex(16),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.key_id})

    def _account(self, request: Request) -> tuple[str, bool]:
        """The account named by the request (ANONYMOUS if none) and whether it is proven."""
        header = request.headers.get("authorization", "")
        if not header:
            return ANONYMOUS, True
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return ANONYMOUS, False
        try:
            name, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ANONYMOUS, False
        user = next((u for u in self.users if u.name == name), None)
        return name, user is not None and secrets.compare_digest(
            user.password.encode(), password.encode()
        )

    async def _token(self, request: Request) -> JSONResponse:
        service = request.query_params.get("service", "")
        scopes = request.query_params.getlist("scope")
        account, proven = self._account(request)
        body: dict[str, str | int]
        if self.fail_with is not None:
            status, body = self.fail_with, {"details": "token server failing on purpose"}
        elif not proven:
            status, body = 401, {"details": "incorrect username or password"}
        else:
            token = self.issue(account, service, scopes)
            issued_at = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
            status = 200
            body = {
                "token": token,
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": issued_at,
            }
        self._record(TokenRequest(account, service, tuple(scopes), status))
        return JSONResponse(body, status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self._token, methods=["GET"])])
