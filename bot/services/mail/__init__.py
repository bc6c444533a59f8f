"""E-mail: composing the credential messages (bilingual, French first, for a family speaking
another language), the outbox that loses nothing (writing rows, claiming and recording them,
a batch's progress), and the transports (SMTP or a Maildir) the sender in `bot.jobs.outbox`
hands them to.
"""

from __future__ import annotations

from bot.services.mail.bilingual import (
    TranslationHeading,
    bilingual_subject,
    content_language,
    html_heading,
    plain_heading,
    second_language,
    translation_heading,
)
from bot.services.mail.claims import (
    DEFAULT_LEASE,
    SENDER_ACTOR,
    Claim,
    Outcome,
    Result,
    claim_due,
    new_worker_id,
    note_server_unreachable,
    record_outcomes,
    recover_stale_claims,
    renew_claims,
)
from bot.services.mail.composition import (
    compose_credentials_email,
    message_id_domain,
    sender_address,
)
from bot.services.mail.outbox import (
    CREDENTIAL_KIND_VALUES,
    OutgoingEmail,
    credentials_kind,
    enqueue,
    enqueue_many,
    register_sender,
    unregister_sender,
)
from bot.services.mail.progress import (
    BatchProgress,
    FailedMessage,
    FailureKind,
    batch_progress,
)
from bot.services.mail.transport import (
    DeliveryError,
    MailTransport,
    ServerUnavailable,
    SmtpTransport,
    envelope_sender,
    maildir_path,
    transport_from_settings,
)

__all__ = [
    "CREDENTIAL_KIND_VALUES",
    "DEFAULT_LEASE",
    "SENDER_ACTOR",
    "BatchProgress",
    "Claim",
    "DeliveryError",
    "FailedMessage",
    "FailureKind",
    "MailTransport",
    "Outcome",
    "OutgoingEmail",
    "Result",
    "ServerUnavailable",
    "SmtpTransport",
    "TranslationHeading",
    "batch_progress",
    "bilingual_subject",
    "claim_due",
    "compose_credentials_email",
    "content_language",
    "credentials_kind",
    "enqueue",
    "enqueue_many",
    "envelope_sender",
    "html_heading",
    "maildir_path",
    "message_id_domain",
    "new_worker_id",
    "note_server_unreachable",
    "plain_heading",
    "record_outcomes",
    "recover_stale_claims",
    "register_sender",
    "renew_claims",
    "second_language",
    "sender_address",
    "translation_heading",
    "transport_from_settings",
    "unregister_sender",
]
