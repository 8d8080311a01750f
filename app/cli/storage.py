"""`dockyard storage migrate`: copy the data folder's blobs into the S3 bucket."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from app.cli.common import Failure, emit, json_option, main
from app.config import ConfigError, Settings, load_settings
from app.dependency_proxy.storage.migration import (
    BlobOutcome,
    MigrationReport,
    local_blobs,
    migrate_blobs,
)


@main.group()
def storage() -> None:
    """Move cached blobs between storage backends."""


@storage.command("migrate")
@click.option(
    "--verify-existing",
    is_flag=True,
    help="Re-read objects already in the bucket and replace any whose bytes are wrong.",
)
@json_option
def storage_migrate(verify_existing: bool, as_json: bool) -> None:
    """Copy the blobs in DOCKYARD_DATA_DIR into the bucket of DOCKYARD_S3_BUCKET.

    Resumable (blobs already in the bucket are skipped), verifies every digest,
    never deletes anything from the data folder.
    """
    try:
        settings = load_settings()  # read only: no data folder or key is created here
    except ConfigError as error:
        raise Failure(str(error)) from None
    if not (settings.data_dir / "blobs").is_dir():
        raise Failure(f"DOCKYARD_DATA_DIR: {settings.data_dir} holds no blobs folder")
    if not settings.s3_bucket:
        raise Failure(
            "DOCKYARD_S3_BUCKET is not set: name the bucket to copy into "
            "(with DOCKYARD_S3_ENDPOINT_URL, DOCKYARD_S3_REGION, DOCKYARD_S3_PREFIX as the "
            "instances will use them); the blobs are read from DOCKYARD_DATA_DIR"
        )
    interactive = not as_json and sys.stdout.isatty()
    report = asyncio.run(_migrate(settings, verify_existing, as_json, interactive))
    data: dict[str, Any] = {
        "bucket": settings.s3_bucket,
        "prefix": settings.s3_prefix,
        "blobs": report.blobs,
        "copied": report.copied,
        "skipped": report.skipped,
        "failed": len(report.failures),
        "bytes_copied": report.bytes_copied,
        "failures": [{"digest": f.blob.digest, "reason": f.reason} for f in report.failures],
        "ignored_files": [str(path) for path in report.foreign],
    }
    emit(
        as_json,
        data,
        f"{report.blobs} blobs: {report.copied} copied ({report.bytes_copied} bytes), "
        f"{report.skipped} already in the bucket, {len(report.failures)} failed",
    )
    if report.failures:
        if not as_json:
            click.echo(
                "error: some blobs were not copied (see above); the data folder is unchanged, "
                "run the command again once the cause is fixed",
                err=True,
            )
        sys.exit(1)


async def _migrate(
    settings: Settings, verify_existing: bool, as_json: bool, interactive: bool
) -> MigrationReport:
    from app.dependency_proxy.storage.s3 import S3BlobStore

    store = S3BlobStore.from_settings(settings)
    await store.start()
    try:
        try:
            await store.check()
        except Exception as error:
            raise Failure(f"cannot reach bucket {settings.s3_bucket!r}: {error}") from None
        if not interactive:
            return await migrate_blobs(
                settings.data_dir,
                store,
                verify_existing=verify_existing,
                on_blob=(lambda outcome: None) if as_json else _print_line,
            )
        total = sum(blob.size for blob in local_blobs(settings.data_dir, []))
        with click.progressbar(
            length=total, label="Copying blobs", show_percent=True, show_eta=True
        ) as bar:
            return await migrate_blobs(
                settings.data_dir,
                store,
                verify_existing=verify_existing,
                on_bytes=bar.update,
                on_blob=lambda outcome: _print_failure(outcome),
            )
    finally:
        await store.aclose()


def _print_line(outcome: BlobOutcome) -> None:
    blob = outcome.blob
    if outcome.result == "copied":
        click.echo(f"copied {blob.digest} ({blob.size} bytes)")
    elif outcome.result == "skipped":
        click.echo(f"skipped {blob.digest} (already in the bucket)")
    else:
        click.echo(f"failed {blob.digest}: {outcome.reason}", err=True)


def _print_failure(outcome: BlobOutcome) -> None:
    if outcome.result == "failed":  # below the progress bar's line
        click.echo(f"\nfailed {outcome.blob.digest}: {outcome.reason}", err=True)
