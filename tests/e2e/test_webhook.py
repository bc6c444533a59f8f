"""Webhook mode end to end: the real bot process with TELEGRAM_WEBHOOK_URL sets its webhook on
the emulator, which posts each update to the portal's server with the secret token; a forged
post is refused; SIGTERM stops it with 0, and what Telegram kept meanwhile is handled after."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from telegram import Update

from bot.sandbox.botapi import ApiCall, ThreadedBotApi, WebhookDelivery
from bot.sandbox.botapi.webhook import SECRET_HEADER
from tests.e2e.conftest import START_TIMEOUT, BotProcess, ask, replies, text_of
from tests.e2e.steps import import_samples
from tests.mailtools import free_port

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

SECRET = "e2e_Webhook-secret_0123456789"
WEBHOOK_PATH = "/telegram/webhook"


def webhook_bot(bot_factory: Callable[..., BotProcess]) -> tuple[BotProcess, str]:
    """A bot process in webhook mode, its portal (and webhook) on a free local port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    bot = bot_factory(
        env={
            "PORTAL_BIND": f"127.0.0.1:{port}",
            "PORTAL_URL": f"http://127.0.0.1:{port}",
            "TELEGRAM_WEBHOOK_URL": url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
        }
    )
    return bot, url


def start_on_webhook(bot: BotProcess, api: ThreadedBotApi) -> ApiCall:
    """Start the process and return its setWebhook call (its last step: it is then ready)."""
    since = len(api.calls())
    bot.start(wait=False)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return api.wait_for_call("setWebhook", timeout=0.5, since=since)
        except TimeoutError:
            assert bot.running, f"the bot exited before setting its webhook:\n{bot.output[-5000:]}"
            assert time.monotonic() < deadline, f"no setWebhook:\n{bot.output[-5000:]}"


def wait_for_delivery(
    api: ThreadedBotApi, check: Callable[[WebhookDelivery], bool], timeout: float = 10.0
) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in api.webhook_deliveries() if check(d)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, api.webhook_deliveries()
        time.sleep(0.05)


def test_webhook_mode_answers_through_telegram_posts_and_keeps_updates_across_a_restart(
    bot_factory: Callable[..., BotProcess], bot_api: ThreadedBotApi, samples_dir: Path
) -> None:
    bot, url = webhook_bot(bot_factory)
    call = start_on_webhook(bot, bot_api)
    assert call.params["url"] == url and call.params["secret_token"] == SECRET
    assert call.params["drop_pending_updates"] is False
    assert set(call.params["allowed_updates"]) == set(Update.ALL_TYPES)
    # Never polled, and the order of its start is that of run_polling: getMe, then post_init
    # (the menus), then the webhook.
    methods = [c.method for c in bot_api.calls()]
    assert "getUpdates" not in methods and "deleteWebhook" not in methods
    assert methods.index("getMe") < methods.index("setMyCommands") < methods.index("setWebhook")

    school = bot.seed_school()
    import_samples(bot, school, samples_dir)
    director = bot_api.new_user("Claire", last_name="Martin")
    welcome = text_of(ask(director, f"/start {school.code}"))
    assert school.name in welcome or school.uai in welcome, welcome
    assert "180" in text_of(ask(director, "/etat"))
    # Counted by the emulator once it has the bot's 200, which may come just after the reply.
    last = bot_api.call(lambda: bot_api.server.updates[-1]["update_id"])
    wait_for_delivery(bot_api, lambda d: d.update_id == last)
    delivered = bot_api.webhook_deliveries()
    assert len(delivered) == 2 and all(d.accepted and d.url == url for d in delivered)
    assert bot_api.pending_update_count == 0

    # A stranger who found the address, without the secret or with a wrong one, is refused
    # before the body is read; the right secret with something else than an update is a 400.
    forged = {
        "update_id": 1,
        "message": {
            "message_id": 999,
            "date": int(time.time()),
            "chat": {"id": director.id, "type": "private", "first_name": "Claire"},
            "from": {"id": director.id, "is_bot": False, "first_name": "Claire"},
            "text": "/etat",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }
    director.drain()
    assert httpx.post(url, json=forged).status_code == 403
    assert httpx.post(url, json=forged, headers={SECRET_HEADER: SECRET + "x"}).status_code == 403
    assert httpx.post(url, content=b"{not json", headers={SECRET_HEADER: SECRET}).status_code == 400
    director.expect_no_message(within=0.5)

    # SIGTERM: exit 0, and the webhook stays set (Telegram keeps queuing while it is down).
    assert bot.stop() == 0, bot.output
    assert not bot_api.calls("deleteWebhook") and bot_api.webhook_url == url
    assert "Traceback" not in bot.output, bot.output

    director.drain()
    director.send_text("/etat")
    kept = bot_api.call(lambda: bot_api.server.updates[-1]["update_id"])
    failed = wait_for_delivery(bot_api, lambda d: d.update_id == kept and not d.accepted)
    assert failed.status is None  # nobody listens
    assert bot_api.pending_update_count == 1

    start_on_webhook(bot, bot_api)
    assert "180" in text_of(replies(director))
    wait_for_delivery(bot_api, lambda d: d.update_id == kept and d.accepted)
    assert bot_api.pending_update_count == 0
    assert bot.stop() == 0, bot.output
