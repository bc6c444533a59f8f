"""Local emulation of the Telegram Bot API HTTP server, for the offline sandbox and e2e tests.

The package's modules each do one thing; this re-exports what the sandbox and the tests use.
"""

from bot.sandbox.botapi.errors import ApiError
from bot.sandbox.botapi.formatting import parse_formatted_text
from bot.sandbox.botapi.model import (
    ApiCall,
    BotIdentity,
    Button,
    CallbackAnswer,
    CallbackRef,
    ChatEvent,
    ChatMessage,
    OwnId,
    ReplyButton,
    StoredFile,
)
from bot.sandbox.botapi.model import PendingCallback as _PendingCallback
from bot.sandbox.botapi.server import BotApiServer
from bot.sandbox.botapi.threaded import ThreadedBotApi, ThreadedUser
from bot.sandbox.botapi.users import SandboxUser
from bot.sandbox.botapi.webhook import WebhookDelivery

__all__ = [
    "ApiCall",
    "ApiError",
    "BotApiServer",
    "BotIdentity",
    "Button",
    "CallbackAnswer",
    "CallbackRef",
    "ChatEvent",
    "ChatMessage",
    "OwnId",
    "ReplyButton",
    "SandboxUser",
    "StoredFile",
    "ThreadedBotApi",
    "ThreadedUser",
    "WebhookDelivery",
    "_PendingCallback",  # tests register button presses by hand
    "parse_formatted_text",
]
