"""Nested groups and who belongs to them."""

from __future__ import annotations

from enum import IntEnum, StrEnum

from tortoise import fields
from tortoise.models import Model


class AccessLevel(IntEnum):
    """GitLab's access levels; membership of an ancestor counts for descendants."""

    GUEST = 10
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50

    @property
    def label(self) -> str:
        return self.name.capitalize()


class Visibility(StrEnum):
    PRIVATE = "private"
    INTERNAL = "internal"
    PUBLIC = "public"


class Group(Model):
    id = fields.IntField(primary_key=True)
    parent: fields.ForeignKeyNullableRelation[Group] = fields.ForeignKeyField(
        "models.Group", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    path = fields.CharField(max_length=255)
    full_path = fields.CharField(max_length=2048)
    # Lower-cased full path: paths are unique and matched regardless of case.
    full_path_key = fields.CharField(max_length=2048, unique=True)
    name = fields.CharField(max_length=255)
    description = fields.TextField(default="")
    visibility = fields.CharEnumField(Visibility, max_length=16, default=Visibility.PRIVATE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "groups"

    @property
    def ancestor_keys(self) -> list[str]:
        """Full-path keys of this group and every ancestor, nearest last."""
        parts = self.full_path_key.split("/")
        return ["/".join(parts[: index + 1]) for index in range(len(parts))]


class Membership(Model):
    id = fields.IntField(primary_key=True)
    group: fields.ForeignKeyRelation[Group] = fields.ForeignKeyField(
        "models.Group", related_name="memberships", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="memberships", on_delete=fields.CASCADE
    )
    access_level = fields.IntEnumField(AccessLevel)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "memberships"
        unique_together = (("group", "user"),)
