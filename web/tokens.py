"""Personal access tokens (`/-/user_settings/personal_access_tokens`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import personal_access_tokens as tokens
from app.accounts import token_lifetime
from app.accounts.principal import ALL_SCOPES, Principal
from app.errors import AlreadyExists, InvalidInput, NotFound
from web.guards import parse_date_field, signed_in, text
from web.paging import listing
from web.rendering import flash, redirect, render, sentence

PATH = "/-/user_settings/personal_access_tokens"
SCOPE_HELP = {
    "api": "Full read and write access to the API, including pulls through the Dependency Proxy.",
    "read_api": "Read-only access to the API (GraphQL queries).",
    "read_registry": "Pull images (together with write_registry, for the Dependency Proxy).",
    "write_registry": "Needed with read_registry to pull through the Dependency Proxy.",
}
# What a token is for → its scopes. Nothing is checked until one is chosen (a preset or
# the boxes), so a token meant for scripts never gets registry scopes unasked.
PRESETS = {
    "docker": ("docker pull", ("read_registry", "write_registry")),
    "scripts": ("scripts", ("api",)),
    "monitoring": ("monitoring", ("read_api",)),
}


async def _page(
    request: Request, principal: Principal, *, status_code: int = 200, **extra: Any
) -> Response:
    async def tokens_of(**page: Any) -> Any:
        return await tokens.personal_access_tokens_page(principal, **page)

    context: dict[str, Any] = {
        "tokens": await listing(request, "", tokens_of, searchable=False),
        "max_lifetime_days": await token_lifetime.max_lifetime_days(),
        "scopes": [(scope, SCOPE_HELP[scope]) for scope in sorted(ALL_SCOPES)],
        "presets": PRESETS,
        "form": {"scopes": []},
        "error": None,
        "created": None,
        "rotated": False,
        "crumbs": [("User settings", None), ("Personal access tokens", None)],
    }
    context.update(extra)
    return render(request, "tokens.html", context, status_code=status_code, principal=principal)


@signed_in
async def show(request: Request, principal: Principal) -> Response:
    # `?preset=` is the presets' form without scripts: the page comes back with its boxes checked.
    preset = PRESETS.get(request.query_params.get("preset", ""))
    if preset is None:
        return await _page(request, principal)
    return await _page(request, principal, form={"scopes": list(preset[1])})


@signed_in
async def create(request: Request, principal: Principal) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "expires_at": text(form, "expires_at"),
        "scopes": [scope for scope in form.getlist("scopes") if isinstance(scope, str)],
    }
    try:
        expires_at = parse_date_field(values["expires_at"])
        created = await tokens.create_personal_access_token(
            principal, values["name"], values["scopes"], expires_at
        )
    except (InvalidInput, AlreadyExists) as error:
        return await _page(
            request, principal, status_code=400, form=values, error=sentence(error.message)
        )
    # Shown in this answer only; the secret is never stored, flashed or rendered again.
    return await _page(request, principal, created=created)


@signed_in
async def revoke(request: Request, principal: Principal) -> Response:
    name = text(await request.form(), "name")
    try:
        await tokens.revoke_personal_access_token(principal, name)
    except NotFound as error:
        flash(request, sentence(error.message), "alert")
        return redirect(PATH)
    flash(request, f"Token {name} was revoked.")
    return redirect(PATH)


@signed_in
async def rotate(request: Request, principal: Principal) -> Response:
    """GitLab's rotate: a new secret with the same name and scopes, shown once; the old
    token stops working at once."""
    name = text(await request.form(), "name")
    try:
        created = await tokens.rotate_personal_access_token(principal, name)
    except (NotFound, InvalidInput) as error:
        flash(request, sentence(error.message), "alert")
        return redirect(PATH)
    return await _page(request, principal, created=created, rotated=True)


routes = [
    Route(PATH, show, methods=["GET"]),
    Route(PATH, create, methods=["POST"]),
    Route(f"{PATH}/revoke", revoke, methods=["POST"]),
    Route(f"{PATH}/rotate", rotate, methods=["POST"]),
]
