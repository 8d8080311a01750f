"""Errors of the accounts domain; each surface translates them."""

from __future__ import annotations

from app.errors import DockyardError


class TooManyAttempts(DockyardError):
    """Too many failed password checks: no password is checked for `retry_after` seconds.

    Said the same way whether the account exists or not."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(
            "too many failed sign-in attempts: try again in " + _duration(self.retry_after)
        )


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"
