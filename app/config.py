"""Settings: the one place that reads the environment.

Every knob is a field of `Settings`, read from `DOCKYARD_<NAME>` environment
variables or from the optional TOML file named by `DOCKYARD_CONFIG` (keys are
the field names in lower case). The environment wins over the file. Invalid
values raise `ConfigError` with a message that names the setting; the CLI
prints that one line and exits.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import socket
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

SECRET_KEY_FILE = "secret_key"
# Everything in the data folder is the service's alone: cached private layers,
# the database with token hashes, the secret key.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

log = logging.getLogger("dockyard")


class ConfigError(Exception):
    """A setting has an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 5000
    external_url: str = ""  # default: http://<host>:<port>
    database_url: str = ""  # default: SQLite in the data folder
    secret_key: str = ""  # default: generated into <data_dir>/secret_key
    upstream_url: str = "https://registry-1.docker.io"
    registry_token_expire_minutes: int = 15
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line
    instance_name: str = ""  # default: the machine's hostname (logs, /metrics)
    workers: int = 0  # default: one per CPU this process may run on
    auto_migrate: bool = True
    trusted_proxies: tuple[str, ...] = ()
    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 30.0
    manifest_max_bytes: int = 4 * MIB
    blob_max_bytes: int = 10 * GIB
    cleanup_interval_seconds: int = 300
    # The instance's disk budget for cached bytes (0: none); admins may override it.
    disk_budget: int = 0
    warm_poll_seconds: float = 2.0  # how often the worker looks for queued pre-warm jobs
    tags_list_cache_seconds: int = 60  # a tag list page is reused this long (0: always ask)
    negative_cache_seconds: int = 60  # an upstream 404 for a tag is remembered this long
    metrics_token: str = ""
    max_header_bytes: int = 64 * KIB  # request line + headers, enforced by the HTTP server
    max_body_bytes: int = 1 * MIB  # GraphQL, forms and /jwt/auth bodies
    # Password guessing: failed checks allowed before each further attempt waits
    # (backoff doubling up to the maximum delay); see docs/security.md.
    password_throttle_per_account_address: int = 5
    password_throttle_per_address: int = 30
    password_throttle_per_account: int = 20
    password_throttle_max_delay_seconds: int = 900
    # S3-compatible blob storage: on when a bucket is named. Credentials come from
    # the standard AWS chain (AWS_ACCESS_KEY_ID/..., profiles, instance roles).
    s3_bucket: str = ""
    s3_endpoint_url: str = ""  # default: AWS
    s3_region: str = ""  # default: the AWS chain's (AWS_DEFAULT_REGION, profile)
    s3_prefix: str = ""  # keys are <prefix>blobs/sha256/ab/<hex>
    s3_redirect: bool = False  # cached blobs: 307 to a pre-signed URL
    # Scale-out (PostgreSQL + S3): where other instances reach this one's internal
    # endpoint, and how long a download lease outlives its holder's last renewal.
    internal_url: str = ""  # default: http://<host or this machine's name>:<port>
    download_lease_seconds: float = 10.0
    # Registry-mirror mode: plain Docker Hub paths (/v2/library/alpine/...) are
    # answered from this group's cache (dockerd's registry-mirrors and the like).
    mirror_group: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None (PostgreSQL, or an in-memory database)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.removeprefix("sqlite://").split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    @property
    def scales_out(self) -> bool:
        """PostgreSQL and S3: several instances may share the work (download leases)."""
        return bool(self.s3_bucket) and not self.is_sqlite

    @property
    def registry_host(self) -> str:
        """`host[:port]` as users type it in `docker pull` (lower case)."""
        return urlsplit(self.external_url).netloc.lower()

    @property
    def external_url_is_default(self) -> bool:
        """True when DOCKYARD_EXTERNAL_URL was not set (it is derived from host and port)."""
        return self.external_url == _default_external_url(self.host, self.port)

    def __repr__(self) -> str:  # never print the secret key
        return f"Settings(data_dir={self.data_dir!s}, external_url={self.external_url})"


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


def _parse_non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be zero or more")
    return number


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*((?:[kmgtp]i?)?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}


def human_size(size: int | None) -> str:
    """As the pages and the command line show sizes: 1.50 KiB, 23.40 MiB, 0 B
    (`parse_size` reads them back)."""
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"  # pragma: no cover


def parse_size(value: str) -> int:
    """Bytes from `10GiB`, `500 MB`, `1.5TiB` or a plain number of bytes (the one rule,
    for the settings, the CLI, pages and GraphQL). Binary units (KiB) are powers of
    1024, decimal ones (KB) of 1000; ValueError says what is wrong."""
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value.strip()!r} is not a size (say 10GiB, 500MB or bytes)")
    number, unit = match.group(1), (match.group(2) or "").lower().rstrip("b")
    binary = unit.endswith("i")
    factor = 1024 ** ("kmgtp".index(unit[0]) + 1) if binary else _SIZE_UNITS[unit]
    return int(float(number) * factor) if "." in number else int(number) * factor


def _parse_positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be a positive number")
    return number


def _parse_port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be between 0 and 65535")
    return number


def _parse_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def _parse_database_url(value: str) -> str:
    if not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise ValueError("must start with sqlite:// or postgres://")
    return value


def _parse_log_level(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return lowered


def _parse_log_format(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return lowered


def _parse_instance_name(value: str) -> str:
    # It goes into every log line and a metrics label: no spaces, quotes or controls.
    if not _INSTANCE_NAME.fullmatch(value.strip()):
        raise ValueError("must be 1-63 letters, digits, '.', '_' or '-'")
    return value.strip()


def _parse_proxies(value: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        ipaddress.ip_network(item, strict=False)
    return items


def _parse_secret(value: str) -> str:
    if len(value) < 32:
        raise ValueError("must be at least 32 characters")
    return value


def _parse_prefix(value: str) -> str:
    """A key prefix: no leading slash, and one trailing slash (added if missing)."""
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else f"{value}/"


_PARSERS: dict[str, Callable[[str], Any]] = {
    "data_dir": lambda value: Path(value).expanduser(),
    "host": str,
    "port": _parse_port,
    "external_url": _parse_url,
    "database_url": _parse_database_url,
    "secret_key": _parse_secret,
    "upstream_url": _parse_url,
    "registry_token_expire_minutes": _parse_positive_int,
    "log_level": _parse_log_level,
    "log_format": _parse_log_format,
    "instance_name": _parse_instance_name,
    "workers": _parse_positive_int,
    "auto_migrate": _parse_bool,
    "trusted_proxies": _parse_proxies,
    "upstream_connect_timeout": _parse_positive_float,
    "upstream_read_timeout": _parse_positive_float,
    "manifest_max_bytes": _parse_positive_int,
    "blob_max_bytes": _parse_positive_int,
    "cleanup_interval_seconds": _parse_positive_int,
    "disk_budget": parse_size,
    "warm_poll_seconds": _parse_positive_float,
    "tags_list_cache_seconds": _parse_non_negative_int,
    "negative_cache_seconds": _parse_non_negative_int,
    "metrics_token": str,
    "max_header_bytes": _parse_positive_int,
    "max_body_bytes": _parse_positive_int,
    "password_throttle_per_account_address": _parse_positive_int,
    "password_throttle_per_address": _parse_positive_int,
    "password_throttle_per_account": _parse_positive_int,
    "password_throttle_max_delay_seconds": _parse_positive_int,
    "s3_bucket": str,
    "s3_endpoint_url": _parse_url,
    "s3_region": str,
    "s3_prefix": _parse_prefix,
    "s3_redirect": _parse_bool,
    "internal_url": _parse_url,
    "download_lease_seconds": _parse_positive_float,
    "mirror_group": lambda value: value.strip().strip("/"),
}


def _read_config_file(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"DOCKYARD_CONFIG: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"DOCKYARD_CONFIG: {path} is not valid TOML: {error}") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in _PARSERS:
            raise ConfigError(f"DOCKYARD_CONFIG: unknown setting {key!r} in {path}")
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        values[key] = str(value)
    return values


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings; keyword overrides (tests) win over everything."""
    environ = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    if config_path := environ.get("DOCKYARD_CONFIG"):
        raw.update(_read_config_file(config_path))
    for name in _PARSERS:
        env_name = f"DOCKYARD_{name.upper()}"
        if env_name in environ and environ[env_name] != "":
            raw[name] = environ[env_name]

    values: dict[str, Any] = {}
    for name, text in raw.items():
        try:
            values[name] = _PARSERS[name](text)
        except ValueError as error:
            reason = str(error) if "invalid literal" not in str(error) else "not a number"
            raise ConfigError(
                f"DOCKYARD_{name.upper()}: invalid value {text!r}: {reason}"
            ) from None
    values.update(overrides)
    known = {item.name for item in fields(Settings)}
    settings = Settings(**{key: value for key, value in values.items() if key in known})
    return _complete(settings)


def _complete(settings: Settings) -> Settings:
    """Fill the defaults that depend on other settings."""
    data_dir = settings.data_dir.resolve()
    external_url = settings.external_url or _default_external_url(settings.host, settings.port)
    database_url = settings.database_url or f"sqlite://{data_dir / 'dockyard.sqlite3'}"
    instance_name = settings.instance_name or _default_instance_name()
    internal_url = settings.internal_url or _default_internal_url(settings.host, settings.port)
    return _replace(
        settings,
        data_dir=data_dir,
        external_url=external_url,
        database_url=database_url,
        workers=settings.workers or available_cpus(),
        instance_name=instance_name,
        internal_url=internal_url,
    )


def available_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _default_instance_name() -> str:
    """The hostname (a pod's name on Kubernetes), cut to what a setting may hold."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:63].lstrip("._-")
    return name or "dockyard"


def _default_external_url(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _default_internal_url(host: str, port: int) -> str:
    """Where other instances reach this one: the listen address, or this machine's
    name when listening on every interface."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _replace(settings: Settings, **changes: Any) -> Settings:
    current = {item.name: getattr(settings, item.name) for item in fields(Settings)}
    current.update(changes)
    return Settings(**current)


def prepare_data_dir(settings: Settings) -> Settings:
    """Create the data folder (0700, an existing one tightened) and the secret key.

    When no key is configured, one is generated on first start and kept in
    `<data_dir>/secret_key` with mode 0600, so restarts keep sessions and
    tokens valid. The SQLite file is created 0600 before SQLite opens it:
    SQLite gives its WAL and shared-memory files the database file's mode.
    """
    try:
        settings.data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"DOCKYARD_DATA_DIR: cannot create {settings.data_dir}: {error.strerror}"
        ) from None
    _tighten(settings.data_dir)
    if (database := settings.sqlite_path) is not None:
        _create_private_file(database)
    if settings.secret_key:
        return settings
    key_file = settings.data_dir / SECRET_KEY_FILE
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        secret = key_file.read_text().strip()
        if len(secret) < 32:
            raise ConfigError(f"DOCKYARD_SECRET_KEY: {key_file} is damaged (too short)") from None
        return _replace(settings, secret_key=secret)
    except OSError as error:
        raise ConfigError(f"DOCKYARD_DATA_DIR: cannot write {key_file}: {error.strerror}") from None
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return _replace(settings, secret_key=secret)


def _tighten(data_dir: Path) -> None:
    """Take group and other access away from the data folder and what lies directly in it.

    Not recursive: with the folder at 0700 nobody else can reach what is below
    it, and a walk over every blob on each start would cost minutes on a big cache.
    """
    for path in (data_dir, *data_dir.iterdir()):
        try:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not mode & 0o077:
                continue
            path.chmod(PRIVATE_DIR_MODE if stat.S_ISDIR(mode) else PRIVATE_FILE_MODE)
        except OSError as error:  # not ours (a shared volume): say so, do not refuse to start
            log.warning("cannot restrict the permissions of %s: %s", path, error.strerror)


def _create_private_file(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    except OSError as error:  # SQLite itself reports a database it cannot open
        log.warning("cannot create %s: %s", path, error.strerror)
