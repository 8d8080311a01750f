"""`dockyard cache warm GROUP IMAGE[:TAG]...`: pre-warm a group's cache before a rollout.

The command queues a job through the same checked service as the page and
GraphQL (`services/start_warm_job.py`), then claims it and runs it here, with
the same runner the server's worker uses (`services/run_warm_job.py`); if a
server's worker claimed it first, the command follows its progress instead.
Either way the progress shown is read from the job's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from typing import TYPE_CHECKING, TextIO

import click

from app.cli.cache import cache
from app.cli.common import OPERATOR, Failure, json_option, run
from app.config import Settings

if TYPE_CHECKING:
    from app.dependency_proxy.warm_jobs import WarmImageView, WarmJobView

POLL_SECONDS = 0.3
BAR_WIDTH = 24


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _line(image: WarmImageView, bar: bool) -> str:
    text = (
        f"{image.image}: {image.state}, {image.layers_done}/{image.layers_total} layers, "
        f"{_size(image.bytes_done)}/{_size(image.bytes_total)}"
    )
    if image.error:
        text += f": {image.error}"
    if not bar:
        return text
    share = image.bytes_done / image.bytes_total if image.bytes_total else 0.0
    if image.state == "done":
        share = 1.0
    filled = int(BAR_WIDTH * min(1.0, share))
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {text}"


class _Progress:
    """A bar per image, redrawn in place on a terminal; a line per change otherwise."""

    def __init__(self, out: TextIO, terminal: bool) -> None:
        self.out, self.terminal = out, terminal
        self.drawn = 0
        self.printed: dict[str, str] = {}

    def show(self, images: tuple[WarmImageView, ...]) -> None:
        lines = [_line(image, self.terminal) for image in images]
        if self.terminal:
            # A wrapped line would throw the redrawing off: cut to the terminal's width.
            width = max(20, shutil.get_terminal_size().columns - 1)
            lines = [line[:width] for line in lines]
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
        else:
            for image, line in zip(images, lines, strict=True):
                if self.printed.get(image.image) != line:
                    self.printed[image.image] = line
                    self.out.write(line + "\n")
        self.out.flush()


async def _follow(
    settings: Settings, group_path: str, job_id: int, show: _Progress | None
) -> WarmJobView:
    """Run the job here if nobody took it yet, else follow it; returns its final view."""
    from app.dependency_proxy import warm_jobs
    from app.dependency_proxy.cache import PullThroughCache
    from app.dependency_proxy.services.find_warm_jobs import find_warm_jobs
    from app.dependency_proxy.services.run_warm_job import run_warm_job

    held = await warm_jobs.claim(job_id)
    runner: asyncio.Task[WarmJobView] | None = None
    pull_cache = None
    if held is not None:
        pull_cache = PullThroughCache.from_settings(settings)
        await pull_cache.start()
        runner = asyncio.create_task(run_warm_job(pull_cache, settings, held))
    try:
        while True:
            (view,) = (await find_warm_jobs(OPERATOR, group_path, job_id=job_id)).jobs
            if show is not None:
                show.show(view.images)
            if view.finished or (runner is not None and runner.done()):
                if runner is not None:
                    await runner  # its failure, if any, is the command's
                    (view,) = (await find_warm_jobs(OPERATOR, group_path, job_id=job_id)).jobs
                    if show is not None:
                        show.show(view.images)
                return view
            await asyncio.sleep(POLL_SECONDS)
    finally:
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if pull_cache is not None:
            await pull_cache.statistics.flush()
            await pull_cache.aclose()


@cache.command("warm")
@click.argument("group_path")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH[/VARIANT]",
    help="Platform to fetch from a multi-platform index (repeatable; default linux/amd64).",
)
@click.option(
    "--all-platforms",
    is_flag=True,
    help="Fetch every platform manifest of an index and its layers.",
)
@json_option
def cache_warm(
    group_path: str,
    images: tuple[str, ...],
    platforms: tuple[str, ...],
    all_platforms: bool,
    as_json: bool,
) -> None:
    """Pull IMAGE[:TAG]... into GROUP_PATH's cache now, through the group's upstreams
    and credentials, as a client pull would. For a multi-platform index only the
    linux/amd64 manifest and its layers are fetched unless --platform or
    --all-platforms says otherwise. Shows progress per image (layers, config
    included, and bytes); exits 1 if an image failed."""
    from app.dependency_proxy.services.start_warm_job import start_warm_job

    out = sys.stdout
    show = None if as_json else _Progress(out, out.isatty())

    async def work(settings: Settings) -> WarmJobView:
        job = await start_warm_job(
            OPERATOR,
            settings,
            group_path,
            list(images),
            platforms=platforms,
            all_platforms=all_platforms,
        )
        if show is not None:
            click.echo(f"warm job {job.id} for {job.group_path} queued")
        return await _follow(settings, job.group_path, job.id, show)

    view = run(work)
    if as_json:
        click.echo(json.dumps(view.as_dict(), sort_keys=True))
    else:
        click.echo(f"warm job {view.id} {view.state}")
    if view.state != "done":
        failed = [image.image for image in view.images if image.state == "failed"]
        raise Failure(f"warm job {view.id} {view.state}; not warmed: {', '.join(failed) or '-'}")
