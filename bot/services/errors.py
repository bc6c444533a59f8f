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
