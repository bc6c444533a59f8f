"""Credential letters: what a letter says, the A4 PDF pages with their QR codes, their
protection with the school's document password, and the school's letter settings.
"""

from __future__ import annotations

from bot.services.letters.content import (
    ChildLine,
    Letter,
    activation_url,
    bot_link_url,
)
from bot.services.letters.documents import (
    LetterDocumentsError,
    individual_documents_zip,
)
from bot.services.letters.protection import (
    encrypt_pdf,
)
from bot.services.letters.rendering import (
    letter_filename,
    render_letters,
    split_letters,
    zip_letters,
)
from bot.services.letters.settings import (
    MAX_RETENTION_HOURS,
    MIN_LETTER_PASSWORD_LENGTH,
    MIN_RETENTION_HOURS,
    DueDeletion,
    LetterSettingsError,
    due_deletions,
    generate_letter_passphrase,
    get_letter_password,
    get_retention_hours,
    has_letter_password,
    mark_deletions_done,
    next_deletion_at,
    schedule_letter_deletion,
    set_letter_password,
    set_retention_hours,
)

__all__ = [
    "MAX_RETENTION_HOURS",
    "MIN_LETTER_PASSWORD_LENGTH",
    "MIN_RETENTION_HOURS",
    "ChildLine",
    "DueDeletion",
    "Letter",
    "LetterDocumentsError",
    "LetterSettingsError",
    "activation_url",
    "bot_link_url",
    "due_deletions",
    "encrypt_pdf",
    "generate_letter_passphrase",
    "get_letter_password",
    "get_retention_hours",
    "has_letter_password",
    "individual_documents_zip",
    "letter_filename",
    "mark_deletions_done",
    "next_deletion_at",
    "render_letters",
    "schedule_letter_deletion",
    "set_letter_password",
    "set_retention_hours",
    "split_letters",
    "zip_letters",
]
