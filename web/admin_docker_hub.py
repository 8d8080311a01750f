"""`/admin/dependency_proxy`: the instance's default Docker Hub credentials (admins).

Used for every group that sets no credentials on a Docker Hub upstream; the
page lists those groups. The secret is never rendered.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts.principal import Principal
from app.dependency_proxy.services.default_credentials import default_docker_hub_credentials
from app.errors import InvalidInput
from web.guards import checked, signed_in, text
from web.rendering import flash, redirect, render, sentence

PAGE = "/admin/dependency_proxy"


async def _page(
    request: Request, principal: Principal, *, status_code: int = 200, **extra: Any
) -> Response:
    current = await default_docker_hub_credentials(principal, request.app.state.settings)
    context: dict[str, Any] = {
        "current": current,
        "form": {"identity": current.identity or ""},
        "error": None,
        "crumbs": [("Admin area", "/admin"), ("Dependency Proxy", None)],
    }
    context.update(extra)
    return render(
        request, "admin_docker_hub.html", context, status_code=status_code, principal=principal
    )


@signed_in
async def show(request: Request, principal: Principal) -> Response:
    return await _page(request, principal)


@signed_in
async def save(request: Request, principal: Principal) -> Response:
    form = await request.form()
    identity = text(form, "identity")
    raw_secret = form.get("secret")
    secret = raw_secret if isinstance(raw_secret, str) else ""
    settings = request.app.state.settings
    try:
        if checked(form, "clear_credentials"):
            await default_docker_hub_credentials(principal, settings, clear=True)
            flash(request, "Default Docker Hub credentials removed.")
            return redirect(PAGE)
        await default_docker_hub_credentials(
            principal, settings, identity=identity or None, secret=secret or None
        )
    except InvalidInput as error:
        return await _page(
            request,
            principal,
            status_code=400,
            form={"identity": identity},
            error=sentence(error.message),
        )
    flash(request, "Default Docker Hub credentials saved.")
    return redirect(PAGE)


routes = [
    Route(PAGE, show, methods=["GET"]),
    Route(f"{PAGE}/credentials", save, methods=["POST"]),
]
