"""Bot API methods about the bot itself and its chats: getMe, updates, commands, menus (the
webhook's are in `webhook`)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from bot.sandbox.botapi.errors import ApiError, bad_request
from bot.sandbox.botapi.params import Handler, Params
from bot.sandbox.botapi.state import EmulatorState, scope_key

MAX_POLL_TIMEOUT = 50.0


class BotMethods(EmulatorState):
    """getMe, getUpdates, commands, descriptions, menu buttons and chat queries."""

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return self.bot.to_api()

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.int_opt("offset")
        limit = min(max(params.int_opt("limit") or 100, 1), 100)
        timeout = min(max(params.float_opt("timeout") or 0.0, 0.0), MAX_POLL_TIMEOUT)
        allowed = params.json_opt("allowed_updates")
        if isinstance(allowed, list):
            # Telegram remembers the last list it was given; an empty list means the default.
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        self._confirm(offset)

        # A newer getUpdates ends the older one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            batch = self._collect(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._stopping:
                return batch
            changed = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _scope_from(self, params: Params) -> tuple[str, str]:
        scope = params.json_opt("scope")
        if scope is not None:
            if not isinstance(scope, dict) or "type" not in scope:
                raise bad_request("can't parse BotCommandScope JSON object")
            if "chat_id" in scope:
                self._chat_by_id(scope["chat_id"])
        language = params.str_opt("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        return scope_key(scope), language

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.json_opt("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        pairs: list[tuple[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            pairs.append((command, description))
        key = self._scope_from(params)
        if pairs:
            self.commands_by_scope[key] = pairs
        else:
            self.commands_by_scope.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        key = self._scope_from(params)
        return [{"command": c, "description": d} for c, d in self.commands_by_scope.get(key, [])]

    async def _delete_my_commands(self, params: Params) -> bool:
        self.commands_by_scope.pop(self._scope_from(params), None)
        return True

    def _set_description(self, field_name: str) -> Handler:
        async def handler(params: Params) -> bool:
            language = params.str_opt("language_code") or ""
            value = params.str_opt(field_name) or ""
            if value:
                self.descriptions[(field_name, language)] = value
            else:
                self.descriptions.pop((field_name, language), None)
            return True

        return handler

    def _get_description(self, field_name: str) -> Handler:
        async def handler(params: Params) -> dict[str, str]:
            language = params.str_opt("language_code") or ""
            value = self.descriptions.get((field_name, language))
            if value is None:
                value = self.descriptions.get((field_name, ""), "")
            if field_name == "name" and not value:
                value = self.bot.first_name
            return {field_name: value}

        return handler

    async def _set_chat_menu_button(self, params: Params) -> bool:
        chat_id = params.int_opt("chat_id")
        if chat_id is not None:
            self._chat_by_id(chat_id)
        button = params.json_opt("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or "type" not in button:
            raise bad_request("can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    async def _get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        chat_id = params.int_opt("chat_id")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        return button or {"type": "default"}

    async def _get_chat(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        info = chat.chat_to_api()
        info.update(
            accent_color_id=chat.id % 7,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        )
        return info

    async def _get_chat_member(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = params.int_req("user_id")
        if user_id == self.bot.id:
            return {"status": "member", "user": self.bot.to_api()}
        if user_id != chat.id:
            raise bad_request("user not found")
        return {"status": "member", "user": chat.to_api()}

    async def _pin_chat_message(self, params: Params) -> bool:
        chat = self._chat(params)
        message_id = params.int_opt("message_id")
        if message_id is not None and message_id not in chat._messages:
            raise bad_request("message to pin not found")
        return True
