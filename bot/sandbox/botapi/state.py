"""The emulator's state: the bot, its users' chats, stored files and the queue of updates.

The HTTP server and the Bot API methods build on :class:`EmulatorState`; it runs on one loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import secrets
import struct
from collections import deque
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Literal

from bot.sandbox.botapi.errors import ApiError, bad_request
from bot.sandbox.botapi.model import BotIdentity, PendingCallback, StoredFile
from bot.sandbox.botapi.params import Params
from bot.sandbox.botapi.users import SandboxUser

# Telegram creates these update types only when they are asked for explicitly.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _random_file_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(48)[:60]


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG (0, 0 when unread); None if not a picture."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
        return (0, 0)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return (0, 0)
    return None


def scope_key(scope: Mapping[str, Any] | str | None) -> str:
    """The key of a BotCommandScope (a dict, or just its type name) in the command lists."""
    if scope is None:
        return _canonical({"type": "default"})
    if isinstance(scope, str):
        return _canonical({"type": scope})
    return _canonical(dict(scope))


class EmulatorState:
    """What the emulated Telegram holds for one bot; every method runs on the server's loop."""

    def __init__(
        self,
        *,
        token: str | None,
        bot_username: str,
        bot_first_name: str,
        bot_id: int | None,
    ) -> None:
        if token is not None:
            bot_id = int(token.split(":", 1)[0])
        bot_id = bot_id or 7_000_000_000 + secrets.randbelow(10**8)
        self.token = token or f"{bot_id}:AA{secrets.token_urlsafe(32)[:33]}"
        self.bot = BotIdentity(id=bot_id, username=bot_username, first_name=bot_first_name)

        self.updates: list[dict[str, Any]] = []
        """Every update ever produced, delivered or not: a debugging aid."""
        self.files: dict[str, StoredFile] = {}
        self.deleted: list[tuple[int, int]] = []
        self.commands_by_scope: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook_url = ""

        self._users: dict[int, SandboxUser] = {}
        self._user_ids = itertools.count(700_000_001)
        self._file_counter = itertools.count(1)
        self._files_by_path: dict[str, StoredFile] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(secrets.randbelow(10**6) + 100_000)
        self._allowed_updates: frozenset[str] | None = None
        self._updates_changed = asyncio.Event()
        self._poll_generation = 0
        self._callbacks: dict[str, PendingCallback] = {}
        self._stopping = False

    # -- users ----------------------------------------------------------------------------

    def new_user(
        self,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "fr",
        user_id: int | None = None,
        started: bool = True,
        phone_number: str | None = None,
    ) -> SandboxUser:
        """A new user with a private chat with the bot.

        ``started=False`` models someone who never opened the bot: the bot cannot write first.
        ``phone_number`` is what the user's ``request_contact`` buttons share.
        """
        uid = user_id if user_id is not None else next(self._user_ids)
        if uid in self._users:
            raise ValueError(f"user {uid} already exists")
        user = SandboxUser(
            self, uid, first_name, last_name, username, language_code, started, phone_number
        )
        self._users[uid] = user
        return user

    def user(self, user_id: int) -> SandboxUser:
        """The sandbox user with this id."""
        return self._users[user_id]

    @property
    def users(self) -> list[SandboxUser]:
        """All sandbox users, oldest first."""
        return list(self._users.values())

    # -- what tests inspect ---------------------------------------------------------------

    def commands(
        self, scope: Mapping[str, Any] | str | None = None, language_code: str = ""
    ) -> list[tuple[str, str]]:
        """The command list set for a scope, as ``(command, description)`` pairs.

        ``scope`` is a BotCommandScope dict, or just its type name such as ``"all_private_chats"``.
        """
        key = (scope_key(scope), language_code or "")
        return list(self.commands_by_scope.get(key, []))

    @property
    def pending_update_count(self) -> int:
        """Updates not yet confirmed by the bot."""
        return len(self._pending)

    def file(self, file_id: str) -> StoredFile:
        """A stored file by id."""
        return self.files[file_id]

    def store_file(
        self,
        data: bytes,
        *,
        filename: str | None,
        mime_type: str | None,
        kind: Literal["document", "photo"] = "document",
    ) -> StoredFile:
        """Keep bytes as a Telegram file, with a file_id and a download path."""
        number = next(self._file_counter)
        if kind == "photo":
            size = image_size(data) or (0, 0)
            path = f"photos/file_{number}.jpg"
            prefix = "AgACAgQAAxkBAAI"
        else:
            size = (0, 0)
            suffix = PurePosixPath(filename).suffix if filename else ""
            path = f"documents/file_{number}{suffix}"
            prefix = "BQACAgQAAxkBAAI"
            if mime_type is None and filename:
                mime_type = mimetypes.guess_type(filename)[0]
        stored = StoredFile(
            file_id=_random_file_id(prefix),
            file_unique_id="AgAD" + secrets.token_urlsafe(9)[:12],
            data=bytes(data),
            filename=filename,
            mime_type=mime_type if kind == "document" else None,
            file_path=path,
            kind=kind,
            width=size[0],
            height=size[1],
        )
        self.files[stored.file_id] = stored
        self._files_by_path[path] = stored
        return stored

    # -- updates --------------------------------------------------------------------------

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self._pending.append(update)
        self._wake_pollers()
        return update

    def _wake_pollers(self) -> None:
        changed, self._updates_changed = self._updates_changed, asyncio.Event()
        changed.set()

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            # A negative offset keeps only the last -offset updates.
            while len(self._pending) > -offset:
                self._pending.popleft()
            return
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()

    def _collect(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        batch: list[dict[str, Any]] = []
        kept: deque[dict[str, Any]] = deque()
        for update in self._pending:
            kind = next(k for k in update if k != "update_id")
            wanted = kind in allowed if allowed else kind not in _DEFAULT_EXCLUDED_UPDATES
            if not wanted:
                # Telegram never creates updates of unwanted types; dropping matches that.
                continue
            kept.append(update)
            if len(batch) < limit:
                batch.append(update)
        self._pending = kept
        return batch

    # -- chats addressed by a request -----------------------------------------------------

    def _chat_by_id(self, raw: Any) -> SandboxUser:
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        user = self._users.get(chat_id)
        if user is None:
            raise bad_request("chat not found")
        return user

    def _chat(self, params: Params) -> SandboxUser:
        raw = params.str_opt("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        return self._chat_by_id(raw.strip('"'))

    def _writable_chat(self, params: Params) -> SandboxUser:
        chat = self._chat(params)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not chat.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat
