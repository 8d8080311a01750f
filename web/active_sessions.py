"""Your active sessions (`/-/user_settings/active_sessions`): see them, end them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import active_sessions
from app.accounts.principal import Principal
from app.errors import NotFound
from web import user_agents
from web.guards import signed_in, text
from web.rendering import flash, redirect, render, sentence

PATH = "/-/user_settings/active_sessions"


@signed_in
async def show(request: Request, principal: Principal) -> Response:
    assert principal.session is not None
    sessions = await active_sessions.list_sessions(principal)
    rows = [
        {
            "id": item.id,
            "browser": user_agents.describe(item.user_agent),
            "address": item.ip_address,
            "created_at": item.created_at,
            "last_activity_at": item.last_activity_at,
            "current": item.id == principal.session.id,
        }
        for item in sessions
    ]
    context = {
        "sessions": rows,
        "crumbs": [("User settings", None), ("Active sessions", None)],
    }
    return render(request, "active_sessions.html", context, principal=principal)


@signed_in
async def revoke(request: Request, principal: Principal) -> Response:
    value = text(await request.form(), "id")
    try:
        if not value.isdigit():
            raise NotFound("that session has already ended")
        await active_sessions.revoke_session(principal, int(value))
    except NotFound as error:
        flash(request, sentence(error.message), "alert")
        return redirect(PATH)
    flash(request, "The session was revoked: that browser is signed out.")
    return redirect(PATH)


@signed_in
async def revoke_others(request: Request, principal: Principal) -> Response:
    ended = await active_sessions.sign_out_everywhere_else(principal)
    flash(request, f"Signed out everywhere else ({ended} session{'s' if ended != 1 else ''}).")
    return redirect(PATH)


routes = [
    Route(PATH, show, methods=["GET"]),
    Route(f"{PATH}/revoke", revoke, methods=["POST"]),
    Route(f"{PATH}/revoke_others", revoke_others, methods=["POST"]),
]
