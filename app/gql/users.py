"""Users and their tokens in GitLab's shape: the `User` interface, `UserCore`,
`CurrentUser` (what `currentUser` returns), `AccessLevel`, and the token types."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.accounts import personal_access_tokens
from app.accounts.models import PersonalAccessToken as TokenModel
from app.accounts.models import User as UserModel
from app.accounts.models import UserState
from app.gql.connections import Connection, connection
from app.gql.context import Info
from app.gql.scalars import Date, PersonalAccessTokenID, Time, global_id
from app.groups.access_tokens import GroupAccessToken as GroupAccessTokenView
from app.groups.models import AccessLevel


@strawberry.enum(name="UserState", description="Possible states of a user.")
class UserStateEnum(Enum):
    active = "active"
    blocked = "blocked"


@strawberry.enum(name="AccessLevelEnum")
class AccessLevelEnum(Enum):
    GUEST = "GUEST"
    REPORTER = "REPORTER"
    DEVELOPER = "DEVELOPER"
    MAINTAINER = "MAINTAINER"
    OWNER = "OWNER"

    @property
    def level(self) -> AccessLevel:
        return AccessLevel[self.value]


@strawberry.type(name="AccessLevel")
class AccessLevelType:
    integer_value: int
    string_value: AccessLevelEnum

    @classmethod
    def of(cls, level: AccessLevel) -> AccessLevelType:
        return cls(integer_value=int(level), string_value=AccessLevelEnum[level.name])


@strawberry.interface(name="User", description="Representation of a GitLab user.")
class UserInterface:
    model: strawberry.Private[UserModel]

    @strawberry.field(description="Global ID of the user.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(global_id("User", self.model.id))

    @strawberry.field(description="Username of the user.")
    def username(self) -> str:
        return self.model.username

    @strawberry.field(description="Human-readable name of the user.")
    def name(self) -> str:
        return self.model.name

    @strawberry.field(description="State of the user.")
    def state(self) -> UserStateEnum:
        return (
            UserStateEnum.active
            if self.model.state == UserState.ACTIVE
            else (UserStateEnum.blocked)
        )

    @strawberry.field(description="Indicates if the user is a bot.")
    def bot(self) -> bool:
        return self.model.is_bot


@strawberry.type(name="UserCore", description="Core representation of a GitLab user.")
class UserCore(UserInterface):
    pass


@strawberry.type(name="PersonalAccessToken", description="Personal access token.")
class PersonalAccessToken:
    model: strawberry.Private[TokenModel]

    @strawberry.field(description="Global ID of the personal access token.")
    def id(self) -> PersonalAccessTokenID:
        return PersonalAccessTokenID(global_id("PersonalAccessToken", self.model.id))

    @strawberry.field(description="Name of the personal access token.")
    def name(self) -> str:
        return self.model.name

    @strawberry.field(description="Scopes of the token (GitLab: scope objects; here names).")
    def scopes(self) -> list[str]:
        return sorted(self.model.scope_set)

    @strawberry.field(description="Whether the personal access token has been revoked.")
    def revoked(self) -> bool:
        return self.model.revoked_at is not None

    @strawberry.field(description="Whether the personal access token is active.")
    def active(self) -> bool:
        return self.model.is_live

    @strawberry.field(description="Timestamp of when the personal access token was last used.")
    def last_used_at(self) -> Time | None:
        return Time(self.model.last_used_at) if self.model.last_used_at else None

    @strawberry.field(description="Timestamp of when the personal access token was created.")
    def created_at(self) -> Time:
        return Time(self.model.created_at)

    @strawberry.field(description="Date of when the personal access token expires.")
    def expires_at(self) -> Date | None:
        return Date(self.model.expires_at) if self.model.expires_at else None


@strawberry.type(
    name="GroupAccessToken",
    description="Dockyard: a group access token (GitLab has them in its REST API only).",
)
class GroupAccessToken(PersonalAccessToken):
    view: strawberry.Private[GroupAccessTokenView]

    @strawberry.field(description="The role the token's bot holds in the group.")
    def access_level(self) -> AccessLevelType:
        return AccessLevelType.of(self.view.access_level)

    @strawberry.field(description="The bot user the token acts as.")
    def user(self) -> UserCore:
        return UserCore(model=self.view.token.user)

    @classmethod
    def of(cls, view: GroupAccessTokenView) -> GroupAccessToken:
        return cls(model=view.token, view=view)


@strawberry.type(name="CurrentUser", description="The currently authenticated GitLab user.")
class CurrentUser(UserInterface):
    @strawberry.field(description="Dockyard: your personal access tokens, newest first.")
    async def personal_access_tokens(
        self,
        info: Info,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[PersonalAccessToken]:
        from app.gql.types import field_errors

        page = await field_errors(
            personal_access_tokens.personal_access_tokens_page(
                info.context.viewer, first=first, after=after, last=last, before=before
            )
        )
        return connection(page, PersonalAccessToken)
