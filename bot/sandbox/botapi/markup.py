"""Reply markup a bot attaches to its messages: inline and reply keyboards, validated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.sandbox.botapi.errors import bad_request
from bot.sandbox.botapi.model import Button, ReplyButton

MAX_CALLBACK_DATA_BYTES = 64

_INLINE_ACTIONS = (
    "callback_data", "url", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip


@dataclass(frozen=True)
class Markup:
    """A validated reply markup: an inline keyboard, a reply keyboard, or a removal."""

    inline: tuple[tuple[Button, ...], ...] = ()
    reply: tuple[tuple[str, ...], ...] | None = None
    reply_buttons: tuple[tuple[ReplyButton, ...], ...] | None = None
    remove: bool = False
    force_reply: bool = False


def _check_button_url(url: str) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return
    if scheme not in ("http", "https"):
        raise bad_request(
            f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
        )
    host = parts.hostname or ""
    # Telegram refuses hosts that cannot be public, such as "localhost"; IP addresses pass.
    is_ip = bool(re.fullmatch(r"[0-9.]+|\[?[0-9a-fA-F:]+\]?", host))
    if not host or ("." not in host and not is_ip) or host.endswith("."):
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _parse_inline_button(button: Any) -> Button:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    text = button["text"]
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if not actions:
        raise bad_request("text buttons are unallowed in the inline keyboard")
    data = button.get("callback_data")
    if data is not None:
        encoded = str(data).encode("utf-8")
        if not 1 <= len(encoded) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if url is not None:
        _check_button_url(str(url))
    return Button(
        text=text,
        callback_data=None if data is None else str(data),
        url=None if url is None else str(url),
        raw=dict(button),
    )


def _parse_reply_button(button: Any) -> ReplyButton:
    if isinstance(button, str):
        button = {"text": button}
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse keyboard button: KeyboardButton must be a String or an Object"
        )
    text = button.get("text")
    if not isinstance(text, str) or not text:
        raise bad_request("keyboard button text is empty")
    for flag in ("request_contact", "request_location"):
        if flag in button and not isinstance(button[flag], bool):
            raise bad_request(
                f'can\'t parse keyboard button: Field "{flag}" must be of type Boolean'
            )
    return ReplyButton(
        text=text,
        request_contact=bool(button.get("request_contact")),
        request_location=bool(button.get("request_location")),
        raw=dict(button),
    )


def parse_markup(value: Any) -> Markup | None:
    """Validate a decoded ``reply_markup`` as Telegram does; None when there is none."""
    if value is None:
        return None
    invalid = bad_request("can't parse reply keyboard markup JSON object")
    if not isinstance(value, dict):
        raise invalid
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
            )
        inline = tuple(tuple(_parse_inline_button(b) for b in row) for row in rows)
        return Markup(inline=tuple(row for row in inline if row))
    if "keyboard" in value:
        rows = value["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise invalid
        buttons = tuple(tuple(_parse_reply_button(b) for b in row) for row in rows)
        labels = tuple(tuple(b.text for b in row) for row in buttons)
        return Markup(reply=labels, reply_buttons=buttons)
    if value.get("remove_keyboard"):
        return Markup(remove=True)
    if value.get("force_reply"):
        return Markup(force_reply=True)
    raise invalid


def message_fields(markup: Markup | None) -> dict[str, Any]:
    """The :class:`ChatMessage` fields that hold this markup (none when there is no markup)."""
    if markup is None:
        return {}
    return {
        "inline_keyboard": markup.inline,
        "reply_keyboard": markup.reply,
        "reply_buttons": markup.reply_buttons,
        "remove_keyboard": markup.remove,
        "force_reply": markup.force_reply,
    }
