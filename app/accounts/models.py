"""Users, the tokens that stand for them, their web sessions, and password-guess counters."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from app import clock


class UserState(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class UserType(StrEnum):
    """GitLab's user types: a person, or the bot behind a group access token."""

    HUMAN = "human"
    GROUP_BOT = "group_bot"


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=255)
    # Usernames and emails are unique regardless of case, as on GitLab.
    username_key = fields.CharField(max_length=255, unique=True)
    email = fields.CharField(max_length=255, unique=True)
    name = fields.CharField(max_length=255, default="")
    password_hash = fields.CharField(max_length=255)
    is_admin = fields.BooleanField(default=False)
    state = fields.CharEnumField(UserState, max_length=16, default=UserState.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_sign_in_at = fields.DatetimeField(null=True)
    # Set for root's first start and by an admin's reset: web pages send the
    # user to the password page until they choose a password of their own.
    password_change_required = fields.BooleanField(default=False)
    # A bot exists only for its group access token: no password, no sign-in.
    user_type = fields.CharEnumField(UserType, max_length=16, default=UserType.HUMAN)
    # Raised by a password change, a reset and "sign out everywhere": registry
    # tokens obtained with the password carry it and die when it moves on.
    credentials_version = fields.IntField(default=0)

    class Meta:
        table = "users"

    @property
    def is_active(self) -> bool:
        return self.state == UserState.ACTIVE

    @property
    def is_bot(self) -> bool:
        return self.user_type != UserType.HUMAN


class PersonalAccessToken(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="personal_access_tokens", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=255)
    # sha256 of the secret; the secret itself is shown once and never stored.
    token_digest = fields.CharField(max_length=64, unique=True)
    scopes = fields.CharField(max_length=255)
    expires_at = fields.DateField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "personal_access_tokens"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split(",")) if self.scopes else frozenset()

    @property
    def is_live(self) -> bool:
        """Neither revoked nor expired (a token expires at the start of its expiry date)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > clock.today()


class DeployToken(Model):
    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Group", related_name="deploy_tokens", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=255)
    username = fields.CharField(max_length=255, unique=True)
    token_digest = fields.CharField(max_length=64, unique=True)
    scopes = fields.CharField(max_length=255)
    expires_at = fields.DateField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "deploy_tokens"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split(",")) if self.scopes else frozenset()

    @property
    def is_live(self) -> bool:
        """Neither revoked nor expired (a token expires at the start of its expiry date)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > clock.today()


class UserSession(Model):
    """A signed-in browser, referenced by the random id in its session cookie.

    Only the id's sha256 is stored, so a copy of the database lets nobody sign
    in; ending the row ends the session wherever the cookie was copied to."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    session_digest = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Written at most once a minute, so a busy page costs no write per request.
    last_activity_at = fields.DatetimeField()
    ip_address = fields.CharField(max_length=64, default="")
    user_agent = fields.CharField(max_length=255, default="")
    ended_at = fields.DatetimeField(null=True)
    end_reason = fields.CharField(max_length=32, default="")

    class Meta:
        table = "user_sessions"
        indexes = (("user_id", "ended_at"),)


class PasswordThrottle(Model):
    """A counter of failed password checks, or an address known good for an account.

    Keyed by an HMAC of what it counts: (account, address), address, account,
    or (account, known address); see app/accounts/throttle.py."""

    id = fields.IntField(primary_key=True)
    key_digest = fields.CharField(max_length=64, unique=True)
    failures = fields.IntField(default=0)
    last_failure_at = fields.DatetimeField(null=True)
    # No password is checked for this key before then (the backoff).
    next_attempt_at = fields.DatetimeField(null=True)
    # For known-address rows: the last successful check for that account from there.
    last_success_at = fields.DatetimeField(null=True)
    # The sweep deletes rows past this moment; counts are forgotten with them.
    expires_at = fields.DatetimeField(db_index=True)
    # Compare-and-set guard: concurrent checks in any process count exactly.
    version = fields.IntField(default=0)

    class Meta:
        table = "password_throttles"


class AccessTokenSetting(Model):
    """The instance's rules for personal and group access tokens (one row), set by admins.

    Kept by the accounts domain itself (not with the instance settings, which
    sit above accounts): creating a token must read it."""

    id = fields.IntField(primary_key=True)
    # None: no maximum. Otherwise tokens created from then on expire within this many days.
    max_lifetime_days = fields.IntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "access_token_settings"
