"""The chats that refused the bot's messages (403: the user blocked the bot, or the chat is
gone): broadcasts record them and skip them until the user writes to the bot again.

- `blocked`: recording a blocked chat, forgetting it, and the ids of every one.
"""

from __future__ import annotations

from bot.services.chats.blocked import blocked_chat_ids, record_blocked_chat, unblock_chat

__all__ = ["blocked_chat_ids", "record_blocked_chat", "unblock_chat"]
