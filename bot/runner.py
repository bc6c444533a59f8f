"""What `educonnect-bot run` (and `make run`) does: the real bot when a token is configured,
else the offline sandbox.

Real mode: the bot polls Telegram (or the Bot API server of `TELEGRAM_BASE_URL`) with the
database in the same process — or, with `TELEGRAM_WEBHOOK_URL`, Telegram posts the updates to
the portal's server (`bot.portal.webhook`) — until Ctrl-C or SIGTERM, which stop it cleanly
(the last updates handled, conversations saved, exit code 0). What runs beside the bot — the
digest scheduler (docs/PRODUCT.md), the activation portal (docs/PRODUCT.md) — is to start and
stop with the Telegram application, from its `post_init` / `post_stop` hooks set in
`bot.app.build_application` (`post_init` installs the command menus today): `run_polling` (or
the webhook mode's own loop, `bot.app`) calls them in real mode and the sandbox
(`bot.sandbox.run`) calls the same hooks, so all modes run the same process.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from telegram.error import InvalidToken, NetworkError

from bot.app import run_bot
from bot.config import Settings
from bot.i18n import _
from bot.sandbox.run import run_sandbox
from bot.services.errors import ServiceError
from bot.services.mail import maildir_path

log = logging.getLogger(__name__)


class RunError(ServiceError):
    """The bot cannot start; the message says why and what to change."""


def run(
    settings: Settings,
    *,
    sandbox: bool = False,
    demo: bool | None = None,
    samples: Path | None = None,
    reset: bool = False,
) -> int:
    """Run the bot, or the sandbox without a token (or when asked); returns the exit code.

    `demo` chooses the sandbox's scripted demo (True) or terminal chat (False); by default the
    chat when stdin is a terminal, else the demo.
    """
    if settings.telegram_bot_token and not sandbox and demo is None:
        return run_real(settings)
    interactive = sys.stdin.isatty() if demo is None else not demo
    return run_sandbox(settings, interactive=interactive, samples=samples, reset=reset)


class _RedactingFormatter(logging.Formatter):
    """Never lets the bot token reach the log: PTB quotes it in some errors, URLs carry it."""

    def __init__(self, secret: str | None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secret = secret

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace(self.secret, "<TELEGRAM_BOT_TOKEN>") if self.secret else text


def configure_logging(settings: Settings) -> None:
    """Log to stderr, one line per event, for the operator and the service manager."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(settings.telegram_bot_token))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # httpx logs every request at INFO, the token in the URL: only its warnings matter.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def check_mail_transport(settings: Settings) -> None:
    """Refuse a real bot that would write families' credentials into a Maildir nobody reads
    while their lights say « sent »: without SMTP_HOST, only MAIL_TRANSPORT=maildir allows it."""
    if settings.mail_transport == "maildir":
        return
    if not settings.smtp_host:
        raise RunError(
            _(
                "SMTP_HOST is not set, so no e-mail would reach the families: set SMTP_HOST "
                "(and SMTP_USERNAME, SMTP_PASSWORD), or MAIL_TRANSPORT=maildir to keep every "
                "e-mail in {folder} on purpose."
            ).format(folder=maildir_path(settings))
        )


def run_real(settings: Settings) -> int:
    """Poll Telegram (or receive its webhook) until Ctrl-C or SIGTERM; 0 after a clean stop.
    A TELEGRAM_WEBHOOK_URL that cannot work is refused before anything starts."""
    check_mail_transport(settings)
    configure_logging(settings)
    # The address without the token, which must never reach a log.
    log.info("starting the bot against %s", settings.telegram_base_url)
    try:
        run_bot(settings)
    except InvalidToken as error:
        # PTB's message quotes the token: never repeat it.
        raise RunError(
            _(
                "the Bot API ({url}) refuses TELEGRAM_BOT_TOKEN: check the token @BotFather "
                "gave you."
            ).format(url=settings.telegram_base_url)
        ) from error
    except NetworkError as error:
        raise RunError(
            _(
                "the Bot API cannot be reached ({url}): {reason}. Check the connection or "
                "TELEGRAM_BASE_URL."
            ).format(url=settings.telegram_base_url, reason=error.message)
        ) from error
    log.info("the bot has stopped")
    return 0
