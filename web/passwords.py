"""Change your password (`/-/user_settings/password/edit`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts.authentication import PasswordCheck
from app.accounts.change_password import change_password
from app.accounts.errors import TooManyAttempts
from app.accounts.passwords import MIN_PASSWORD_LENGTH
from app.accounts.principal import Principal
from app.accounts.sessions import sign_in
from app.errors import InvalidInput
from web.guards import (
    PASSWORD_PAGE,
    client_address,
    signed_in_before_password_change,
    user_agent,
)
from web.rendering import flash, redirect, render, sentence

CHANGED = "Password changed. Every other session of yours was signed out."


async def _page(
    request: Request,
    principal: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context: dict[str, Any] = {
        "error": error,
        "min_length": MIN_PASSWORD_LENGTH,
        "crumbs": [("User settings", None), ("Password", None)],
    }
    # Passwords are never written back into the form, not even after an error.
    response = render(
        request, "password_edit.html", context, status_code=status_code, principal=principal
    )
    response.headers.update(headers or {})
    return response


@signed_in_before_password_change
async def show(request: Request, principal: Principal) -> Response:
    return await _page(request, principal)


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@signed_in_before_password_change
async def update(request: Request, principal: Principal) -> Response:
    assert principal.user is not None
    form = await request.form()
    was_required = principal.user.password_change_required
    check = PasswordCheck.of(request.app.state.settings, client_address(request), "password_change")
    try:
        user = await change_password(
            principal,
            _field(form, "current_password"),
            _field(form, "new_password"),
            _field(form, "password_confirmation"),
            check,
        )
    except TooManyAttempts as error:
        retry = {"Retry-After": str(error.retry_after)}
        return await _page(
            request, principal, error=sentence(error.message), status_code=429, headers=retry
        )
    except InvalidInput as error:
        return await _page(request, principal, error=sentence(error.message), status_code=400)
    # Every session ended, this one too: this browser continues on a fresh session id,
    # so a copy of its old cookie is as dead as the others.
    await sign_in(request.session, user, client_address(request), user_agent(request))
    flash(request, CHANGED)
    return redirect("/" if was_required else PASSWORD_PAGE)


routes = [
    Route(PASSWORD_PAGE, show, methods=["GET"]),
    Route(PASSWORD_PAGE, update, methods=["POST"]),
]
