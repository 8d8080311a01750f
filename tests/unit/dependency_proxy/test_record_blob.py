import asyncio

import pytest

from app.dependency_proxy.models import Blob
from app.dependency_proxy.services.get_blob import record_blob
from app.groups import records as groups
from tests.support.cache_rows import digest_of

pytestmark = pytest.mark.usefixtures("database")


async def test_concurrent_recordings_of_one_blob_make_one_row() -> None:
    group = await groups.create_group("acme")
    digest = digest_of("layer")
    await asyncio.gather(*(record_blob(group.id, digest, 10) for _ in range(5)))
    assert await Blob.filter(group_id=group.id, digest=digest).count() == 1
