"""`dockyard storage migrate` against a real SeaweedFS: an instance that cached images
on its disk moves to the bucket and serves them from there without asking the upstream;
the copy is resumable, verifies digests, and never touches the data folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import DOCKYARD, DockyardServer, free_port, s3_settings
from tests.support.fixtures import S3_BUCKET, SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.postgres import PostgresServer
from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedS3, list_keys

pytestmark = pytest.mark.e2e

MIB = 1 << 20


def migrate(env: dict[str, str], *args: str) -> tuple[int, Any]:
    result = subprocess.run(
        [DOCKYARD, "storage", "migrate", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, json.loads(result.stdout)


def bucket_call(seaweed: SeaweedS3, method: str, **params: Any) -> Any:
    """One S3 call as an operator's tool would make it."""
    from aiobotocore.session import get_session

    async def call() -> Any:
        async with get_session().create_client(
            "s3",
            endpoint_url=seaweed.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            answer = await getattr(client, method)(Bucket=S3_BUCKET, **params)
            if method == "get_object":
                async with answer["Body"] as body:
                    return await body.read()
            return answer

    return asyncio.run(call())


def key(prefix: str, digest: str) -> str:
    hex_digest = digest.removeprefix("sha256:")
    return f"{prefix}blobs/sha256/{hex_digest[:2]}/{hex_digest}"


def put_local_blob(data_dir: Path, content: bytes, *, name_of: bytes | None = None) -> str:
    """A committed blob in the data folder's layout (named by `name_of`'s digest: damaged)."""
    hex_digest = hashlib.sha256(name_of if name_of is not None else content).hexdigest()
    folder = data_dir / "blobs" / "sha256" / hex_digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hex_digest).write_bytes(content)
    return f"sha256:{hex_digest}"


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_local_instance_moves_to_postgres_and_the_bucket_and_serves_without_the_upstream(
    reference_registry: SeededReferenceRegistry,
    seeded_images: SeededImages,
    seaweed: SeaweedS3,
    postgres: PostgresServer,
    tmp_path: Path,
) -> None:
    """The whole path of docs/deploy.md: SQLite + local blobs to PostgreSQL + S3."""
    image = seeded_images.nginx
    local = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    with local:
        account = local.provision("alice", "acme", scopes="read_registry,write_registry")
        copy_to_dir(local, f"alice:{account.token}", "acme", "nginx:1.25", tmp_path / "cold")
    blobs = local.data_dir / "blobs"
    before = tree_digest(blobs)
    assert len(before) == len(image.blobs)

    url = postgres.create_database("moved")
    copied = local.cli("db", "migrate-to", "--database-url", url)
    assert copied["tables"]["users"] == 2  # root and alice
    assert copied["tables"]["groups"] == 1
    assert copied["tables"]["personal_access_tokens"] == 1
    assert copied["tables"]["dependency_proxy_blobs"] == len(image.blobs)
    assert "dependency_proxy_group_totals" not in copied["tables"]  # counted by the target
    again = subprocess.run(
        [DOCKYARD, "db", "migrate-to", "--database-url", url],
        env=local.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert "already holds" in again.stderr and "Traceback" not in again.stderr

    env = {**local.env, **s3_settings(seaweed, "moved/")}
    status, report = migrate(env)
    assert status == 0, report
    assert (report["copied"], report["skipped"], report["failed"]) == (len(image.blobs), 0, 0)
    assert report["bytes_copied"] == sum(blob.size for blob in image.blobs)
    assert set(list_keys(seaweed, S3_BUCKET, "moved/")) == {
        key("moved/", blob.digest) for blob in image.blobs
    }
    assert tree_digest(blobs) == before  # the source is only read

    # The same data folder (its secret key) on PostgreSQL and the bucket: alice's
    # token, her group and the cached rows came along; the upstream sends no blob.
    reference_registry.reset_counts()
    moved = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={**s3_settings(seaweed, "moved/"), "DOCKYARD_DATABASE_URL": url},
    )
    with moved:
        copy_to_dir(moved, f"alice:{account.token}", "acme", "nginx:1.25", tmp_path / "warm")
        assert moved.cli("cache", "recount")["corrected"] == []
        # New rows get new ids: the sequences were moved past the copied ones.
        moved.provision("bob", "acme/new", scopes="read_registry")
    assert_dir_holds(tmp_path / "warm", image)
    assert reference_registry.blob_requests(method=None) == 0


def test_migrate_is_resumable_verifies_digests_and_keeps_the_source(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    small = put_local_blob(data_dir, b"small layer " * 100)
    large_content = os.urandom(20 * MIB + 12345)  # three multipart parts
    large = put_local_blob(data_dir, large_content)
    damaged = put_local_blob(data_dir, b"flipped bytes", name_of=b"original bytes")
    (data_dir / "blobs" / "sha256" / "notes.txt").write_text("not a blob")
    before = tree_digest(data_dir)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
        **s3_settings(seaweed, "resume/"),
    }

    status, report = migrate(env)
    assert status == 1  # one blob could not be copied
    assert (report["blobs"], report["copied"], report["skipped"], report["failed"]) == (3, 2, 0, 1)
    assert report["failures"][0]["digest"] == damaged
    assert "damaged" in report["failures"][0]["reason"]
    assert report["ignored_files"] == [str(data_dir / "blobs" / "sha256" / "notes.txt")]
    assert set(list_keys(seaweed, S3_BUCKET, "resume/")) == {
        key("resume/", small),
        key("resume/", large),
    }
    assert bucket_call(seaweed, "get_object", Key=key("resume/", large)) == large_content
    assert tree_digest(data_dir) == before

    # Run again: nothing is copied twice.
    status, report = migrate(env)
    assert (report["copied"], report["skipped"], report["failed"]) == (0, 2, 1)

    # An object of the right size but the wrong bytes passes the size check; the
    # verifying run replaces it. A missing object is copied again.
    small_size = len(b"small layer " * 100)
    bucket_call(seaweed, "put_object", Key=key("resume/", small), Body=b"x" * small_size)
    bucket_call(seaweed, "delete_object", Key=key("resume/", large))
    status, report = migrate(env)
    assert (report["copied"], report["skipped"]) == (1, 1)  # the large one
    status, report = migrate(env, "--verify-existing")
    assert (report["copied"], report["skipped"]) == (1, 1)  # the small one
    assert bucket_call(seaweed, "get_object", Key=key("resume/", small)) == b"small layer " * 100
    assert bucket_call(seaweed, "get_object", Key=key("resume/", large)) == large_content
    assert bucket_call(seaweed, "list_multipart_uploads", Prefix="resume/").get("Uploads", []) == []
    assert tree_digest(data_dir) == before


def test_migrate_prints_lines_or_a_progress_bar(seaweed: SeaweedS3, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    digest = put_local_blob(data_dir, b"one layer")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
        **s3_settings(seaweed, "lines/"),
    }
    plain = subprocess.run(
        [DOCKYARD, "storage", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == [
        f"copied {digest} (9 bytes)",
        "1 blobs: 1 copied (9 bytes), 0 already in the bucket, 0 failed",
    ]
    # On a terminal (script(1) gives it one): a progress bar instead of a line per blob.
    command = shlex.join([DOCKYARD, "storage", "migrate"])
    tty = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tty.returncode == 0, tty.stdout
    assert "Copying blobs" in tty.stdout and "100%" in tty.stdout
    assert f"skipped {digest}" not in tty.stdout
    assert "1 blobs: 0 copied (0 bytes), 1 already in the bucket, 0 failed" in tty.stdout


def test_migrate_without_a_bucket_says_what_to_set(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    put_local_blob(data_dir, b"layer")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
    }
    result = subprocess.run(
        [DOCKYARD, "storage", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: DOCKYARD_S3_BUCKET is not set")
    assert "Traceback" not in result.stderr


def test_migrate_says_when_the_bucket_cannot_be_reached(seaweed: SeaweedS3, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    put_local_blob(data_dir, b"layer")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
        **s3_settings(seaweed, "nowhere/"),
        "DOCKYARD_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
    }
    result = subprocess.run(
        [DOCKYARD, "storage", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach bucket '{S3_BUCKET}'")
    assert "Traceback" not in result.stderr
