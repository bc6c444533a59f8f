"""uvicorn inside a process that owns its signals and its event loop: the bot's portal and the
Bot API emulator both serve this way."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn

# uvicorn refreshes its Date header once a second.
_TICK_SECONDS = 1.0


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handlers, stopped by `request_exit` rather than by polling.

    uvicorn's own loop looks at `should_exit` every 0.1 s and its shutdown sleeps 0.1 s more
    before waiting for the connections: a server told to stop with nothing left to serve now
    stops at once (a test suite starts and stops hundreds of them)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def request_exit(self, *, force: bool = False) -> None:
        """Stop serving: finish the requests in flight (`force`: do not wait for them)."""
        self.should_exit = True
        self.force_exit = self.force_exit or force
        self._exit_requested.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += round(_TICK_SECONDS * 10)  # on_tick counts tenths of a second
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), _TICK_SECONDS)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)  # connections to close gracefully: uvicorn's way
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
