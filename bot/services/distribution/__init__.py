"""Distributing credentials to a scope of guardians (/envoyer, /pdf, /relancer, the CLI's
`send` and `letters`), in the steps of the domain:

- `scopes`: the classes, levels or school named, and every guardian in them;
- `planning`: who gets what and who is skipped and why (the preview the director confirms);
- `confirming`: the confirmed accounts planned again, refused if one changed since;
- `drafting`: credentials, link codes, letters, e-mails and the PDF, with nothing written;
- `recording`: a draft written in one short transaction, checked again under lock;
- `flows`: draft then record at once (/envoyer, and /pdf or /relancer without a hand-over);
- `chat_letters`: a draft recorded once its PDF is in a chat, with the PDF's deletion.

Nothing here speaks Telegram or SMTP: e-mails become outbox rows, and an account becomes
`notified` only when its e-mail is accepted; a printed letter counts as delivered when it is
recorded.
"""

from __future__ import annotations

from bot.services.distribution.chat_letters import (
    record_letters_sent_in_chat,
    record_reminders_sent_in_chat,
)
from bot.services.distribution.drafting import (
    PaperLetters,
    draft_paper_letters,
    draft_reminders,
)
from bot.services.distribution.errors import (
    DistributionError,
    NothingToDistributeError,
    StalePlanError,
)
from bot.services.distribution.flows import start_email_distribution, start_reminders
from bot.services.distribution.planning import (
    KIND_LABELS,
    SKIP_LABELS,
    DistributionPreview,
    Purpose,
    SkipReason,
    plan_email_distribution,
    plan_for_accounts,
    plan_paper_letters,
    plan_reminders,
)
from bot.services.distribution.recording import (
    ReminderResult,
    record_paper_letters,
    record_reminders,
)

__all__ = [
    "KIND_LABELS",
    "SKIP_LABELS",
    "DistributionError",
    "DistributionPreview",
    "NothingToDistributeError",
    "PaperLetters",
    "Purpose",
    "ReminderResult",
    "SkipReason",
    "StalePlanError",
    "draft_paper_letters",
    "draft_reminders",
    "plan_email_distribution",
    "plan_for_accounts",
    "plan_paper_letters",
    "plan_reminders",
    "record_letters_sent_in_chat",
    "record_paper_letters",
    "record_reminders",
    "record_reminders_sent_in_chat",
    "start_email_distribution",
    "start_reminders",
]
