"""What the benchmark pulls and how often: the images, their sizes, the rounds.

Sizes and rounds can be changed with environment variables; the defaults keep
``make bench`` under about ten minutes on two cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.support.images import Image, MiB, push_large_image, push_many_layers_image
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PULL_USER

ROUNDS = int(os.environ.get("DOCKYARD_BENCH_ROUNDS", "5"))
LARGE_MIB = int(os.environ.get("DOCKYARD_BENCH_LARGE_MIB", "256"))
HUGE_MIB = int(os.environ.get("DOCKYARD_BENCH_HUGE_MIB", "1024"))
CLIENTS = 10
UPSTREAM_CREDS = ":".join(PULL_USER)


@dataclass(frozen=True)
class BenchImage:
    """An image in the upstream, and its name as each system is asked for it."""

    label: str
    image: Image

    @property
    def upstream_name(self) -> str:
        """``library/<name>:<tag>`` in the upstream and in the reference proxy."""
        return self.image.reference

    @property
    def dockyard_name(self) -> str:
        """Dockyard adds ``library/`` to one-segment names, as Docker Hub does."""
        return self.image.reference.removeprefix("library/")

    @property
    def repository(self) -> str:
        """The image name without tag, as Dockyard's URLs and token scopes want it."""
        return self.image.repository.removeprefix("library/")

    @property
    def blobs(self) -> list[tuple[str, int]]:
        return [(blob.digest, blob.size) for blob in self.image.blobs]


@dataclass(frozen=True)
class BenchImages:
    many_layers: BenchImage
    large: BenchImage

    def all(self) -> tuple[BenchImage, ...]:
        return (self.many_layers, self.large)


def push_bench_images(pusher: RegistryPusher) -> BenchImages:
    layers = push_many_layers_image(
        pusher, "library/bench-layers", "v1", count=40, layer_size=16 * 1024, seed=5000
    )
    large = push_large_image(pusher, "library/bench-large", "v1", size=LARGE_MIB * MiB, seed=6000)
    return BenchImages(
        BenchImage("many small layers (40 x 16 KiB)", layers),
        BenchImage(f"one {LARGE_MIB} MiB layer", large),
    )


def push_huge_image(pusher: RegistryPusher) -> BenchImage:
    """A fresh image with one ``HUGE_MIB`` layer, streamed (never whole in memory)."""
    huge = push_large_image(pusher, "library/bench-huge", "v1", size=HUGE_MIB * MiB, seed=7000)
    return BenchImage(f"one {HUGE_MIB} MiB layer", huge)
