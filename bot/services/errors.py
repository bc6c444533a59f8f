"""The base of the errors services raise for a user to read (CLI, bot, portal)."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user can act on; the message is one clear sentence, translated with
    `bot.i18n._()` when raised, so in the language of the update or command being handled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# How much of what a user typed an error message quotes back: enough to recognise it, and a
# reply stays far within Telegram's 4,096 characters whatever was typed.
QUOTED_INPUT_LENGTH = 60


def quoted_input(text: str, limit: int = QUOTED_INPUT_LENGTH) -> str:
    """What a user typed, as a message quotes it back: spaces collapsed, cut with « … » past
    `limit` characters."""
    plain = " ".join(text.split())
    return plain if len(plain) <= limit else plain[: limit - 1].rstrip() + "…"
