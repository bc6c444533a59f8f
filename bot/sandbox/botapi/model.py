"""What the emulated Telegram shows: files, buttons, messages, chat events, calls and answers."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


def now() -> int:
    """Telegram's clock: whole seconds since the epoch."""
    return int(time.time())


@dataclass(frozen=True)
class StoredFile:
    """A file known to the server: uploaded by the bot or sent by a sandbox user."""

    file_id: str
    file_unique_id: str
    data: bytes = field(repr=False)
    filename: str | None
    mime_type: str | None
    file_path: str
    kind: Literal["document", "photo"]
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def to_api(self) -> dict[str, Any]:
        """The Document / PhotoSize object as Telegram describes this file."""
        if self.kind == "photo":
            return {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "width": self.width,
                "height": self.height,
                "file_size": self.size,
            }
        api: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.filename:
            api["file_name"] = self.filename
        if self.mime_type:
            api["mime_type"] = self.mime_type
        return api


@dataclass(frozen=True)
class Button:
    """One inline keyboard button; exactly one of the action fields is normally set."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def value(self) -> str | None:
        """The callback data, else the URL: what a test usually wants to check."""
        return self.callback_data if self.callback_data is not None else self.url


class OwnId(enum.Enum):
    """Default of ``share_contact(user_id=...)``: the sharing user's own id."""

    OWN = "own"


@dataclass(frozen=True)
class ReplyButton:
    """One reply keyboard button: its label, and whether it asks for the user's phone number."""

    text: str
    request_contact: bool = False
    request_location: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ChatMessage:
    """A message in a sandbox chat, as it stands at one moment (edits make new snapshots)."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    sender: Mapping[str, Any] = field(repr=False)
    chat: Mapping[str, Any] = field(repr=False)
    text: str | None = None
    entities: tuple[Mapping[str, Any], ...] = ()
    caption: str | None = None
    caption_entities: tuple[Mapping[str, Any], ...] = ()
    source: str | None = None
    """What the bot sent before entity parsing (the HTML markup, say)."""
    parse_mode: str | None = None
    document: StoredFile | None = None
    photo: StoredFile | None = None
    inline_keyboard: tuple[tuple[Button, ...], ...] = ()
    reply_keyboard: tuple[tuple[str, ...], ...] | None = None
    reply_buttons: tuple[tuple[ReplyButton, ...], ...] | None = None
    """The reply keyboard's buttons with their requests (``reply_keyboard`` holds the labels)."""
    remove_keyboard: bool = False
    contact: Mapping[str, Any] | None = None
    """A shared contact, as Telegram's Contact object (``phone_number``, ``first_name``…)."""
    force_reply: bool = False
    reply_to: ChatMessage | None = field(default=None, repr=False)
    edit_date: int | None = None
    version: int = 0
    deleted: bool = False

    @property
    def content(self) -> str:
        """The text, or the caption of a file, or an empty string."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as ``(label, callback_data or url)`` pairs."""
        return [[(b.text, b.value) for b in row] for row in self.inline_keyboard]

    @property
    def button_labels(self) -> list[str]:
        """Every inline button label, row after row."""
        return [b.text for row in self.inline_keyboard for b in row]

    @property
    def reply_to_message_id(self) -> int | None:
        """The message this one answers, if any."""
        return self.reply_to.message_id if self.reply_to else None

    def button(self, label: str) -> Button:
        """The inline button with this label (else with this callback data)."""
        flat = [b for row in self.inline_keyboard for b in row]
        for candidate in flat:
            if candidate.text == label:
                return candidate
        for candidate in flat:
            if candidate.callback_data == label:
                return candidate
        labels = ", ".join(repr(b.text) for b in flat) or "none"
        raise LookupError(f"no button {label!r} on message {self.message_id} (buttons: {labels})")

    def to_api(self, *, with_reply: bool = True) -> dict[str, Any]:
        """The Message object Telegram would send for this snapshot."""
        api: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            api["edit_date"] = self.edit_date
        if self.text is not None:
            api["text"] = self.text
            if self.entities:
                api["entities"] = [dict(e) for e in self.entities]
        if self.document is not None:
            api["document"] = self.document.to_api()
        if self.photo is not None:
            api["photo"] = [self.photo.to_api()]
        if self.caption is not None:
            api["caption"] = self.caption
            if self.caption_entities:
                api["caption_entities"] = [dict(e) for e in self.caption_entities]
        if self.contact is not None:
            api["contact"] = dict(self.contact)
        if self.inline_keyboard:
            api["reply_markup"] = {
                "inline_keyboard": [[dict(b.raw) for b in row] for row in self.inline_keyboard]
            }
        if with_reply and self.reply_to is not None:
            # Telegram nests replied-to messages one level deep only.
            api["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        return api


EventKind = Literal["sent", "edited", "deleted"]


@dataclass(frozen=True)
class ChatEvent:
    """Something the bot did to a chat; ``message`` is the snapshot right after it."""

    seq: int
    kind: EventKind
    message: ChatMessage


@dataclass(frozen=True)
class CallbackRef:
    """A button press made by a sandbox user, to be matched with the bot's answer."""

    id: str
    data: str
    chat_id: int
    message_id: int


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot passed to answerCallbackQuery."""

    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass
class ApiCall:
    """One request the bot made; ``status`` and ``result`` are filled when it has been answered."""

    seq: int
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str | None, bytes]] = field(repr=False)
    time: float
    status: int | None = None
    result: Any = field(default=None, repr=False)
    description: str | None = None


@dataclass
class BotIdentity:
    """The bot account that ``getMe`` describes."""

    id: int
    username: str
    first_name: str
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    supports_inline_queries: bool = False

    def to_api(self) -> dict[str, Any]:
        """The User object of the bot, as getMe returns it."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }


@dataclass
class PendingCallback:
    """A button press waiting for the bot's answerCallbackQuery."""

    ref: CallbackRef
    answered: asyncio.Event
    answer: CallbackAnswer | None = None
