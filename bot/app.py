"""Builds the Telegram application from the settings and runs it: one place wires it all."""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from telegram import LinkPreviewOptions, Update
from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes, Defaults, TypeHandler

import handlers
from bot.config import Settings
from bot.context import BotContext, EduConnectApplication, ServiceRunner
from bot.db import make_engine, upgrade_schema
from bot.jobs import (
    OutboxSender,
    RunningSender,
    forget_unblocked,
    setup_deletions,
    setup_digests,
    setup_district_digests,
    setup_reminders,
    start_sender,
)
from bot.persistence import SQLPersistence
from bot.portal.server import RunningPortal, start_portal
from bot.services.roster import discard_stale_uploads

log = logging.getLogger(__name__)


def build_application(settings: Settings, engine: Engine) -> EduConnectApplication:
    """The PTB application for `settings`, with every handler registered."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is required to build the Telegram application")
    # httpx logs every request URL at INFO, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    context_types = ContextTypes(context=BotContext)
    application = (
        ApplicationBuilder()
        .application_class(EduConnectApplication)
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        # A 429 must delay a reply, never lose it: PTB's default is not to retry at all.
        .rate_limiter(AIORateLimiter(max_retries=5))
        .persistence(SQLPersistence(engine))
        .context_types(context_types)
        .defaults(
            Defaults(
                parse_mode="HTML",
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                # Naive times given to the job queue are the school's local time.
                tzinfo=settings.tz,
            )
        )
        # ConversationHandler assumes one update at a time per process.
        .concurrent_updates(False)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .build()
    )
    assert isinstance(application, EduConnectApplication)
    application.settings = settings
    application.db = ServiceRunner(engine)
    # Group -2 first: a user who blocked the bot and writes again gets broadcasts again.
    application.add_handler(TypeHandler(Update, forget_unblocked), group=-2)
    # Group -1 runs before every handler: it sets the language of this update.
    application.add_handler(TypeHandler(Update, handlers.set_update_language), group=-1)
    handlers.register(application)
    # Deleting the letters PDFs after the retention (rescheduled from the database at start).
    setup_deletions(application)
    # The directors' digests (weekly, daily before LSU day, the final check), from the schools.
    setup_digests(application)
    # The inspectors' weekly district digests (Monday 08:00).
    setup_district_digests(application)
    # The hourly automatic reminders to families (schools that turned them on, /digest).
    setup_reminders(application)
    application.add_error_handler(handlers.on_error)
    return application


# The outbox sender each running application starts (post_init) and stops (post_stop); any
# `educonnect-bot worker` processes drain the same outbox beside it.
_outbox_senders: WeakKeyDictionary[Any, RunningSender] = WeakKeyDictionary()


# The activation portal each running application serves in its own event loop (docs/PRODUCT.md).
_portals: WeakKeyDictionary[Any, RunningPortal] = WeakKeyDictionary()


def running_portal(application: Any) -> RunningPortal | None:
    """The portal this application serves, if it started (None when PORTAL_BIND was busy)."""
    return _portals.get(application)


async def _post_init(application: Any) -> None:
    await handlers.install_command_menus(application)
    if isinstance(application, EduConnectApplication):
        sender = OutboxSender.from_settings(application.settings, application.db.engine, name="bot")
        _outbox_senders[application] = start_sender(sender)
        portal = await start_portal(application.settings, application.db.engine)
        if portal is not None:
            _portals[application] = portal


async def _post_stop(application: Any) -> None:
    # The portal first: the requests in flight finish (and enqueue their e-mails).
    portal = _portals.pop(application, None)
    if portal is not None:
        await portal.stop()
    # After the last update was handled: the message in flight is finished, the untried ones
    # go back to pending for the next start (or a worker).
    running = _outbox_senders.pop(application, None)
    if running is not None:
        await running.stop()


def run_bot(settings: Settings) -> None:
    """Run the real bot in polling mode until Ctrl-C or SIGTERM."""
    settings.ensure_data_dir()
    # Imports abandoned before a restart lost their conversation's timeout: their files go now.
    discard_stale_uploads(data_dir=settings.data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_schema(engine)
    application = build_application(settings, engine)
    log.info("bot starting (polling)")
    try:
        # run_polling installs SIGINT/SIGTERM handlers; on either it stops polling, lets the
        # update in progress finish, writes user/chat data and conversations to the database
        # (Application.stop → update_persistence), then returns.
        application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
    finally:
        engine.dispose()
    log.info("bot stopped")
