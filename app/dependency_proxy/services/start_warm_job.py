"""Queue a pre-warm of images into a group's cache (issue 13 point 2).

Owners and Maintainers only (`policy.require_maintain`, checked here for
every surface). Everything a job could fail on before it reaches an upstream
is refused now, in the surface's own form (`InvalidInput`): no image, a name
that breaks the OCI grammar, a host none of the group's upstreams serves, a
malformed platform, a proxy switched off. The job itself runs elsewhere
(`services/run_warm_job.py`): the server's worker or the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import warm_jobs
from app.dependency_proxy.cached_images import ImageName
from app.dependency_proxy.errors import DependencyProxyError, InvalidReference
from app.dependency_proxy.services.authorize_pull import authorize_pull
from app.dependency_proxy.upstreams import candidates
from app.dependency_proxy.warm_jobs import DEFAULT_PLATFORM, MAX_IMAGES, PLATFORM_RE, WarmJobView
from app.errors import InvalidInput, NotFound
from app.groups import policy
from app.groups.services import find_readable_group


def _names(images: Sequence[str]) -> list[ImageName]:
    wanted = [text.strip() for text in images if text.strip()]
    if not wanted:
        raise InvalidInput("name at least one image to warm, e.g. alpine:3.19")
    if len(wanted) > MAX_IMAGES:
        raise InvalidInput(f"at most {MAX_IMAGES} images per warm job")
    names: list[ImageName] = []
    for text in wanted:
        try:
            name = ImageName.parse(text)
        except InvalidReference as error:
            raise InvalidInput(f"{text!r} is not an image reference: {error.message}") from None
        if name not in names:
            names.append(name)
    return names


def _platforms(platforms: Sequence[str], all_platforms: bool) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in platforms if part.strip()))
    if all_platforms:
        if chosen:
            raise InvalidInput("give platforms or all platforms, not both")
        return ()
    for platform in chosen:
        if not PLATFORM_RE.match(platform):
            raise InvalidInput(
                f"{platform!r} is not a platform: write os/architecture[/variant], "
                "e.g. linux/arm64/v8"
            )
    return chosen or (DEFAULT_PLATFORM,)


async def start_warm_job(
    principal: Principal,
    settings: Settings,
    group_path: str,
    images: Sequence[str],
    *,
    platforms: Sequence[str] = (),
    all_platforms: bool = False,
) -> WarmJobView:
    """Queue the job; NotFound / PermissionDenied for those who may not, InvalidInput
    for a request that could not succeed."""
    group = await find_readable_group(principal, group_path)
    await policy.require_maintain(principal, group, "warm its cache")
    names = _names(images)
    chosen = _platforms(platforms, all_platforms)
    try:
        pull = await authorize_pull(principal, group.full_path, settings)
        for name in names:
            await candidates(pull.group, pull.upstreams, name.image)
    except NotFound as error:  # no upstream serves this host (a group already read above)
        raise InvalidInput(error.message) from None
    except DependencyProxyError as error:  # the proxy is off for the group or instance
        raise InvalidInput(error.message) from None
    user_id = None if principal.is_operator or principal.user is None else principal.user.id
    job = await warm_jobs.create(
        group.id, user_id, principal.display_name, names, chosen, all_platforms
    )
    return await warm_jobs.view_of(job, group.full_path)
