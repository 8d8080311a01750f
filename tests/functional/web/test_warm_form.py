"""The pre-warm form on the Dependency Proxy page and its progress endpoint."""

from __future__ import annotations

from app.dependency_proxy.models import WarmJob
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.functional.web.conftest import Browser, MakeBrowser, make_user

PAGE = "/groups/acme/-/dependency_proxy"
WARM = PAGE + "/warm"
PROGRESS = PAGE + "/warm_jobs.json"


async def test_owner_queues_a_job_and_the_page_and_endpoint_show_it(
    as_owner: Browser, group: Group
) -> None:
    page = (await as_owner.get(PAGE)).text
    assert 'id="warm-form"' in page and 'name="authenticity_token"' in page

    answer = await as_owner.post(
        WARM, {"images": "alpine:3.19\nnginx:1.25", "platforms": "linux/arm64/v8"}, page=PAGE
    )

    assert answer.status_code == 303
    job = await WarmJob.get()
    shown = (await as_owner.get(PAGE)).text
    assert f"Warm job {job.id} queued: 2 image(s)." in shown
    assert f'data-job-id="{job.id}" data-state="queued"' in shown
    assert "linux/arm64/v8" in shown and "0/0 layers" in shown
    progress = (await as_owner.get(PROGRESS)).json()
    assert [image["image"] for image in progress["jobs"][0]["images"]] == [
        "alpine:3.19",
        "nginx:1.25",
    ]


async def test_bad_input_is_a_message_on_the_page(as_owner: Browser, group: Group) -> None:
    for images, message in (
        ("", "Nothing was warmed: name at least one image"),
        ("Not!Valid", "Nothing was warmed: &#39;Not!Valid&#39; is not an image reference"),
        ("ghcr.io/o/t", "Nothing was warmed: ghcr.io/o/t: the group acme has no upstream"),
    ):
        answer = await as_owner.post(WARM, {"images": images}, page=PAGE)
        assert answer.status_code == 303
        assert message in (await as_owner.get(PAGE)).text
    assert await WarmJob.all().count() == 0


async def test_maintainer_may_warm_guest_sees_no_form_and_is_refused(
    make_browser: MakeBrowser, as_guest: Browser, group: Group
) -> None:
    maintainer = await make_user("mia")
    await groups.add_member(group, maintainer, AccessLevel.MAINTAINER)
    as_maintainer = await make_browser()
    await as_maintainer.sign_in("mia")
    assert 'id="warm-form"' in (await as_maintainer.get(PAGE)).text
    assert (await as_maintainer.post(WARM, {"images": "alpine"}, page=PAGE)).status_code == 303

    assert 'id="warm-form"' not in (await as_guest.get(PAGE)).text
    refused = await as_guest.post(WARM, {"images": "busybox"}, page=PAGE)
    assert refused.status_code == 403
    assert await WarmJob.all().count() == 1
    # The guest may follow the progress (readers see the cache), not start a job.
    assert (await as_guest.get(PROGRESS)).json()["jobs"][0]["created_by"] == "mia"


async def test_the_form_needs_its_csrf_token(as_owner: Browser, group: Group) -> None:
    answer = await as_owner.http.post(WARM, data={"images": "alpine"})
    assert answer.status_code == 403
    assert await WarmJob.all().count() == 0
