"""One digest broadcast to many directors through the local Bot API server (`bench.digest_bench`):
the bot's own application (`build_application`, with its AIORateLimiter) sends the text and
the chart to every director, first one after the other as `bot.jobs.digests` does, then all at
once; the emulator's call log gives the rate and any 429.

The emulator does not simulate Telegram's flood limits (it answers 429 only when a test injects
one): the pacing measured is the rate limiter's own, and « no 429 » is only what the emulator saw.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from telegram import Bot

from bot.app import build_application
from bot.config import Settings, get_settings
from bot.db import make_engine, upgrade_schema
from bot.jobs.digest_message import DigestMessage, compose_digest
from bot.sandbox.botapi.server import BotApiServer
from bot.services.digests import DigestContent
from models import DigestKind

TELEGRAM_RATE = 30.0  # messages per second, overall, for a bot
TARGET_SHARE = 0.9
SENDING = ("sendmessage", "sendphoto", "senddocument")


@dataclass(frozen=True)
class Pass:
    """One way of sending the digest to every director, as the emulator saw it."""

    name: str
    directors: int
    messages: int  # answered 200
    rejected: int  # answered 429
    failed: int  # any other error
    seconds: float
    busiest_second: int  # the most messages in any one-second window

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def busiest_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most of `times` (seconds) that fall in any window `width` long."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class Broadcast:
    """The passes of one broadcast, and what the digest weighed."""

    passes: tuple[Pass, ...]
    text_chars: int
    png_bytes: int

    def markdown(self) -> list[str]:
        lines = [
            f"Broadcast of one digest (text of {self.text_chars:,} characters + chart of "
            f"{self.png_bytes / 1024:.0f} KB, 2 messages per director) through the local Bot API "
            f"server, by the bot's application and its `AIORateLimiter(max_retries=5)`; target "
            f"≥ {TARGET_SHARE:.0%} of Telegram's {TELEGRAM_RATE:.0f} messages/s with no 429. The "
            "emulator does not simulate Telegram's flood limits: the pacing is the rate "
            "limiter's own, and a 429 would only come from the emulator if one were injected.",
            "",
            "| how | directors | messages sent | time | messages/s | busiest second | 429 "
            "| other errors | target |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for item in self.passes:
            met = item.rate >= TARGET_SHARE * TELEGRAM_RATE and item.rejected == 0
            lines.append(
                f"| {item.name} | {item.directors} | {item.messages:,} | {item.seconds:.1f} s | "
                f"**{item.rate:.1f}** ({item.rate / TELEGRAM_RATE:.0%} of 30) | "
                f"{item.busiest_second} | {item.rejected} | {item.failed} | "
                f"{'✅ met' if met else '❌ missed'} |"
            )
        return lines


async def _deliver(bot: Bot, chat_id: int, message: DigestMessage) -> None:
    """What `bot.jobs.digests` sends one director: the text, then the chart."""
    await bot.send_message(chat_id, message.text)
    if message.chart_png is not None:
        await bot.send_photo(chat_id, message.chart_png)


async def _one_by_one(bot: Bot, chats: Sequence[int], message: DigestMessage) -> None:
    for chat_id in chats:
        await _deliver(bot, chat_id, message)


async def _all_at_once(bot: Bot, chats: Sequence[int], message: DigestMessage) -> None:
    await asyncio.gather(*(_deliver(bot, chat_id, message) for chat_id in chats))


async def _pass(
    server: BotApiServer,
    name: str,
    send: Callable[[], Awaitable[None]],
    directors: int,
) -> Pass:
    server.clear_calls()
    began = time.perf_counter()
    await send()
    elapsed = time.perf_counter() - began
    calls = [call for call in server.calls if call.method.lower() in SENDING]
    sent = [call for call in calls if call.status in (None, 200)]
    return Pass(
        name=name,
        directors=directors,
        messages=len(sent),
        rejected=sum(1 for call in calls if call.status == 429),
        failed=sum(1 for call in calls if call.status not in (None, 200, 429)),
        seconds=elapsed,
        busiest_second=busiest_window([call.time for call in sent]),
    )


async def _broadcast(content: DigestContent, directors: int, workdir: Path) -> Broadcast:
    message = compose_digest(content, kind=DigestKind.WEEKLY, late=False, tz=get_settings().tz)
    url = f"sqlite:///{workdir / 'bot.db'}"
    engine = make_engine(url)
    upgrade_schema(engine)
    async with BotApiServer() as server:
        settings = Settings(
            telegram_bot_token=server.token,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            database_url=url,
            data_dir=workdir,
        )
        application = build_application(settings, engine)
        chats = [server.new_user(f"Directeur {n}").id for n in range(directors)]
        await application.initialize()
        try:
            bot = application.bot
            passes = (
                await _pass(
                    server,
                    "one after the other (as the job sends)",
                    lambda: _one_by_one(bot, chats, message),
                    directors,
                ),
                await _pass(
                    server,
                    "all at once (`asyncio.gather`)",
                    lambda: _all_at_once(bot, chats, message),
                    directors,
                ),
            )
        finally:
            await application.shutdown()
    engine.dispose()
    return Broadcast(passes, len(message.text), len(message.chart_png or b""))


def broadcast_digest(content: DigestContent, directors: int) -> Broadcast:
    """Send `content`'s digest to `directors` new directors of the emulator, both ways."""
    with tempfile.TemporaryDirectory(prefix="educonnect-bench-broadcast-") as workdir:
        return asyncio.run(_broadcast(content, directors, Path(workdir)))
