"""`/admin/usage`: the instance's cache at a glance (administrators only).

Size per group, the images pulled most and the largest ones, and the disk of the
data folder; the service (`get_instance_usage`) decides who may see it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import clock
from app.accounts.principal import Principal
from app.dependency_proxy.services.get_instance_usage import TOP_IMAGES_DAYS, get_instance_usage
from app.errors import PermissionDenied
from web.guards import signed_in
from web.rendering import render

PAGE = "/admin/usage"


@signed_in
async def show(request: Request, principal: Principal) -> Response:
    settings = request.app.state.settings
    try:
        usage = await get_instance_usage(
            principal, settings.data_dir, clock.now(), settings.disk_budget
        )
    except PermissionDenied:
        raise PermissionDenied("The admin area is for administrators only.") from None
    context = {
        "usage": usage,
        "top_days": TOP_IMAGES_DAYS,
        "crumbs": [("Admin area", "/admin"), ("Usage", None)],
    }
    return render(request, "admin_usage.html", context, principal=principal)


routes = [Route(PAGE, show, methods=["GET"])]
