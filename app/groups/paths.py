"""GitLab-like path rules for group paths (and usernames, which share the namespace rules)."""

from __future__ import annotations

from app.namespaces import (
    ANY_LEVEL_RESERVED,
    MAX_PATH_LENGTH,
    PATH_RE,
    TOP_LEVEL_RESERVED,
    username_error,
)

__all__ = ["full_path_error", "full_path_key", "path_error", "username_error"]

MAX_DEPTH = 20


def path_error(path: str, *, top_level: bool) -> str | None:
    """Why `path` is not a valid group path segment, or None when it is."""
    if not path:
        return "path can't be blank"
    if len(path) > MAX_PATH_LENGTH:
        return f"path is too long (maximum is {MAX_PATH_LENGTH} characters)"
    if not PATH_RE.match(path):
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


def full_path_key(full_path: str) -> str:
    return full_path.strip("/").lower()
