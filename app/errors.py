"""Errors shared by every domain; each surface translates them."""

from __future__ import annotations


class DockyardError(Exception):
    """Base class: `message` is safe to show to the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DockyardError):
    """The request is malformed or breaks a rule (path rules, scopes, dates)."""


class NotFound(DockyardError):
    """No such thing, or the principal may not know it exists."""


class AlreadyExists(DockyardError):
    """A unique name is taken."""


class PermissionDenied(DockyardError):
    """The principal is known but not allowed."""


class InsufficientScope(PermissionDenied):
    """The principal would be allowed, but its token's scopes do not cover the action
    (a `read_api` token asking to change something). Surfaces say so."""
