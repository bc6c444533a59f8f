"""What can happen to a help request, the limits that stop one chat from flooding a school, and
the refusals a family or a director reads."""

from __future__ import annotations

import enum
from datetime import datetime

from bot.services.errors import ServiceError

# A chat files at most this many requests in 24 hours, and adds at most this many messages to
# one request: enough for a family with a real problem, not enough to flood a director.
MAX_REQUESTS_PER_DAY = 3
MAX_FAMILY_MESSAGES = 3
# What is kept of a family's or a director's free text (a Telegram message is 4,096 at most).
MAX_TEXT_LENGTH = 1_000
MAX_NAME_LENGTH = 120


class HelpAction(enum.StrEnum):
    """One event in a request's life, as its history records it."""

    FILED = "filed"
    TAKEN = "taken"  # a director opened it: « in progress »
    MATCHED = "matched"  # a director said which guardian record it is
    EMAIL_SENT = "email_sent"  # credentials by e-mail (reminder, or a new password)
    LETTER_PREPARED = "letter_prepared"  # a paper letter printed for the family
    CONFIRMATION_RESENT = "confirmation_resent"  # the activation confirmation link again
    EMAIL_CORRECTED = "email_corrected"  # the address on file corrected
    REPLIED = "replied"  # a director's message to the family
    FAMILY_MESSAGE = "family_message"  # the family added something
    CLOSED = "closed"


# The answers that settle a request (the family is told; the request becomes « answered »).
ANSWERS = frozenset(
    {
        HelpAction.EMAIL_SENT,
        HelpAction.LETTER_PREPARED,
        HelpAction.CONFIRMATION_RESENT,
        HelpAction.EMAIL_CORRECTED,
        HelpAction.REPLIED,
    }
)


class HelpDeskError(ServiceError):
    """A help request that cannot be filed or acted on; the message says why."""


class TooManyRequestsError(HelpDeskError):
    """The chat filed its share of requests for today; `retry_at` says when it may again."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class RequestNotFoundError(HelpDeskError):
    """No such request for this school or family (never says whether it exists elsewhere)."""


class RequestClosedError(HelpDeskError):
    """The request is closed: nothing more is done on it."""
