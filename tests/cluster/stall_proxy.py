"""A TCP proxy in front of the API server whose open connections can be stalled: bytes stop flowing
both ways, yet nothing is closed (a half-dead connection, as a lost route or a hung middlebox leaves
it). Connections opened after the stall flow normally."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class StallingProxy:
    def __init__(self, target: str) -> None:
        """`target`: the API server's URL (https://host:port)."""
        parts = urlsplit(target)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self._server: asyncio.Server | None = None
        self._stalled: set[asyncio.Event] = set()  # set = the connection's bytes are held
        self._live: list[asyncio.Event] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; return the URL to reach the API server through it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"https://127.0.0.1:{port}"

    def stall(self) -> int:
        """Stall every connection open now; return how many."""
        for flag in self._live:
            flag.set()
        count = len(self._live)
        self._live = []
        return count

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        stalled = asyncio.Event()
        self._live.append(stalled)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst, stalled))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, stalled: asyncio.Event) -> None:
        try:
            while data := await src.read(65536):
                if stalled.is_set():
                    await asyncio.Event().wait()  # hold it: never forwarded, never closed
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not stalled.is_set():
                with contextlib.suppress(Exception):
                    dst.close()
