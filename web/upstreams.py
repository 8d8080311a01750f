"""The upstream registries section of a group's settings page: add and remove (Owner).

The list is shown by `settings.py`'s page; these two forms post here. The
password is never rendered, not even back into a form that failed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import Principal
from app.dependency_proxy.services.add_upstream import add_upstream
from app.dependency_proxy.services.remove_upstream import remove_upstream
from app.dependency_proxy.upstream_lists import CACHE_VALIDITY_MAX_HOURS, MAX_UPSTREAMS
from app.errors import AlreadyExists, InvalidInput, NotFound
from app.groups.models import Group
from web.guards import parse_int_field, text
from web.rendering import flash, sentence
from web.settings import PAGE, back, page

FORM_FIELDS = ("url", "name", "username", "position", "cache_validity_hours")


def _optional_int(value: str, label: str, minimum: int, maximum: int) -> int | None:
    return parse_int_field(value, label, minimum=minimum, maximum=maximum) if value else None


async def add(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values = {name: text(form, name) for name in FORM_FIELDS}
    raw_password = form.get("password")
    password = raw_password if isinstance(raw_password, str) and raw_password else None
    try:
        await add_upstream(
            principal,
            group,
            request.app.state.settings,
            url=values["url"],
            name=values["name"] or None,
            username=values["username"] or None,
            password=password,
            position=_optional_int(values["position"], "Position", 1, MAX_UPSTREAMS),
            cache_validity_hours=_optional_int(
                values["cache_validity_hours"], "Cache validity", 0, CACHE_VALIDITY_MAX_HOURS
            ),
        )
    except (InvalidInput, AlreadyExists) as error:
        return await page(
            request,
            principal,
            group,
            status_code=400,
            upstream_form=values,
            upstream_error=sentence(error.message),
        )
    flash(request, f"Upstream {values['name'] or values['url']} added.")
    return back(group)


async def remove(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    name = text(form, "name")
    try:
        await remove_upstream(principal, group, name)
    except (InvalidInput, NotFound) as error:
        return await page(
            request, principal, group, status_code=400, upstream_error=sentence(error.message)
        )
    flash(request, f"Upstream {name} removed.")
    return back(group)


pages = {
    ("POST", f"{PAGE}/upstreams"): add,
    ("POST", f"{PAGE}/upstreams/remove"): remove,
}
