"""Automatic reminders to the families not yet green (opt-in per school, /digest): who is due
one, when one may go out (never 20:00–08:00, never on a Sunday), and sending them through
/relancer's services, at most once a week per guardian.

- `hours`: the quiet hours;
- `selection`: who is due a reminder, and who was reminded since a moment (for the digest);
- `sending`: the reminders written to the outbox, and a `FamilyReminder` per guardian.
"""

from __future__ import annotations

from bot.services.reminders.hours import next_allowed, reminders_allowed_at
from bot.services.reminders.selection import (
    REMINDER_INTERVAL,
    due_reminders,
    reminded_since,
    schools_with_reminders,
)
from bot.services.reminders.sending import (
    CHAT_CHANNEL,
    EMAIL_CHANNEL,
    RemindedGuardian,
    ReminderBatch,
    record_chat_reminders,
    send_due_reminders,
    send_reminders,
)

__all__ = [
    "CHAT_CHANNEL",
    "EMAIL_CHANNEL",
    "REMINDER_INTERVAL",
    "RemindedGuardian",
    "ReminderBatch",
    "due_reminders",
    "next_allowed",
    "record_chat_reminders",
    "reminded_since",
    "reminders_allowed_at",
    "schools_with_reminders",
    "send_due_reminders",
    "send_reminders",
]
