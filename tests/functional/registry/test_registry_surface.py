"""The registry surface through the whole ASGI app: token endpoint, challenges, errors.

Nothing here reaches an upstream; pulls against a real upstream are in tests/e2e.
"""

from __future__ import annotations

import base64
import logging

import httpx
import pytest
from starlette.applications import Starlette

from app.accounts import records as accounts
from app.accounts.models import UserState
from app.config import Settings
from app.dependency_proxy.services.authorize_pull import forget_instance_settings
from app.groups import records as groups
from app.groups.models import AccessLevel
from app.instance.models import InstanceSetting

REPO = "acme/dependency_proxy/containers/alpine"
SCOPE = f"repository:{REPO}:pull"


def basic(username: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> str:
    """alice, Guest of acme, with an `api` token (the database is open through `client`)."""
    group = await groups.create_group("acme")
    user = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(group, user, AccessLevel.GUEST)
    return (await accounts.create_personal_access_token(user, "t", "api")).secret


async def token_for(client: httpx.AsyncClient, secret: str, scope: str = SCOPE) -> str:
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": scope},
        headers=basic("alice", secret),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


async def test_v2_without_a_token_challenges_with_the_external_realm(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/v2/")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer realm="http://dockyard.test/jwt/auth",service="dependency_proxy"'
    )
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert answer.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_token_endpoint_answers_the_docker_token_format(
    client: httpx.AsyncClient, alice: str
) -> None:
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": SCOPE},
        headers=basic("alice", alice),
    )
    body = answer.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == 15 * 60
    root = await client.get("/v2/", headers={"Authorization": f"Bearer {body['token']}"})
    assert root.status_code == 200 and root.json() == {}


async def test_containerd_post_form_is_accepted(client: httpx.AsyncClient, alice: str) -> None:
    answer = await client.post(
        "/jwt/auth",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": alice,
            "service": "dependency_proxy",
            "scope": SCOPE,
            "client_id": "containerd-client",
        },
    )
    assert answer.status_code == 200 and answer.json()["access_token"]


async def test_password_login_works_too(client: httpx.AsyncClient, alice: str) -> None:
    answer = await client.get(
        "/jwt/auth", params={"scope": SCOPE}, headers=basic("alice", "alice-password")
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, basic("alice", "wrong-password"), basic("nobody", "x"), {"Authorization": "Basic !!!"}],
)
async def test_bad_credentials_are_401_json(
    client: httpx.AsyncClient, alice: str, headers: dict[str, str]
) -> None:
    answer = await client.get("/jwt/auth", params={"scope": SCOPE}, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


async def test_a_token_without_registry_scopes_is_403(
    client: httpx.AsyncClient, alice: str
) -> None:
    user = await accounts.get_user("alice")
    weak = await accounts.create_personal_access_token(user, "weak", "read_api")
    answer = await client.get(
        "/jwt/auth", params={"scope": SCOPE}, headers=basic("alice", weak.secret)
    )
    assert answer.status_code == 403
    assert "read_registry" in answer.json()["errors"][0]["message"]


async def test_unknown_service_is_refused(client: httpx.AsyncClient, alice: str) -> None:
    answer = await client.get(
        "/jwt/auth", params={"service": "registry.docker.io"}, headers=basic("alice", alice)
    )
    assert answer.status_code == 404


async def test_only_allowed_scopes_are_granted(
    client: httpx.AsyncClient, alice: str, settings: Settings
) -> None:
    await groups.create_group("secret-group")
    token = await token_for(
        client,
        alice,
        f"{SCOPE} repository:secret-group/dependency_proxy/containers/x:pull "
        f"repository:{REPO}:push registry:catalog:*",
    )
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": REPO, "actions": ["pull"]}]


async def test_pull_needs_a_token_for_that_repository(
    client: httpx.AsyncClient, alice: str
) -> None:
    token = await token_for(
        client, alice, "repository:acme/dependency_proxy/containers/busybox:pull"
    )
    answer = await client.get(
        f"/v2/{REPO}/manifests/latest", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert f'scope="{SCOPE}"' in challenge and 'error="insufficient_scope"' in challenge


async def test_revoked_token_and_blocked_user_fail_at_once(
    client: httpx.AsyncClient, alice: str
) -> None:
    token = await token_for(client, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v2/", headers=bearer)).status_code == 200
    user = await accounts.get_user("alice")
    await accounts.revoke_personal_access_token(user, "t")
    assert (await client.get("/v2/", headers=bearer)).status_code == 401

    password_token = (
        await client.get(
            "/jwt/auth", params={"scope": SCOPE}, headers=basic("alice", "alice-password")
        )
    ).json()["token"]
    await accounts.set_state(user, UserState.BLOCKED)
    answer = await client.get(
        f"/v2/{REPO}/manifests/latest", headers={"Authorization": f"Bearer {password_token}"}
    )
    assert answer.status_code == 401


async def test_tampered_or_foreign_tokens_are_refused(
    client: httpx.AsyncClient, alice: str
) -> None:
    token = await token_for(client, alice)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    assert (
        await client.get("/v2/", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    assert (
        await client.get("/v2/", headers={"Authorization": "Bearer not-a-jwt"})
    ).status_code == 401


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("acme/dependency_proxy/containers/Alpine/manifests/latest", 400, "NAME_INVALID"),
        # Codes come from which part is wrong, not from words in the message.
        ("acme/dependency_proxy/containers/digest-tag!/manifests/latest", 400, "NAME_INVALID"),
        # Neither a tag nor a digest: no such manifest, as the CNCF registry answers.
        ("acme/dependency_proxy/containers/alpine/manifests/bad!tag", 404, "MANIFEST_UNKNOWN"),
        ("acme/dependency_proxy/containers/alpine/manifests/" + "t" * 129, 404, "MANIFEST_UNKNOWN"),
        ("acme/dependency_proxy/containers/alpine/manifests/-dash", 404, "MANIFEST_UNKNOWN"),
        (
            "acme/dependency_proxy/containers/alpine/manifests/sha256:" + "A" * 64,
            400,
            "DIGEST_INVALID",
        ),
        ("acme/dependency_proxy/containers/alpine/manifests/md5:abc", 400, "DIGEST_INVALID"),
        ("acme/dependency_proxy/containers/alpine/manifests/sha256:", 400, "DIGEST_INVALID"),
        ("acme/dependency_proxy/containers/alpine/blobs/sha256:" + "g" * 64, 400, "DIGEST_INVALID"),
        ("acme/dependency_proxy/containers/alpine/referrers/latest", 400, "DIGEST_INVALID"),
        ("acme/dependency_proxy/containers/alpine/manifests/sha256:abc", 400, "DIGEST_INVALID"),
        ("acme/dependency_proxy/containers/alpine/blobs/latest", 400, "DIGEST_INVALID"),
        (
            "acme/dependency_proxy/containers/alpine/blobs/sha512:" + "a" * 128,
            400,
            "DIGEST_INVALID",
        ),
        ("acme/dependency_proxy/containers/..%2F..%2Fetc/manifests/latest", 400, "NAME_INVALID"),
        ("acme/dependency_proxy/containers/%2e%2e/blobs/sha256:" + "a" * 64, 400, "NAME_INVALID"),
        ("-bad/dependency_proxy/containers/alpine/manifests/latest", 400, "NAME_INVALID"),
        ("_catalog", 404, "NAME_UNKNOWN"),
        ("acme/dependency_proxy/containers/alpine/tags/other", 404, "UNSUPPORTED"),
        ("library/alpine/manifests/latest", 404, "NAME_UNKNOWN"),
    ],
)
async def test_bad_paths_get_oci_errors_never_500(
    client: httpx.AsyncClient, alice: str, path: str, status: int, code: str
) -> None:
    token = await token_for(client, alice)
    answer = await client.get(f"/v2/{path}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == status, answer.text
    assert answer.json()["errors"][0]["code"] == code


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "DELETE"])
async def test_every_write_is_405(client: httpx.AsyncClient, method: str) -> None:
    answer = await client.request(method, f"/v2/{REPO}/manifests/latest")
    assert answer.status_code == 405
    assert answer.json()["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v2/", 405),
        ("DELETE", "/v2", 405),
        ("OPTIONS", f"/v2/{REPO}/manifests/latest", 405),
        ("PUT", f"/v2/{REPO}/tags/list", 405),
        ("GET", "/v2x/anything", 404),
    ],
)
async def test_every_error_under_v2_is_the_oci_envelope(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    answer = await client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["errors"][0]
    assert set(error) == {"code", "message", "detail"} and error["message"]


async def test_no_access_is_404_and_does_not_reveal_the_group(
    client: httpx.AsyncClient, alice: str
) -> None:
    await groups.create_group("private-group")
    user = await accounts.get_user("alice")
    admin_like = await accounts.create_personal_access_token(user, "other", "api")
    answers = []
    for group_path in ("private-group", "no-such-group"):
        repo = f"{group_path}/dependency_proxy/containers/alpine"
        token = (
            await client.get(
                "/jwt/auth",
                params={"scope": f"repository:{repo}:pull"},
                headers=basic("alice", admin_like.secret),
            )
        ).json()["token"]
        answers.append(
            await client.get(
                f"/v2/{repo}/manifests/latest", headers={"Authorization": f"Bearer {token}"}
            )
        )
    # No pull granted in the token for either: the same answer, only the path the client
    # typed differs, so whether the group exists is not told; docker prints the message.
    assert [a.status_code for a in answers] == [404, 404]
    assert not any("www-authenticate" in a.headers for a in answers)
    private, missing = (a.json()["errors"][0] for a in answers)
    assert private["code"] == missing["code"] == "NAME_UNKNOWN"
    assert private["message"] == (
        "no group 'private-group' you can pull from: check the path "
        "(pulling needs at least the Guest role in the group)"
    )
    assert missing["message"] == private["message"].replace("private-group", "no-such-group")


async def test_a_refused_pull_logs_which_of_the_two_it_was(
    client: httpx.AsyncClient, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    await groups.create_group("private-group")
    token = await token_for(client, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    with caplog.at_level(logging.INFO, logger="dockyard.registry"):
        for group_path in ("private-group", "acme/platfrom"):
            answer = await client.get(
                f"/v2/{group_path}/dependency_proxy/containers/alpine/manifests/3.19",
                headers=bearer,
            )
            assert answer.status_code == 404
    refusals = [r.getMessage() for r in caplog.records if r.name == "dockyard.registry"]
    assert refusals == [
        "pull refused for personal access token 'alice': group 'private-group': "
        "no pull access to it",
        "pull refused for personal access token 'alice': group 'acme/platfrom': no such group",
    ]


async def test_disabled_proxy_gives_a_clear_error(client: httpx.AsyncClient, alice: str) -> None:
    token = await token_for(client, alice)
    bearer = {"Authorization": f"Bearer {token}"}
    group = await groups.get_group("acme")
    from app.dependency_proxy.group_settings import setting_for

    setting = await setting_for(group)
    setting.enabled = False
    await setting.save()
    answer = await client.get(f"/v2/{REPO}/manifests/latest", headers=bearer)
    assert answer.status_code == 403
    assert "disabled for group acme" in answer.json()["errors"][0]["message"]

    setting.enabled = True
    await setting.save()
    await InstanceSetting.update_or_create(id=1, defaults={"dependency_proxy_enabled": False})
    forget_instance_settings()
    try:
        answer = await client.get(f"/v2/{REPO}/manifests/latest", headers=bearer)
        assert answer.status_code == 403
        assert "disabled on this Dockyard instance" in answer.json()["errors"][0]["message"]
    finally:
        forget_instance_settings()


def test_scope_parsing_accepts_repeats_and_spaces() -> None:
    from app.dependency_proxy.services.grant_registry_access import parse_scopes

    scopes = parse_scopes([f"{SCOPE} repository:a/dependency_proxy/containers/b:pull,push", "junk"])
    assert [(s.name, s.actions) for s in scopes] == [
        (REPO, ("pull",)),
        ("a/dependency_proxy/containers/b", ("pull", "push")),
    ]


async def test_access_removed_after_login_is_404_name_unknown(
    client: httpx.AsyncClient, alice: str
) -> None:
    token = await token_for(client, alice)
    await groups.remove_member(await groups.get_group("acme"), await accounts.get_user("alice"))
    answer = await client.get(
        f"/v2/{REPO}/manifests/latest", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_an_internal_error_is_an_oci_500_without_a_traceback(
    app: Starlette, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database exploded at /secret/path")

    monkeypatch.setattr("registry.routes.get_manifest", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://dockyard.test") as raw:
        token = (
            await raw.get("/jwt/auth", params={"scope": SCOPE}, headers=basic("alice", alice))
        ).json()["token"]
        answer = await raw.get(
            f"/v2/{REPO}/manifests/latest", headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 500
    assert answer.json()["errors"][0]["code"] == "UNKNOWN"
    assert "secret" not in answer.text and "Traceback" not in answer.text
