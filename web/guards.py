"""Request guards: who is signed in, CSRF on every form, domain errors → error pages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import Principal
from app.accounts.sessions import CSRF_FIELD, csrf_valid, forget
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.identity import principal_of
from web.rendering import error_page, redirect

Page = Callable[[Request, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

PASSWORD_PAGE = "/-/user_settings/password/edit"

CSRF_MESSAGE = (
    "The form could not be verified (its security token is missing or out of date). "
    "Go back, reload the page and try again."
)


def sign_in_url(request: Request) -> str:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return "/users/sign_in?redirect_to=" + quote(target, safe="/")


async def csrf_refusal(request: Request) -> Response | None:
    """A 403 page when a POST lacks the session's CSRF token, else None."""
    if request.method != "POST":
        return None
    form = await request.form()
    presented = form.get(CSRF_FIELD)
    if not isinstance(presented, str) or not csrf_valid(request.session, presented):
        return error_page(request, 403, CSRF_MESSAGE, principal_of(request))
    return None


def client_address(request: Request) -> str:
    """The client as the app sees it (uvicorn has applied trusted proxies' headers)."""
    return request.client.host if request.client else "unknown"


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def signed_in(handler: Page) -> Endpoint:
    """Wrap a page: require a session, check CSRF on POST, translate domain errors.

    A user who must change their password is sent to the password page first.
    """
    return _guarded(handler, password_gate=True)


def signed_in_before_password_change(handler: Page) -> Endpoint:
    """`signed_in` for the password page itself, open while a change is pending."""
    return _guarded(handler, password_gate=False)


def _guarded(handler: Page, *, password_gate: bool) -> Endpoint:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if refusal := await csrf_refusal(request):
            return refusal
        principal = principal_of(request)
        if principal is None:
            forget(request.session)  # a dead session's cookie: the browser is signed out
            return redirect(sign_in_url(request))
        if password_gate and principal.user and principal.user.password_change_required:
            return redirect(PASSWORD_PAGE)  # the page says why
        try:
            return await handler(request, principal)
        except NotFound as error:
            return error_page(request, 404, error.message, principal)
        except PermissionDenied as error:
            return error_page(request, 403, error.message, principal)

    return endpoint


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("1", "on", "true")


def parse_date_field(value: str, label: str = "expiry date") -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{label} must be a date like 2030-12-31") from None


def parse_int_field(value: str, label: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{label} must be a whole number") from None
    if not minimum <= number <= maximum:
        raise InvalidInput(f"{label} must be between {minimum} and {maximum}")
    return number
