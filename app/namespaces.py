"""Namespace rules that users and groups share (as on GitLab, a username and a top-level
group path live in one namespace): the characters allowed, and the reserved names.

Core, not a domain: `app.accounts` (usernames) and `app.groups` (group paths) both
use these rules without importing each other.
"""

from __future__ import annotations

import re

MAX_PATH_LENGTH = 255
PATH_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")

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


def username_error(username: str) -> str | None:
    if not 2 <= len(username) <= MAX_PATH_LENGTH:
        return f"username must be 2 to {MAX_PATH_LENGTH} characters"
    if not PATH_RE.match(username):
        return (
            "username can contain only letters, digits, '_', '-' and '.', "
            "and cannot start or end with a special character"
        )
    if username.lower() in TOP_LEVEL_RESERVED | ANY_LEVEL_RESERVED:
        return f"username {username!r} is reserved"
    return None
