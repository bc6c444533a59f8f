"""Stand-alone use, ``python -m bot.sandbox.botapi``: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

import bot.sandbox.botapi as package
from bot.sandbox.botapi.server import BotApiServer


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the emulator until interrupted, printing the settings a bot process needs."""
    parser = argparse.ArgumentParser(
        description=package.__doc__.splitlines()[0] if package.__doc__ else None
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=None)
    parser.add_argument("--username", default="educonnect_test_bot")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = BotApiServer(
            token=args.token, bot_username=args.username, host=args.host, port=args.port
        )
        async with server:
            for name, value in server.env().items():
                print(f"{name}={value}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
