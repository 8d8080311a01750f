"""GitLab-like path rules for group paths (and usernames, which share the namespace rules)."""

from __future__ import annotations

import re

MAX_PATH_LENGTH = 255
MAX_DEPTH = 20

_PATH_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")

# Top-level names that collide with Dockyard's own routes or GitLab's reserved
# words; any level may not be `dependency_proxy` or `-` (they split our URLs).
TOP_LEVEL_RESERVED = frozenset(
    {
        "-",
        ".well-known",
        "404.html",
        "422.html",
        "500.html",
        "502.html",
        "503.html",
        "admin",
        "api",
        "assets",
        "dashboard",
        "explore",
        "favicon.ico",
        "favicon.png",
        "files",
        "groups",
        "health_check",
        "help",
        "import",
        "jwt",
        "login",
        "metrics",
        "oauth",
        "profile",
        "projects",
        "public",
        "robots.txt",
        "s",
        "search",
        "sitemap",
        "sitemap.xml",
        "static",
        "uploads",
        "users",
        "user_settings",
        "v2",
    }
)
ANY_LEVEL_RESERVED = frozenset({"-", "dependency_proxy", "containers"})


def path_error(path: str, *, top_level: bool) -> str | None:
    """Why `path` is not a valid group path segment, or None when it is."""
    if not path:
        return "path can't be blank"
    if len(path) > MAX_PATH_LENGTH:
        return f"path is too long (maximum is {MAX_PATH_LENGTH} characters)"
    if not _PATH_RE.match(path):
        return (
            f"path {path!r} can contain only letters, digits, '_', '-' and '.', "
            "and cannot start or end with a special character"
        )
    lowered = path.lower()
    if lowered.endswith((".git", ".atom")):
        return f"path {path!r} cannot end in .git or .atom"
    if lowered in ANY_LEVEL_RESERVED or (top_level and lowered in TOP_LEVEL_RESERVED):
        return f"path {path!r} is a reserved name"
    return None


def full_path_error(full_path: str) -> str | None:
    """Why `full_path` (a/b/c) is not a valid group full path, or None."""
    parts = full_path.split("/")
    if len(parts) > MAX_DEPTH:
        return f"groups can be nested at most {MAX_DEPTH} levels deep"
    for index, part in enumerate(parts):
        if error := path_error(part, top_level=index == 0):
            return error
    return None


def username_error(username: str) -> str | None:
    if not 2 <= len(username) <= MAX_PATH_LENGTH:
        return f"username must be 2 to {MAX_PATH_LENGTH} characters"
    if not _PATH_RE.match(username):
        return (
            "username can contain only letters, digits, '_', '-' and '.', "
            "and cannot start or end with a special character"
        )
    if username.lower() in TOP_LEVEL_RESERVED | ANY_LEVEL_RESERVED:
        return f"username {username!r} is reserved"
    return None


def full_path_key(full_path: str) -> str:
    return full_path.strip("/").lower()
