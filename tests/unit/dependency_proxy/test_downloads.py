from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.dependency_proxy.downloads import BlobDownloads, BlobReader
from app.dependency_proxy.downloads.locks import create_locked
from app.dependency_proxy.errors import (
    BlobUnknown,
    DownloadFailed,
    TooLarge,
    UpstreamDenied,
    UpstreamUnavailable,
)
from app.dependency_proxy.storage import write_blob
from app.dependency_proxy.storage.local import LocalBlobStore

CHUNK = 4096
DATA = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB, 16 chunks
DIGEST = f"sha256:{hashlib.sha256(DATA).hexdigest()}"
HEX = DIGEST.removeprefix("sha256:")
WRONG = DATA[:-1] + b"!"


class FakeBlob:
    """An upstream response whose stream the test controls."""

    def __init__(
        self,
        data: bytes,
        *,
        announce: bool = True,
        gate: asyncio.Event | None = None,
        gate_at: int = len(DATA) // 2,
        cut_at: int | None = None,
    ) -> None:
        self.size = len(data) if announce else None
        self.sent = 0
        self.finished = False
        self.closed = False
        self._data, self._gate, self._gate_at, self._cut_at = data, gate, gate_at, cut_at

    async def chunks(self) -> AsyncIterator[bytes]:
        for offset in range(0, len(self._data), CHUNK):
            if self._gate is not None and offset >= self._gate_at:
                await self._gate.wait()
            if self._cut_at is not None and offset >= self._cut_at:
                raise UpstreamUnavailable("connection reset by peer")
            self.sent = offset + CHUNK
            yield self._data[offset : offset + CHUNK]
            await asyncio.sleep(0)
        self.finished = True

    async def aclose(self) -> None:
        self.closed = True


class FakeUpstream:
    """Counts fetches; each fetch gets the next prepared response (or error)."""

    def __init__(self, *responses: FakeBlob | Exception) -> None:
        self.calls = 0
        self.responses = list(responses)
        self.served: list[FakeBlob] = []

    async def start(self) -> FakeBlob:
        self.calls += 1
        await asyncio.sleep(0.005)  # time for other callers to pile up
        response = self.responses[min(self.calls, len(self.responses)) - 1]
        if isinstance(response, Exception):
            raise response
        self.served.append(response)
        return response


async def read_all(reader: BlobReader) -> bytes:
    try:
        return b"".join([chunk async for chunk in reader])
    finally:
        await reader.aclose()


async def read_until_failure(reader: BlobReader) -> tuple[bytes, BaseException | None]:
    received = bytearray()
    try:
        async for chunk in reader:
            received += chunk
    except DownloadFailed as exc:
        return bytes(received), exc
    finally:
        await reader.aclose()
    return bytes(received), None


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path)


@pytest.fixture
async def downloads(store: LocalBlobStore) -> AsyncIterator[BlobDownloads]:
    downloads = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)
    yield downloads
    await downloads.aclose()


async def test_stored_blob_is_served_without_calling_upstream(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    await write_blob(store, DIGEST, _once(DATA))
    upstream = FakeUpstream(FakeBlob(DATA))

    reader = await downloads.open(DIGEST, upstream.start)

    assert reader.size == len(DATA)
    assert await read_all(reader) == DATA
    assert upstream.calls == 0


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_ten_concurrent_readers_share_one_upstream_fetch(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    upstream = FakeUpstream(FakeBlob(DATA))
    commits: list[int] = []

    async def record(size: int) -> None:
        commits.append(size)

    async def client() -> bytes:
        reader = await downloads.open(DIGEST, upstream.start, record)
        assert reader.size == len(DATA)
        return await read_all(reader)

    bodies = await asyncio.gather(*[client() for _ in range(10)])

    assert upstream.calls == 1
    assert all(body == DATA for body in bodies)
    assert commits == [len(DATA)]
    assert store.local_path(DIGEST) is not None
    assert list(store.spool_dir.iterdir()) == []
    assert upstream.served[0].closed


async def test_first_reader_gets_bytes_before_upstream_finishes(
    downloads: BlobDownloads,
) -> None:
    gate = asyncio.Event()
    upstream = FakeUpstream(FakeBlob(DATA, gate=gate))

    reader = await downloads.open(DIGEST, upstream.start)
    first = await asyncio.wait_for(anext(reader), timeout=2)

    assert first == DATA[: len(first)]
    assert not upstream.served[0].finished
    gate.set()
    assert first + await read_all(reader) == DATA


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda: FakeBlob(WRONG), id="wrong-bytes"),
        pytest.param(lambda: FakeBlob(DATA, cut_at=len(DATA) // 2), id="stream-cut"),
        pytest.param(lambda: FakeBlob(DATA[:-CHUNK]), id="short-with-its-own-length"),
        pytest.param(lambda: FakeBlob(WRONG, announce=False), id="wrong-bytes-no-length"),
    ],
)
async def test_failed_download_fails_every_reader_and_caches_nothing(
    store: LocalBlobStore, downloads: BlobDownloads, broken: Callable[[], FakeBlob]
) -> None:
    upstream = FakeUpstream(broken(), FakeBlob(DATA))
    commits: list[int] = []

    async def record(size: int) -> None:
        commits.append(size)

    async def client() -> tuple[bytes, BaseException | None]:
        return await read_until_failure(await downloads.open(DIGEST, upstream.start, record))

    outcomes = await asyncio.gather(*[client() for _ in range(5)])

    for received, error in outcomes:
        assert isinstance(error, DownloadFailed)
        assert DATA.startswith(received)
        assert len(received) <= len(DATA) - CHUNK  # the final bytes never went out
    assert commits == []
    assert files_under(store.root) == []
    assert not downloads.in_flight(DIGEST)

    assert await read_all(await downloads.open(DIGEST, upstream.start, record)) == DATA
    assert upstream.calls == 2
    assert commits == [len(DATA)]


async def test_reader_that_stops_early_does_not_cancel_the_download(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    gate = asyncio.Event()
    upstream = FakeUpstream(FakeBlob(DATA, gate=gate))
    committed = asyncio.Event()
    commits: list[int] = []

    async def record(size: int) -> None:
        commits.append(size)
        committed.set()

    reader = await downloads.open(DIGEST, upstream.start, record)
    await anext(reader)
    await reader.aclose()
    gate.set()
    await asyncio.wait_for(committed.wait(), timeout=2)

    assert commits == [len(DATA)]
    path = store.local_path(DIGEST)
    assert path is not None and path.read_bytes() == DATA


async def test_announced_size_over_the_cap_is_refused_before_any_byte(
    store: LocalBlobStore,
) -> None:
    downloads = BlobDownloads(store, max_size=len(DATA) - 1, chunk_size=CHUNK)
    upstream = FakeUpstream(FakeBlob(DATA))

    with pytest.raises(TooLarge):
        await downloads.open(DIGEST, upstream.start)

    assert upstream.served[0].closed
    assert files_under(store.root) == []
    await downloads.aclose()


async def test_unannounced_size_over_the_cap_fails_mid_stream(store: LocalBlobStore) -> None:
    downloads = BlobDownloads(store, max_size=len(DATA) - 1, chunk_size=CHUNK)
    upstream = FakeUpstream(FakeBlob(DATA, announce=False))

    reader = await downloads.open(DIGEST, upstream.start)
    received, error = await read_until_failure(reader)

    assert reader.size is None
    assert isinstance(error, DownloadFailed)
    assert len(received) < len(DATA)
    assert files_under(store.root) == []
    await downloads.aclose()


@pytest.mark.parametrize(
    "error",
    [UpstreamUnavailable("upstream timed out"), BlobUnknown("no such blob upstream")],
    ids=lambda error: type(error).__name__,
)
async def test_errors_of_start_reach_every_caller(
    store: LocalBlobStore, downloads: BlobDownloads, error: Exception
) -> None:
    upstream = FakeUpstream(error)

    results = await asyncio.gather(
        *[downloads.open(DIGEST, upstream.start) for _ in range(5)], return_exceptions=True
    )

    assert upstream.calls == 1
    assert all(type(result) is type(error) for result in results)
    assert files_under(store.root) == []


async def test_a_refused_start_fails_its_own_party_but_not_another(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    refused = FakeUpstream(UpstreamDenied("the upstream refused access to private/app"))
    allowed = FakeUpstream(FakeBlob(DATA))

    results = await asyncio.gather(
        downloads.open(DIGEST, refused.start, party="refused group"),
        downloads.open(DIGEST, refused.start, party="refused group"),
        downloads.open(DIGEST, allowed.start, party="allowed group"),
        return_exceptions=True,
    )

    # The refused group's clients share its one refusal; the other group, which
    # joined that download, asks the upstream itself and gets the blob.
    assert refused.calls == 1 and allowed.calls == 1
    assert [type(result) for result in results[:2]] == [UpstreamDenied, UpstreamDenied]
    reader = results[2]
    assert isinstance(reader, BlobReader) and await read_all(reader) == DATA


async def test_in_flight_while_downloading_and_not_after(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    gate = asyncio.Event()
    upstream = FakeUpstream(FakeBlob(DATA, gate=gate))
    other_worker = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)

    idle = "sha256:" + "0" * 64
    assert not downloads.in_flight(DIGEST)
    reader = await downloads.open(DIGEST, upstream.start)
    assert downloads.in_flight(DIGEST)
    assert other_worker.in_flight(DIGEST)  # seen through the spool lock alone
    # The batch question cleanup asks gives the same answers.
    assert await downloads.in_flight_of([DIGEST, idle]) == {DIGEST}
    assert await other_worker.in_flight_of([DIGEST, idle]) == {DIGEST}

    gate.set()
    assert await read_all(reader) == DATA
    await asyncio.sleep(0)
    assert not downloads.in_flight(DIGEST)
    assert not other_worker.in_flight(DIGEST)
    assert await other_worker.in_flight_of([DIGEST, idle]) == set()
    await other_worker.aclose()


async def test_close_cancels_running_downloads_and_removes_their_spool(
    store: LocalBlobStore,
) -> None:
    downloads = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)
    upstream = FakeUpstream(FakeBlob(DATA, gate=asyncio.Event()))
    reader = await downloads.open(DIGEST, upstream.start)

    await downloads.aclose()

    received, error = await read_until_failure(reader)
    assert isinstance(error, DownloadFailed)
    assert files_under(store.root) == []
    assert upstream.served[0].closed


async def test_close_right_after_a_miss_fails_its_callers_and_cleans_up(
    store: LocalBlobStore,
) -> None:
    downloads = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)
    upstream = FakeUpstream(FakeBlob(DATA))
    opening = asyncio.create_task(downloads.open(DIGEST, upstream.start))
    await asyncio.sleep(0)  # the download task exists but has not run a step yet

    await downloads.aclose()

    with pytest.raises(DownloadFailed):
        await opening
    assert upstream.calls == 0
    assert files_under(store.root) == []
    assert not downloads.in_flight(DIGEST)


async def test_stale_spool_is_removed_at_start_up(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    (store.spool_dir / f"{HEX}.part").write_bytes(b"half a blob")
    (store.spool_dir / f"{HEX}.meta").write_text("65536 1\n")
    live = create_locked(store.spool_dir / f"{'b' * 64}.part")
    assert live is not None

    assert await downloads.remove_stale_spools() == 2

    assert [p.name for p in store.spool_dir.iterdir()] == [f"{'b' * 64}.part"]
    os.close(live)


async def test_stale_spool_does_not_block_a_new_download(
    store: LocalBlobStore, downloads: BlobDownloads
) -> None:
    (store.spool_dir / f"{HEX}.part").write_bytes(b"half a blob")
    (store.spool_dir / f"{HEX}.meta").write_text("65536 1\n")
    upstream = FakeUpstream(FakeBlob(DATA))

    assert await read_all(await downloads.open(DIGEST, upstream.start)) == DATA
    assert upstream.calls == 1
    assert list(store.spool_dir.iterdir()) == []


# Two `BlobDownloads` on one store behave like two worker processes: flock
# locks belong to open files, not to processes.


async def test_other_worker_follows_the_leaders_spool(store: LocalBlobStore) -> None:
    gate = asyncio.Event()
    upstream = FakeUpstream(FakeBlob(DATA, gate=gate))
    leader = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)
    follower = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)

    leading = await leader.open(DIGEST, upstream.start)
    following = await follower.open(DIGEST, upstream.start)
    assert following.size == len(DATA)
    first = await asyncio.wait_for(anext(following), timeout=2)
    assert not upstream.served[0].finished
    gate.set()

    bodies = await asyncio.gather(read_all(leading), read_all(following))
    assert list(bodies) == [DATA, DATA[len(first) :]]
    assert first + bodies[1] == DATA
    assert upstream.calls == 1
    await leader.aclose()
    await follower.aclose()


async def test_other_worker_never_gets_the_final_bytes_of_a_wrong_blob(
    store: LocalBlobStore,
) -> None:
    gate = asyncio.Event()
    upstream = FakeUpstream(FakeBlob(WRONG, gate=gate))
    leader = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)
    follower = BlobDownloads(store, max_size=1 << 20, chunk_size=CHUNK)

    leading = await leader.open(DIGEST, upstream.start)
    following = await follower.open(DIGEST, upstream.start)
    gate.set()
    outcomes = await asyncio.gather(read_until_failure(leading), read_until_failure(following))

    for received, error in outcomes:
        assert isinstance(error, DownloadFailed)
        assert len(received) <= len(DATA) - CHUNK
    assert files_under(store.root) == []
    await leader.aclose()
    await follower.aclose()


WORKER = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys
    from pathlib import Path
    from app.dependency_proxy.downloads import BlobDownloads
    from app.dependency_proxy.storage.local import LocalBlobStore

    root, digest, fetches, go = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    data = bytes.fromhex(sys.argv[5]) * 4096

    class Blob:
        size = len(data)
        async def chunks(self):
            for offset in range(0, len(data), 65536):
                await asyncio.sleep(0.02)
                yield data[offset:offset + 65536]
        async def aclose(self):
            pass

    async def start():
        with open(fetches, "a") as log:
            log.write(f"{os.getpid()}\\n")
        return Blob()

    async def main():
        downloads = BlobDownloads(LocalBlobStore(root), max_size=1 << 30, chunk_size=65536)
        print("ready", flush=True)
        while not go.exists():
            await asyncio.sleep(0.002)
        reader = await downloads.open(digest, start)
        hasher = hashlib.sha256()
        async for chunk in reader:
            hasher.update(chunk)
        await reader.aclose()
        await downloads.aclose()
        print(hasher.hexdigest(), flush=True)

    asyncio.run(main())
    """
)


def test_two_processes_share_one_upstream_fetch(tmp_path: Path) -> None:
    pattern = bytes(range(256))
    data = pattern * 4096  # 1 MiB, 16 slow chunks: the two workers overlap
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    fetches, go = tmp_path / "fetches", tmp_path / "go"
    repository = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-c", WORKER, str(tmp_path / "store"), digest, str(fetches)]
    command += [str(go), pattern.hex()]
    workers = [
        subprocess.Popen(command, cwd=repository, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        go.touch()
        outputs = [worker.communicate(timeout=15)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()

    assert all(worker.returncode == 0 for worker in workers)
    assert outputs == [digest.removeprefix("sha256:") + "\n"] * 2
    assert len(fetches.read_text().splitlines()) == 1


async def test_a_full_disk_fails_every_waiting_client_before_a_byte_and_asks_for_room(
    store: LocalBlobStore, downloads: BlobDownloads, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.dependency_proxy.downloads import coordinator
    from app.dependency_proxy.downloads.spool import out_of_space
    from app.dependency_proxy.errors import OutOfSpace

    def no_room(fd: int, size: int) -> None:
        raise out_of_space(size)

    monkeypatch.setattr(coordinator, "reserve", no_room)
    asked: list[int] = []
    downloads.on_out_of_space = asked.append
    upstream = FakeUpstream(FakeBlob(DATA))

    answers = await asyncio.gather(
        *(downloads.open(DIGEST, upstream.start, party="acme") for _ in range(5)),
        return_exceptions=True,
    )

    assert all(isinstance(answer, OutOfSpace) for answer in answers), answers
    assert str(answers[0]).startswith("the cache is out of disk space")
    assert upstream.calls == 1 and asked == [len(DATA)]
    assert files_under(store.root) == []  # no spool, no blob


async def test_a_disk_filling_up_mid_download_keeps_nothing(
    store: LocalBlobStore, downloads: BlobDownloads, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from app.dependency_proxy.errors import OutOfSpace
    from app.dependency_proxy.storage import local

    written: list[int] = []

    def fill_up(fd: int, data: bytes, hasher: object) -> None:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(os.write(fd, data))

    monkeypatch.setattr(local, "write_and_hash", fill_up)
    asked: list[int] = []
    downloads.on_out_of_space = asked.append
    # No Content-Length: nothing to reserve, the disk fills while the body streams.
    reader = await downloads.open(DIGEST, FakeUpstream(FakeBlob(DATA, announce=False)).start)

    received, error = await read_until_failure(reader)

    assert isinstance(error, OutOfSpace) and len(received) < len(DATA)
    assert asked == [CHUNK]  # room for at least what had arrived
    assert files_under(store.root) == []
