"""Sign in and sign out (`/users/sign_in`, `/users/sign_out`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import administration, services
from app.accounts.sessions import principal_from_session, sign_in, sign_out
from web.guards import csrf_refusal, text
from web.rendering import flash, redirect, render
from web.throttle import SignInThrottle

BAD_LOGIN = "Invalid login or password."


def safe_target(value: str | None) -> str:
    """Only local paths: never send someone to another site after signing in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def throttle_of(request: Request) -> SignInThrottle:
    state = request.app.state
    if not hasattr(state, "sign_in_throttle"):
        state.sign_in_throttle = SignInThrottle()
    throttle: SignInThrottle = state.sign_in_throttle
    return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def sign_in_page(request: Request) -> Response:
    if await principal_from_session(request.session) is not None:
        return redirect(safe_target(request.query_params.get("redirect_to")))
    return _form(request, login="", error=None)


def _form(request: Request, login: str, error: str | None, status_code: int = 200) -> Response:
    return render(
        request,
        "sign_in.html",
        {
            "login": login,
            "error": error,
            "redirect_to": safe_target(request.query_params.get("redirect_to")),
        },
        status_code=status_code,
    )


async def sign_in_submit(request: Request) -> Response:
    if refusal := await csrf_refusal(request):
        return refusal
    form = await request.form()
    login, password = text(form, "login"), form.get("password")
    password = password if isinstance(password, str) else ""
    throttle, address = throttle_of(request), client_address(request)
    if wait := throttle.retry_after(login, address):
        minutes = max(1, round(wait / 60))
        message = f"Too many failed sign-in attempts. Try again in {minutes} minute(s)."
        return _form(request, login, message, status_code=429)
    if not login or not password:
        return _form(request, login, "Enter your username or email and your password.", 400)
    user = await services.authenticate_password(login, password)
    if user is None:
        throttle.record_failure(login, address)
        return _form(request, login, BAD_LOGIN, status_code=401)
    throttle.record_success(login)
    sign_in(request.session, user)
    await administration.record_sign_in(user)
    return redirect(safe_target(text(form, "redirect_to")))


async def sign_out_submit(request: Request) -> Response:
    if refusal := await csrf_refusal(request):
        return refusal
    signed_in = await principal_from_session(request.session) is not None
    sign_out(request.session)
    if not signed_in:
        return redirect("/users/sign_in")
    flash(request, "Signed out.", "notice")
    return redirect("/users/sign_in")


routes = [
    Route("/users/sign_in", sign_in_page, methods=["GET"]),
    Route("/users/sign_in", sign_in_submit, methods=["POST"]),
    Route("/users/sign_out", sign_out_submit, methods=["POST"]),
]
