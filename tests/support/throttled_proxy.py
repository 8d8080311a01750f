"""A TCP proxy that caps how fast a server's answers flow back, for end-to-end tests.

Put it between Dockyard and the real reference registry to keep a blob download
in flight for a known minimum time (size / rate) without faking the registry:

    with ThrottledProxy(registry.port, bytes_per_second=8 * MiB) as proxy:
        server = DockyardServer(workdir, proxy.url)

Only the server-to-client direction is throttled, per connection; requests pass
at full speed. It listens on 127.0.0.1 only and runs in one background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

CHUNK = 64 * 1024


class ThrottledProxy:
    def __init__(self, target_port: int, *, bytes_per_second: int) -> None:
        self.target_port = target_port
        self.bytes_per_second = bytes_per_second
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThrottledProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="throttled-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("throttled proxy did not start")

    def stop(self, timeout: float = 10.0) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._connections, return_exceptions=True))
            loop.close()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(
                self._pump(client_in, server_out, throttled=False),
                self._pump(server_in, client_out, throttled=True),
            )
        finally:
            for writer in (client_out, server_out):
                writer.close()
            self._connections.discard(task)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, throttled: bool
    ) -> None:
        due = time.monotonic()
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
                if throttled:
                    # A steady pace with no saved-up burst: an idle keep-alive
                    # connection is as slow as a new one.
                    due = max(due, time.monotonic()) + len(data) / self.bytes_per_second
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            if sink.can_write_eof():
                sink.write_eof()
