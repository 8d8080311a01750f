"""Group members and deploy tokens (`/groups/<path>/-/group_members`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import DEPLOY_TOKEN_SCOPES, Principal
from app.errors import AlreadyExists, DockyardError, InvalidInput, NotFound
from app.groups import deploy_tokens
from app.groups import services as groups
from app.groups.deploy_tokens import CreatedDeployToken
from app.groups.models import AccessLevel, Group
from web.guards import parse_date_field, text
from web.paging import listing
from web.rendering import flash, group_crumbs, redirect, render, sentence

PAGE = "group_members"
ROLES = [(level.name.lower(), level.label) for level in AccessLevel]


def _sentence(error: DockyardError) -> str:
    return sentence(error.message)


async def _page(
    request: Request,
    principal: Principal,
    group: Group,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    is_owner = await groups.may_administer(principal, group)

    async def members_of(**page: Any) -> Any:
        return await groups.members_page(principal, group, **page)

    async def deploy_tokens_of(**page: Any) -> Any:
        return await deploy_tokens.deploy_tokens_page(principal, group, **page)

    context: dict[str, Any] = {
        "group": group,
        "members": await listing(request, "members_", members_of),
        "deploy_tokens": (
            await listing(request, "tokens_", deploy_tokens_of, searchable=False)
            if is_owner
            else None
        ),
        "is_owner": is_owner,
        "roles": ROLES,
        "deploy_scopes": sorted(DEPLOY_TOKEN_SCOPES),
        "crumbs": [*group_crumbs(group), ("Members", None)],
        "tab": "members",
        "add_form": {"role": "developer"},
        "add_error": None,
        "token_form": {"scopes": sorted(DEPLOY_TOKEN_SCOPES)},
        "token_error": None,
        "created_token": None,
        "member_error": None,
    }
    context.update(extra)
    return render(request, "members.html", context, status_code=status_code, principal=principal)


async def show(request: Request, principal: Principal, group: Group) -> Response:
    return await _page(request, principal, group)


async def add_member(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values = {"username": text(form, "username"), "role": text(form, "role")}
    try:
        membership = await groups.set_member(principal, group, values["username"], values["role"])
    except (InvalidInput, NotFound) as error:
        return await _page(
            request, principal, group, status_code=400, add_form=values, add_error=_sentence(error)
        )
    level = AccessLevel(membership.access_level)
    flash(request, f"{values['username']} is now {level.label} of {group.full_path}.")
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


async def change_role(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    username, role = text(form, "username"), text(form, "role")
    try:
        membership = await groups.set_member(principal, group, username, role)
    except (InvalidInput, NotFound) as error:
        return await _page(
            request, principal, group, status_code=400, member_error=_sentence(error)
        )
    level = AccessLevel(membership.access_level)
    flash(request, f"{username}'s role is now {level.label}.")
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


async def remove_member(request: Request, principal: Principal, group: Group) -> Response:
    username = text(await request.form(), "username")
    try:
        await groups.remove_member(principal, group, username)
    except (InvalidInput, NotFound) as error:
        return await _page(
            request, principal, group, status_code=400, member_error=_sentence(error)
        )
    flash(request, f"{username} was removed from {group.full_path}.")
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


async def create_deploy_token(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "username": text(form, "username"),
        "expires_at": text(form, "expires_at"),
        "scopes": [scope for scope in form.getlist("scopes") if isinstance(scope, str)],
    }
    try:
        expires_at = parse_date_field(values["expires_at"])
        created: CreatedDeployToken = await deploy_tokens.create_deploy_token(
            principal, group, values["name"], values["scopes"], expires_at, values["username"]
        )
    except (InvalidInput, AlreadyExists) as error:
        return await _page(
            request,
            principal,
            group,
            status_code=400,
            token_form=values,
            token_error=_sentence(error),
        )
    # The secret is rendered in this answer only: it is never stored, flashed or shown again.
    return await _page(request, principal, group, created_token=created)


async def revoke_deploy_token(request: Request, principal: Principal, group: Group) -> Response:
    name = text(await request.form(), "name")
    try:
        await deploy_tokens.revoke_deploy_token(principal, group, name)
    except NotFound as error:
        return await _page(
            request, principal, group, status_code=400, member_error=_sentence(error)
        )
    flash(request, f"Deploy token {name} was revoked.")
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


pages = {
    ("GET", PAGE): show,
    ("POST", PAGE): add_member,
    ("POST", f"{PAGE}/role"): change_role,
    ("POST", f"{PAGE}/remove"): remove_member,
    ("POST", f"{PAGE}/deploy_tokens"): create_deploy_token,
    ("POST", f"{PAGE}/deploy_tokens/revoke"): revoke_deploy_token,
}
