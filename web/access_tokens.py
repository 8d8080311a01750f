"""A group's access tokens (`/groups/<path>/-/settings/access_tokens`), as on GitLab 16+.

Owners create a token with a name, a role, scopes and an expiry; its secret is
rendered in that one answer only. The list shows every token with its role,
scopes, last use and expiry, and a Revoke button.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.accounts import token_lifetime
from app.accounts.principal import ALL_SCOPES, Principal
from app.errors import AlreadyExists, InvalidInput
from app.groups import access_tokens
from app.groups.models import AccessLevel, Group
from web.guards import parse_date_field, text
from web.paging import listing
from web.rendering import flash, group_crumbs, redirect, render, sentence

PAGE = "settings/access_tokens"
ROLES = [(level.name.lower(), level.label) for level in AccessLevel]
SCOPE_HELP = {
    "api": "Full read and write access to the API, and pulls through the Dependency Proxy.",
    "read_api": "Read-only access to the API (GraphQL queries).",
    "read_registry": "Pull images (together with write_registry).",
    "write_registry": "Needed with read_registry to pull through the Dependency Proxy.",
}


async def _page(
    request: Request, principal: Principal, group: Group, *, status_code: int = 200, **extra: Any
) -> Response:
    async def tokens_of(**page: Any) -> Any:
        return await access_tokens.group_access_tokens_page(principal, group, **page)

    context: dict[str, Any] = {
        "group": group,
        "tokens": await listing(request, "tokens_", tokens_of, searchable=False),
        "roles": ROLES,
        "scopes": [(scope, SCOPE_HELP[scope]) for scope in sorted(ALL_SCOPES)],
        "max_lifetime_days": await token_lifetime.max_lifetime_days(),
        "form": {"role": "guest", "scopes": []},
        "error": None,
        "created": None,
        "is_owner": True,
        "crumbs": [*group_crumbs(group), ("Settings", None), ("Access tokens", None)],
        "tab": "settings",
    }
    context.update(extra)
    return render(
        request, "group_access_tokens.html", context, status_code=status_code, principal=principal
    )


def _back(group: Group) -> Response:
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


async def show(request: Request, principal: Principal, group: Group) -> Response:
    return await _page(request, principal, group)


async def create(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "role": text(form, "role"),
        "expires_at": text(form, "expires_at"),
        "scopes": [scope for scope in form.getlist("scopes") if isinstance(scope, str)],
    }
    try:
        expires_at = parse_date_field(values["expires_at"])
        created = await access_tokens.create_group_access_token(
            principal, group, values["name"], values["role"], values["scopes"], expires_at
        )
    except (InvalidInput, AlreadyExists) as error:
        return await _page(
            request, principal, group, status_code=400, form=values, error=sentence(error.message)
        )
    # Shown in this answer only; the secret is never stored, flashed or rendered again.
    return await _page(request, principal, group, created=created)


async def revoke(request: Request, principal: Principal, group: Group) -> Response:
    name = text(await request.form(), "name")
    try:
        await access_tokens.revoke_group_access_token(principal, group, name)
    except InvalidInput as error:
        flash(request, sentence(error.message), "alert")
        return _back(group)
    flash(request, f"Access token {name} was revoked; it stopped working at once.")
    return _back(group)


pages = {
    ("GET", PAGE): show,
    ("POST", PAGE): create,
    ("POST", f"{PAGE}/revoke"): revoke,
}
