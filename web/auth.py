"""Sign in and sign out (`/users/sign_in`, `/users/sign_out`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import users
from app.accounts.authentication import PasswordCheck, authenticate_password
from app.accounts.errors import TooManyAttempts
from app.accounts.sessions import sign_in, sign_out
from app.identity import principal_of
from web.guards import (
    PASSWORD_PAGE,
    client_address,
    csrf_refusal,
    text,
    user_agent,
)
from web.rendering import flash, redirect, render, sentence

BAD_LOGIN = "Invalid login or password."


def safe_target(value: str | None) -> str:
    """Only local paths: never send someone to another site after signing in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def sign_in_page(request: Request) -> Response:
    if principal_of(request) is not None:
        return redirect(safe_target(request.query_params.get("redirect_to")))
    return _form(request, login="", error=None)


def _form(
    request: Request,
    login: str,
    error: str | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    response = render(
        request,
        "sign_in.html",
        {
            "login": login,
            "error": error,
            "redirect_to": safe_target(request.query_params.get("redirect_to")),
        },
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


async def sign_in_submit(request: Request) -> Response:
    if refusal := await csrf_refusal(request):
        return refusal
    form = await request.form()
    login, password = text(form, "login"), form.get("password")
    password = password if isinstance(password, str) else ""
    if not login or not password:
        return _form(request, login, "Enter your username or email and your password.", 400)
    settings = request.app.state.settings
    check = PasswordCheck.of(settings, client_address(request), "web")
    try:
        user = await authenticate_password(login, password, check)
    except TooManyAttempts as error:
        retry = {"Retry-After": str(error.retry_after)}
        return _form(request, login, sentence(error.message), 429, retry)
    if user is None:
        return _form(request, login, BAD_LOGIN, status_code=401)
    await sign_in(request.session, user, client_address(request), user_agent(request))
    await users.record_sign_in(user)
    if user.password_change_required:
        return redirect(PASSWORD_PAGE)
    return redirect(safe_target(text(form, "redirect_to")))


async def sign_out_submit(request: Request) -> Response:
    if refusal := await csrf_refusal(request):
        return refusal
    signed_in = principal_of(request) is not None
    await sign_out(request.session)
    if not signed_in:
        return redirect("/users/sign_in")
    flash(request, "Signed out.", "notice")
    return redirect("/users/sign_in")


routes = [
    Route("/users/sign_in", sign_in_page, methods=["GET"]),
    Route("/users/sign_in", sign_in_submit, methods=["POST"]),
    Route("/users/sign_out", sign_out_submit, methods=["POST"]),
]
