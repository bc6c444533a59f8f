"""Simulated Telegram users, each in a private chat with the bot, and their test-facing API."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from bot.sandbox.botapi.formatting import detect_entities
from bot.sandbox.botapi.model import (
    BotIdentity,
    CallbackAnswer,
    CallbackRef,
    ChatEvent,
    ChatMessage,
    EventKind,
    OwnId,
    PendingCallback,
    ReplyButton,
    StoredFile,
    now,
)


class ChatHost(Protocol):
    """What a user's actions need from the server: the bot's identity, files, the update queue.

    A protocol rather than the server class, so that the server module can build users.
    """

    bot: BotIdentity
    _callbacks: dict[str, PendingCallback]

    def store_file(
        self,
        data: bytes,
        *,
        filename: str | None,
        mime_type: str | None,
        kind: Literal["document", "photo"] = "document",
    ) -> StoredFile: ...

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]: ...


class SandboxUser:
    """A Telegram user in a private chat with the bot; every method runs on the server's loop."""

    def __init__(
        self,
        server: ChatHost,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        started: bool,
        phone_number: str | None = None,
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.started = started
        self.phone_number = phone_number
        """What a ``request_contact`` button shares, as Telegram sends it (``33612345678``)."""
        self.blocked = False
        self.chat_instance = str(secrets.randbits(62))
        self.chat_actions: list[str] = []
        self.callbacks: list[CallbackRef] = []
        self._messages: dict[int, ChatMessage] = {}
        self._events: list[ChatEvent] = []
        self._changed = asyncio.Event()
        self._message_ids = itertools.count(1)
        self._cursor_any = 0
        self._cursor_sent = 0
        self._cursor_edited = 0
        self._mark = 0
        self._reply_keyboard: tuple[tuple[str, ...], ...] | None = None
        self._reply_buttons: tuple[tuple[ReplyButton, ...], ...] | None = None

    # -- identity ------------------------------------------------------------------------

    @property
    def chat_id(self) -> int:
        """A private chat's id is the user's id."""
        return self.id

    def to_api(self) -> dict[str, Any]:
        """The User object."""
        api: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            api["last_name"] = self.last_name
        if self.username:
            api["username"] = self.username
        if self.language_code:
            api["language_code"] = self.language_code
        return api

    def chat_to_api(self) -> dict[str, Any]:
        """The Chat object of the private chat."""
        api: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            api["last_name"] = self.last_name
        if self.username:
            api["username"] = self.username
        return api

    def __repr__(self) -> str:
        return f"SandboxUser(id={self.id}, first_name={self.first_name!r})"

    # -- what the chat holds -------------------------------------------------------------

    @property
    def history(self) -> list[ChatMessage]:
        """Every message of the chat in order, in its latest state (deleted ones flagged)."""
        return [self._messages[k] for k in sorted(self._messages)]

    @property
    def events(self) -> list[ChatEvent]:
        """Everything the bot did in this chat: sends, edits and deletions, in order."""
        return list(self._events)

    @property
    def bot_messages(self) -> list[ChatMessage]:
        """The bot's messages still in the chat, latest state."""
        return [m for m in self.history if m.from_bot and not m.deleted]

    @property
    def last_bot_message(self) -> ChatMessage | None:
        """The bot's most recent message still in the chat."""
        messages = self.bot_messages
        return messages[-1] if messages else None

    @property
    def reply_keyboard(self) -> tuple[tuple[str, ...], ...] | None:
        """The reply keyboard currently shown under the input field, if any."""
        return self._reply_keyboard

    @property
    def reply_buttons(self) -> tuple[tuple[ReplyButton, ...], ...] | None:
        """The reply keyboard currently shown, with what each button requests."""
        return self._reply_buttons

    @property
    def contact_button(self) -> str | None:
        """The label of the shown reply keyboard's ``request_contact`` button, if any."""
        for row in self._reply_buttons or ():
            for button in row:
                if button.request_contact:
                    return button.text
        return None

    def message(self, message_id: int) -> ChatMessage:
        """Latest state of one message of this chat."""
        try:
            return self._messages[message_id]
        except KeyError:
            raise LookupError(f"no message {message_id} in chat {self.id}") from None

    # -- acting as the user ---------------------------------------------------------------

    async def send_text(
        self, text: str, *, reply_to: ChatMessage | int | None = None
    ) -> ChatMessage:
        """Type ``text``; commands get their ``bot_command`` entity as Telegram adds it."""
        return self._user_message(
            text=text, entities=tuple(detect_entities(text)), reply_to=reply_to
        )

    async def tap(self, label: str) -> ChatMessage:
        """Press a reply keyboard button, which sends its label as text.

        A ``request_contact`` button shares the user's own contact instead (the user confirms the
        dialog Telegram shows), with :attr:`phone_number`, which must then be set.
        """
        keyboard = self._reply_keyboard or ()
        if not any(label in row for row in keyboard):
            raise LookupError(f"no reply keyboard button {label!r} (keyboard: {keyboard!r})")
        if label == self.contact_button:
            if self.phone_number is None:
                raise LookupError(f"{self!r} has no phone_number to share")
            return await self.share_contact(self.phone_number)
        return await self.send_text(label)

    async def share_contact(
        self,
        phone_number: str,
        *,
        user_id: int | OwnId | None = OwnId.OWN,
        first_name: str | None = None,
    ) -> ChatMessage:
        """Send a contact, as Telegram's Bot API delivers it in ``message.contact``.

        By default it is the user's own contact (what a ``request_contact`` button sends), so
        ``user_id`` is the sender's id; give another id for someone else's card, or None for a
        number typed in as a new contact (Telegram then sends no ``user_id``).
        """
        own = user_id is OwnId.OWN
        contact: dict[str, Any] = {
            "phone_number": phone_number,
            "first_name": first_name if first_name is not None else self.first_name,
        }
        if own and first_name is None and self.last_name:
            contact["last_name"] = self.last_name
        contact_id = self.id if isinstance(user_id, OwnId) else user_id
        if contact_id is not None:
            contact["user_id"] = contact_id
        return self._user_message(contact=contact)

    async def send_document(
        self,
        data: bytes,
        *,
        filename: str = "document.bin",
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> ChatMessage:
        """Send a file as a document; the server keeps it so that getFile and downloads work."""
        stored = self.server.store_file(
            data, filename=filename, mime_type=mime_type, kind="document"
        )
        return self._user_message(document=stored, caption=caption)

    async def send_photo(self, data: bytes, *, caption: str | None = None) -> ChatMessage:
        """Send a picture (PNG or JPEG bytes)."""
        stored = self.server.store_file(data, filename=None, mime_type=None, kind="photo")
        return self._user_message(photo=stored, caption=caption)

    async def press(self, message: ChatMessage | int, button: str) -> CallbackRef:
        """Press an inline button (by label, else by callback data) of the message as it is now."""
        message_id = message if isinstance(message, int) else message.message_id
        current = self.message(message_id)
        if current.deleted:
            raise LookupError(f"message {message_id} was deleted")
        target = current.button(button)
        if target.callback_data is None:
            raise ValueError(f"button {button!r} is not a callback button ({target.raw})")
        return await self.press_data(current, target.callback_data)

    async def press_data(self, message: ChatMessage | int, data: str) -> CallbackRef:
        """Send a button press carrying `data` under `message`, whatever its buttons are: what a
        modified client could send (tests of forged buttons)."""
        message_id = message if isinstance(message, int) else message.message_id
        current = self.message(message_id)
        self.started = True
        ref = CallbackRef(
            id=str(secrets.randbits(63)),
            data=data,
            chat_id=self.id,
            message_id=message_id,
        )
        self.callbacks.append(ref)
        self.server._callbacks[ref.id] = PendingCallback(ref, asyncio.Event())
        self._mark = len(self._events)
        self.server._push_update(
            "callback_query",
            {
                "id": ref.id,
                "from": self.to_api(),
                "message": current.to_api(),
                "chat_instance": self.chat_instance,
                "data": ref.data,
            },
        )
        return ref

    async def answer_for(self, callback: CallbackRef, timeout: float = 10.0) -> CallbackAnswer:
        """Wait until the bot answers this button press, and return its answer."""
        pending = self.server._callbacks[callback.id]
        try:
            await asyncio.wait_for(pending.answered.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not answer callback query {callback.data!r} within {timeout}s"
            ) from None
        assert pending.answer is not None
        return pending.answer

    async def block(self) -> None:
        """Block the bot: further sends get 403, and the bot gets a my_chat_member update."""
        self._member_update("member", "kicked")
        self.blocked = True

    async def unblock(self) -> None:
        """Unblock the bot (Telegram then also sends a my_chat_member update)."""
        self.blocked = False
        self._member_update("kicked", "member")

    # -- observing the bot ----------------------------------------------------------------

    async def next_event(self, timeout: float = 10.0) -> ChatEvent:
        """The next thing the bot did in this chat (send, edit or delete), in order."""
        return await self._next(lambda e: True, "_cursor_any", timeout, "event")

    async def next_message(self, timeout: float = 10.0) -> ChatMessage:
        """The next new message the bot sent here (edits have their own cursor)."""
        event = await self._next(lambda e: e.kind == "sent", "_cursor_sent", timeout, "message")
        return event.message

    async def next_edit(self, timeout: float = 10.0) -> ChatMessage:
        """The next edit the bot made here, as the message looks after it."""
        event = await self._next(lambda e: e.kind == "edited", "_cursor_edited", timeout, "edit")
        return event.message

    async def wait_for(
        self,
        predicate: Callable[[ChatMessage], bool],
        timeout: float = 10.0,
        *,
        kinds: Iterable[EventKind] = ("sent", "edited"),
        since: int | None = None,
    ) -> ChatMessage:
        """First bot message (sent or edited) satisfying ``predicate``.

        The search starts at the user's last action unless ``since`` gives an event index, so
        a reply that came before this call is still found. Cursors are left untouched.
        """
        wanted = frozenset(kinds)
        start = self._mark if since is None else since
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self._events[start:]:
                if event.kind in wanted and predicate(event.message):
                    return event.message
            start = len(self._events)
            if not await self._wait_change(deadline):
                recent = [e.message.content[:80] for e in self._events[-5:]]
                raise TimeoutError(
                    f"no matching bot message in chat {self.id} within {timeout}s; "
                    f"latest: {recent!r}"
                )

    async def expect_no_message(self, within: float = 0.3) -> None:
        """Fail if the bot sends a new message within ``within`` seconds."""
        seen = sum(1 for e in self._events if e.kind == "sent")
        await asyncio.sleep(within)
        fresh = [e.message for e in self._events if e.kind == "sent"][seen:]
        if fresh:
            raise AssertionError(f"unexpected bot message: {fresh[0].content!r}")

    def drain(self) -> list[ChatEvent]:
        """Move every cursor to the end; returns the events skipped by ``next_event``."""
        skipped = self._events[self._cursor_any :]
        end = len(self._events)
        self._cursor_any = self._cursor_sent = self._cursor_edited = self._mark = end
        return list(skipped)

    # -- internals ------------------------------------------------------------------------

    async def _next(
        self, accept: Callable[[ChatEvent], bool], cursor: str, timeout: float, what: str
    ) -> ChatEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            position = getattr(self, cursor)
            for index in range(position, len(self._events)):
                if accept(self._events[index]):
                    setattr(self, cursor, index + 1)
                    return self._events[index]
            setattr(self, cursor, len(self._events))
            if not await self._wait_change(deadline):
                raise TimeoutError(f"no {what} from the bot in chat {self.id} within {timeout}s")

    async def _wait_change(self, deadline: float) -> bool:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            return False
        return True

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _record(self, kind: EventKind, message: ChatMessage) -> None:
        self._messages[message.message_id] = message
        if message.from_bot or kind == "deleted":
            self._events.append(ChatEvent(len(self._events), kind, message))
            self._notify()

    def _resolve_reply(self, reply_to: ChatMessage | int | None) -> ChatMessage | None:
        if reply_to is None:
            return None
        message_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
        return self.message(message_id)

    def _user_message(
        self,
        *,
        text: str | None = None,
        entities: tuple[Mapping[str, Any], ...] = (),
        document: StoredFile | None = None,
        photo: StoredFile | None = None,
        caption: str | None = None,
        reply_to: ChatMessage | int | None = None,
        contact: Mapping[str, Any] | None = None,
    ) -> ChatMessage:
        if self.blocked:
            raise RuntimeError("unblock the bot before writing to it")
        self.started = True
        message = ChatMessage(
            message_id=next(self._message_ids),
            chat_id=self.id,
            from_bot=False,
            date=now(),
            sender=self.to_api(),
            chat=self.chat_to_api(),
            text=text,
            entities=entities,
            caption=caption,
            caption_entities=tuple(detect_entities(caption)) if caption else (),
            document=document,
            photo=photo,
            contact=contact,
            reply_to=self._resolve_reply(reply_to),
        )
        self._record("sent", message)
        self._mark = len(self._events)
        self.server._push_update("message", message.to_api())
        return message

    def _bot_message(self, **fields: Any) -> ChatMessage:
        message = ChatMessage(
            message_id=next(self._message_ids),
            chat_id=self.id,
            from_bot=True,
            date=now(),
            sender=self.server.bot.to_api(),
            chat=self.chat_to_api(),
            **fields,
        )
        if message.reply_keyboard is not None:
            self._reply_keyboard = message.reply_keyboard
            self._reply_buttons = message.reply_buttons or tuple(
                tuple(ReplyButton(text=label) for label in row) for row in message.reply_keyboard
            )
        elif message.remove_keyboard:
            self._reply_keyboard = None
            self._reply_buttons = None
        self._record("sent", message)
        return message

    def _member_update(self, old: str, new: str) -> None:
        bot = self.server.bot.to_api()
        date = now()
        new_member: dict[str, Any] = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            old_member["until_date"] = 0
        self.server._push_update(
            "my_chat_member",
            {
                "chat": self.chat_to_api(),
                "from": self.to_api(),
                "date": date,
                "old_chat_member": old_member,
                "new_chat_member": new_member,
            },
        )
