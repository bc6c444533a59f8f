"""Builds the Telegram application from the settings and runs it: one place wires it all."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from typing import Any
from weakref import WeakKeyDictionary

import httpx
from sqlalchemy import Engine
from telegram import LinkPreviewOptions, Update
from telegram.error import BadRequest
from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes, Defaults, TypeHandler
from telegram.request import HTTPXRequest

import handlers
from bot.config import Settings
from bot.context import BotContext, EduConnectApplication, ServiceRunner
from bot.db import make_engine, upgrade_schema
from bot.i18n import _
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
from bot.portal.app import serves_page
from bot.portal.server import RunningPortal, start_portal
from bot.portal.webhook import (
    WebhookEndpoint,
    WebhookReceiver,
    WebhookSettingsError,
    webhook_endpoint,
)
from bot.services.roster import discard_stale_uploads

log = logging.getLogger(__name__)

# The Bot API clients' TLS settings (httpx's defaults), made once per process: reading the CA
# bundle takes ≈ 30 ms, and each application built two (its requests and its getUpdates).
_tls_context = functools.cache(httpx.create_ssl_context)


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
        # PTB's own pool sizes: 256 connections for requests, one for getUpdates.
        .request(HTTPXRequest(connection_pool_size=256, httpx_kwargs={"verify": _tls_context()}))
        .get_updates_request(
            HTTPXRequest(connection_pool_size=1, httpx_kwargs={"verify": _tls_context()})
        )
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
    # A job whose time came before the scheduler ran still runs, once: the scheduler starts
    # after post_init, which installs the command menus (seconds, with hundreds of directors),
    # and APScheduler's default drops a job more than a second late — the start's own jobs
    # among them (following the e-mail batches in progress, deleting the PDFs due). A job that
    # must not run too late says so itself (`misfire_grace_time` in its job_kwargs).
    job_queue = application.job_queue
    assert job_queue is not None  # the job-queue extra is a dependency
    job_queue.scheduler.configure(
        job_defaults={"misfire_grace_time": None, "coalesce": True},
        **job_queue.scheduler_configuration,
    )
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


# In webhook mode, what receives the application's updates: the portal's server serves its route.
_webhooks: WeakKeyDictionary[Any, WebhookReceiver] = WeakKeyDictionary()


def running_portal(application: Any) -> RunningPortal | None:
    """The portal this application serves, if it started (None when PORTAL_BIND was busy)."""
    return _portals.get(application)


async def _post_init(application: Any) -> None:
    await handlers.install_command_menus(application)
    if isinstance(application, EduConnectApplication):
        sender = OutboxSender.from_settings(application.settings, application.db.engine, name="bot")
        _outbox_senders[application] = start_sender(sender)
        portal = await start_portal(
            application.settings, application.db.engine, webhook=_webhooks.get(application)
        )
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
    """Run the real bot until Ctrl-C or SIGTERM: polling Telegram, or in webhook mode
    (TELEGRAM_WEBHOOK_URL) receiving its updates on the portal's server."""
    # Checked before anything starts: a wrong address is one clear line, not a half-started bot.
    endpoint = (
        webhook_endpoint(settings, taken=serves_page) if settings.telegram_webhook_url else None
    )
    settings.ensure_data_dir()
    # Imports abandoned before a restart lost their conversation's timeout: their files go now.
    discard_stale_uploads(data_dir=settings.data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade_schema(engine)
    application = build_application(settings, engine)
    try:
        if endpoint is None:
            log.info("bot starting (polling)")
            # run_polling installs SIGINT/SIGTERM handlers; on either it stops polling, lets
            # the update in progress finish, writes user/chat data and conversations to the
            # database (Application.stop → update_persistence), then returns.
            application.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        else:
            log.info("bot starting (webhook %s)", endpoint.url)
            asyncio.run(_serve_webhook(application, endpoint))
    finally:
        engine.dispose()
    log.info("bot stopped")


async def _serve_webhook(application: EduConnectApplication, endpoint: WebhookEndpoint) -> None:
    """Run the application as run_polling does (getMe, post_init, start; on SIGINT or SIGTERM
    stop, post_stop, shutdown), its updates posted by Telegram to the portal's webhook route."""
    receiver = WebhookReceiver(
        endpoint=endpoint, bot=application.bot, update_queue=application.update_queue
    )
    _webhooks[application] = receiver
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    hooks_started = False
    try:
        await application.initialize()  # getMe
        # post_stop undoes what post_init started, even when the start fails half-way.
        hooks_started = True
        if application.post_init is not None:
            await application.post_init(application)  # menus, outbox sender, portal + route
        if running_portal(application) is None:
            raise WebhookSettingsError(
                _(
                    "in webhook mode the Telegram updates arrive at the portal's server, which "
                    "cannot listen on PORTAL_BIND ({bind}) (the log says why): free that "
                    "address or change PORTAL_BIND."
                ).format(bind=application.settings.portal_bind)
            )
        await application.start()
        # Open before setWebhook: Telegram posts what it kept as soon as the webhook is set.
        receiver.open()
        await _set_webhook(application, endpoint)
        log.info("webhook set: Telegram posts the updates to %s", endpoint.url)
        await stop.wait()
    finally:
        # From now on the route answers 503 and Telegram keeps the updates for the next start;
        # those already queued are handled by stop(), which then saves the conversations.
        receiver.close()
        # The webhook is deliberately left set: Telegram goes on queuing the updates while
        # the bot restarts (deleting it would make them wait for a getUpdates that never
        # comes, or be lost if the next start dropped them).
        if application.running:
            await application.stop()
        if hooks_started and application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _set_webhook(application: EduConnectApplication, endpoint: WebhookEndpoint) -> None:
    try:
        await application.bot.set_webhook(
            url=endpoint.url,
            secret_token=endpoint.secret,
            allowed_updates=Update.ALL_TYPES,
            # What Telegram kept while the bot was down is handled now, not dropped.
            drop_pending_updates=False,
        )
    except BadRequest as error:
        raise WebhookSettingsError(
            _(
                "Telegram refuses the webhook {url}: {reason}. Check TELEGRAM_WEBHOOK_URL "
                "(a public https address whose certificate Telegram trusts)."
            ).format(url=endpoint.url, reason=error.message)
        ) from error
