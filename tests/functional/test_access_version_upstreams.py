"""A pull's granted context holds the group's upstream list, kept while the access
version stands still: every change of an upstream row, and of the group's and the
instance's settings (whose table migration 0008 rebuilds), must move it, or a
removed upstream or a changed credential would be used until the next restart."""

from __future__ import annotations

import pytest

from app import access_version
from app.accounts.authentication import load_principal
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.services.add_upstream import add_upstream
from app.dependency_proxy.services.authorize_pull import authorize_pull
from app.dependency_proxy.services.remove_upstream import remove_upstream
from app.dependency_proxy.upstream_lists import set_docker_hub_credentials
from app.groups import records as groups
from app.groups.deploy_tokens import create_deploy_token

pytestmark = pytest.mark.usefixtures("database")


async def test_every_upstream_change_moves_the_access_version(settings: Settings) -> None:
    acme = await groups.create_group("acme")
    operator = Principal.operator()
    seen = [await access_version.current()]
    await add_upstream(operator, acme, settings, url="https://ghcr.io", name="ghcr")
    seen.append(await access_version.current())
    await set_docker_hub_credentials(acme, settings, "hubuser", "hub-secret")
    seen.append(await access_version.current())
    setting = await setting_for(acme)
    setting.revalidation_interval = 60
    await setting.save()
    seen.append(await access_version.current())
    await remove_upstream(operator, acme, "ghcr")
    seen.append(await access_version.current())
    assert seen == sorted(set(seen)), f"a change left the version where it was: {seen}"


async def test_a_granted_pull_sees_an_upstream_added_to_the_parent(settings: Settings) -> None:
    # A deploy token's grant is kept per process (the operator's never is), so the
    # second pull below is answered from memory unless the version moved.
    acme = await groups.create_group("acme")
    await groups.create_group("acme/platform")
    operator = Principal.operator()
    token = await create_deploy_token(operator, acme, "ci", "read_registry,write_registry")

    async def pull() -> list[str]:
        # Each request loads its principal afresh, as the registry surface does.
        principal = await load_principal("deploy_token", token.deploy_token.id)
        assert principal is not None
        granted = await authorize_pull(principal, "acme/platform", settings)
        return [entry.name for entry in granted.upstreams]

    before = await pull()
    assert await pull() == before  # kept
    await add_upstream(operator, acme, settings, url="https://quay.io", name="quay")
    after = await pull()
    assert "quay" not in before and "quay" in after
