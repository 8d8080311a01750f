"""Templates, filters, flash messages and the error pages every web module shares."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from app import clock
from app.accounts.principal import Principal
from app.accounts.sessions import CSRF_FIELD, csrf_token
from app.config import human_size
from app.groups.models import Group

TEMPLATES_DIR = Path(__file__).parent / "templates"
FLASH_KEY = "flash"

Crumb = tuple[str, str | None]


def time_ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int((clock.now() - moment).total_seconds())
    if seconds < 0:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    for size, unit in ((3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def iso_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["human_size"] = human_size
    env.filters["time_ago"] = time_ago
    env.filters["iso_time"] = iso_time
    return env


ENVIRONMENT = _environment()


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A message shown once on the next page (never a secret: the cookie is only signed)."""
    messages = list(request.session.get(FLASH_KEY, []))
    messages.append([kind, message])
    request.session[FLASH_KEY] = messages


def group_crumbs(group: Group) -> list[Crumb]:
    """Breadcrumbs for a group and its ancestors (names from the path segments)."""
    parts = group.full_path.split("/")
    crumbs: list[Crumb] = [("Groups", "/")]
    for index, part in enumerate(parts):
        crumbs.append((part, "/groups/" + "/".join(parts[: index + 1])))
    return crumbs


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    """Render a page with the layout's context: user, CSRF token, flashes, settings."""
    session = request.session
    values: dict[str, Any] = {
        "request": request,
        "current_user": principal.user if principal else None,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(session),
        "flashes": session.pop(FLASH_KEY, []),
        "crumbs": [],
        "errors": {},
        "form": {},
        "registry_host": request.app.state.settings.registry_host,
        "external_url": request.app.state.settings.external_url,
        "today": clock.today(),
    }
    values.update(context or {})
    html = ENVIRONMENT.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code)
    # Pages show per-user data (and sometimes a one-time secret): never cache them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # font-src data: for the fonts GraphiQL's stylesheet embeds (frontend/vendor/graphiql).
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    return response


def error_page(
    request: Request,
    status_code: int,
    message: str | None = None,
    principal: Principal | None = None,
) -> HTMLResponse:
    titles = {
        400: "Bad request",
        403: "Access denied",
        404: "Page not found",
        413: "Request too large",
        429: "Too many requests",
    }
    return render(
        request,
        "error.html",
        {
            "status": status_code,
            "title": titles.get(status_code, "Error"),
            "message": sentence(message) if message else None,
        },
        status_code=status_code,
        principal=principal,
    )


def redirect(url: str) -> RedirectResponse:
    # 303: the browser follows a POST's answer with a GET.
    return RedirectResponse(url, status_code=303)


def sentence(message: str) -> str:
    """A service's message as a sentence for a form: capitalised, with a full stop."""
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message.endswith((".", "?", "!")) else ".")
