"""Users and the tokens that stand for them."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class UserState(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


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

    class Meta:
        table = "users"

    @property
    def is_active(self) -> bool:
        return self.state == UserState.ACTIVE


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
