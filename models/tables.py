"""The tables of the account registry: schools, roster, guardians, accounts, audit.

Datetimes are timezone-aware and stored in UTC; they are shown in Europe/Paris by the callers.
Rows that matter for history (pupils, guardians, accounts) are archived or deactivated, never
deleted, so identifiers are never reused and audit events keep pointing somewhere.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, String, UniqueConstraint, false
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

# Stable constraint names, so Alembic migrations work the same on SQLite (batch) and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class AccountState(enum.StrEnum):
    """The four lights of the official « état des comptes »."""

    NOT_NOTIFIED = "not_notified"
    NOTIFIED = "notified"
    ACTIVATING = "activating"
    ACTIVATED = "activated"


class DistributionChannel(enum.StrEnum):
    """How the credentials reached the guardian."""

    EMAIL = "email"
    PAPER = "paper"


def _enum_column(enum_cls: type[enum.Enum], **kwargs: Any) -> Column[Any]:
    # Store the enum's value (« notified »), not its Python name, as a plain string column.
    return Column(
        SAEnum(
            enum_cls,
            values_callable=lambda members: [m.value for m in members],
            native_enum=False,
            length=20,
            validate_strings=True,
        ),
        **kwargs,
    )


class School(SQLModel, table=True):
    """A school, known by its UAI (e.g. 0751234X)."""

    id: int | None = Field(default=None, primary_key=True)
    uai: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    name: str
    city: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # The password that opens the PDF letters sent in chat, encrypted with the deployment's
    # key (the bot needs it back to encrypt each new PDF); None until the director sets it.
    letter_password_encrypted: str | None = None
    # How long a PDF carrying passwords stays in the chat before the bot deletes it.
    letter_retention_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    # The day the school reports (LSU) go online, set by the director with /lsu.
    lsu_date: date | None = None
    # The weekly digest: day (0 Monday … 6 Sunday) and hour, in the deployment's time zone.
    digest_weekday: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    digest_hour: int = Field(default=8, sa_column_kwargs={"server_default": "8"})
    digest_paused: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Automatic reminders to families notified or activating for more than N days (opt-in).
    reminders_enabled: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    reminder_after_days: int = Field(default=7, sa_column_kwargs={"server_default": "7"})


class Director(SQLModel, table=True):
    """A Telegram user who directs a school (one row per user and school)."""

    __table_args__ = (UniqueConstraint("telegram_user_id", "school_id"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, index=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    display_name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Invitation(SQLModel, table=True):
    """A single-use, expiring invitation to become the director of a school.

    Only a hash of the code is stored: the clear code exists in the operator's terminal only.
    """

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    code_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_telegram_id: int | None = Field(default=None, sa_type=BigInteger)
    # Revoked by the operator before it was used: it no longer works.
    revoked_at: datetime | None = None


class SchoolClass(SQLModel, table=True):
    """A class of a school as ONDE labels it (« CE2-CM1 », « PS-MS Mme Roux »)."""

    __tablename__ = "school_class"
    __table_args__ = (UniqueConstraint("school_id", "label_key"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    label: str
    # Case-, accent- and space-insensitive form of the label, used to match class arguments.
    label_key: str
    onde_id: str | None = None
    # Levels taught in the class, in school order, comma-separated (« CE2,CM1 »).
    levels: str = ""
    archived_at: datetime | None = None


class Pupil(SQLModel, table=True):
    """A pupil enrolled in a school (archived, not deleted, when they leave)."""

    __table_args__ = (Index("ix_pupil_school_ine", "school_id", "ine"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    class_id: int | None = Field(default=None, foreign_key="school_class.id", index=True)
    ine: str | None = None
    last_name: str
    usage_name: str | None = None
    first_name: str
    birth_date: date | None = None
    sex: str | None = None
    level: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    archived_at: datetime | None = None


class Guardian(SQLModel, table=True):
    """A legal guardian (« responsable ») as ONDE lists them: one row, one person."""

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    civility: str | None = None
    last_name: str
    usage_name: str | None = None
    first_name: str
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = None
    email: str | None = None
    phone_home: str | None = None
    phone_work: str | None = None
    phone_mobile: str | None = None
    # `phone_mobile` in E.164 (« +33612345678 »), what a family's shared Telegram contact is
    # matched against; None when ONDE gives no valid number.
    mobile_e164: str | None = Field(default=None, sa_column=Column(String(16), index=True))
    # BCP 47 code of the language the family prefers, when known (« en », « ar »…).
    preferred_language: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PupilGuardian(SQLModel, table=True):
    """Links a guardian to one of their children in the school."""

    __tablename__ = "pupil_guardian"

    pupil_id: int = Field(foreign_key="pupil.id", primary_key=True)
    guardian_id: int = Field(foreign_key="guardian.id", primary_key=True, index=True)


class Account(SQLModel, table=True):
    """The EduConnect account of one guardian, covering all of their children in the school.

    The provisional password is never stored in clear: only its argon2id hash.
    """

    id: int | None = Field(default=None, primary_key=True)
    guardian_id: int = Field(foreign_key="guardian.id", sa_column_kwargs={"unique": True})
    identifier: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    password_hash: str | None = None
    state: AccountState = Field(
        default=AccountState.NOT_NOTIFIED,
        sa_column=_enum_column(AccountState, nullable=False, index=True),
    )
    provisional_expires_at: datetime | None = None
    distributed_at: datetime | None = None
    distribution_channel: DistributionChannel | None = Field(
        default=None, sa_column=_enum_column(DistributionChannel, nullable=True)
    )
    activated_at: datetime | None = None
    last_access_at: datetime | None = None
    # Set when the guardian is no longer linked to any pupil; the state is kept for history.
    deactivated_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Bumped at logout, password change and reset: a portal session made before is refused.
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set after too many wrong birth dates at activation: the account waits for the school.
    activation_locked_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One state-changing action: who, what, when, on which accounts. Never a secret."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str
    action: str = Field(index=True)
    school_id: int | None = Field(default=None, foreign_key="school.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class BotState(SQLModel, table=True):
    """What python-telegram-bot persists (user/chat data, conversations), as JSON documents.

    `kind` is « user », « chat », « bot », « callback » or « conversation:<name> ».
    """

    __tablename__ = "bot_state"

    kind: str = Field(sa_column=Column(String(80), primary_key=True))
    key: str = Field(sa_column=Column(String(80), primary_key=True))
    data: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class OutboxStatus(enum.StrEnum):
    """Where an e-mail is in its life: written with the account change, then sent once."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OutboxMessage(SQLModel, table=True):
    """One e-mail to send, written in the same transaction as the change it announces.

    The body may carry a provisional password: it is erased once the message is sent, fails
    for good or is cancelled, so a password lives in clear only while its e-mail is in flight.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int | None = Field(default=None, foreign_key="school.id", index=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    # Groups the messages of one /envoyer, for its progress and summary.
    batch_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    # What the message is: « credentials_first », « credentials_reminder », « credentials_reset »,
    # « activation_confirmation »… — decides what happens to the account once it is accepted.
    kind: str = Field(sa_column=Column(String(40), nullable=False))
    to_address: str
    message_id: str = Field(sa_column=Column(String(255), unique=True, nullable=False))
    body: bytes | None = None
    status: OutboxStatus = Field(
        default=OutboxStatus.PENDING,
        sa_column=_enum_column(OutboxStatus, nullable=False),
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    claimed_by: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class FamilyLinkCode(SQLModel, table=True):
    """The single-use code behind a letter's bot QR code: links a family's chat to a guardian.

    Only its hash is stored; it expires with the provisional password it was printed beside.
    """

    __tablename__ = "family_link_code"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    code_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_telegram_id: int | None = Field(default=None, sa_type=BigInteger)


class FamilyChat(SQLModel, table=True):
    """A Telegram user linked to a guardian through a letter's code."""

    __tablename__ = "family_chat"
    __table_args__ = (UniqueConstraint("telegram_user_id", "guardian_id"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, index=True)
    guardian_id: int = Field(foreign_key="guardian.id", index=True)
    linked_at: datetime = Field(default_factory=utcnow)


class PhoneCheck(SQLModel, table=True):
    """One contact a family shared with the bot to link its chat by phone number: counted for
    the daily limit, and, when several guardians share the number, the choice offered.

    `outcome` is « linked », « choose », « unknown » (no guardian has the number) or « refused »
    (not the sender's own contact, or not a valid number).
    """

    __tablename__ = "phone_check"
    __table_args__ = (Index("ix_phone_check_user_created", "telegram_user_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger)
    # The number shared, in E.164; None when it was refused before being read.
    phone_e164: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    outcome: str = Field(sa_column=Column(String(20), nullable=False))
    # For « choose »: the guardians offered, and the one the family then picked.
    offered_guardian_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    chosen_guardian_id: int | None = Field(default=None, foreign_key="guardian.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class ScheduledDeletion(SQLModel, table=True):
    """A bot message to delete later (a PDF carrying passwords), kept across restarts."""

    __tablename__ = "scheduled_deletion"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    message_id: int = Field(sa_type=BigInteger)
    delete_at: datetime = Field(index=True)
    done_at: datetime | None = None


class AppSetting(SQLModel, table=True):
    """A small fact the processes share, e.g. the bot's username learnt from Telegram."""

    __tablename__ = "app_setting"

    key: str = Field(sa_column=Column(String(80), primary_key=True))
    value: str
    updated_at: datetime = Field(default_factory=utcnow)


class PortalTokenPurpose(enum.StrEnum):
    """What a link the portal e-mails is for."""

    # Activation: confirms the address given at activation and makes the account `activated`.
    ACTIVATION = "activation"
    # « Mon compte »: confirms a new address before it replaces the one on file.
    EMAIL_CHANGE = "email_change"
    # « Mot de passe oublié »: lets an activated family choose a new password (30 minutes).
    PASSWORD_RESET = "password_reset"
    # A link the bot gives a family whose shared mobile number matched: activation without the
    # provisional password (30 minutes).
    PHONE_ACTIVATION = "phone_activation"


class PortalToken(SQLModel, table=True):
    """A single-use, expiring link the portal e-mailed; only the SHA-256 of its secret is kept.

    Issuing a new link of the same purpose for the same account revokes the older ones.
    """

    __tablename__ = "portal_token"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    purpose: PortalTokenPurpose = Field(sa_column=_enum_column(PortalTokenPurpose, nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    # The address the link was sent to, which following it confirms.
    email: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


class PortalThrottle(SQLModel, table=True):
    """Failures (or requests) counted per rule and key in a time window, and the lockout they
    lead to, shared by every process. The key is a hash: no identifier or address in clear."""

    __tablename__ = "portal_throttle"

    key: str = Field(sa_column=Column(String(100), primary_key=True))
    count: int = 0
    window_started_at: datetime
    locked_until: datetime | None = Field(default=None, index=True)


class HelpTopic(enum.StrEnum):
    """What a family asks the school for help with."""

    IDENTIFIER = "identifier"  # lost identifier (or letter), not linked: who are they?
    PASSWORD = "password"  # a new provisional password, with no e-mail address on file
    WRONG_EMAIL = "wrong_email"  # the confirmation e-mail went to a wrong address
    BIRTH_DATE = "birth_date"  # the portal refuses the child's birth date
    UNKNOWN_PHONE = "unknown_phone"  # the shared mobile number matched nobody
    QUESTION = "question"  # anything else, in free text (a child missing from the account…)


class HelpStatus(enum.StrEnum):
    """Where a help request is: open → in progress → answered → closed."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"


class HelpRequest(SQLModel, table=True):
    """A family's request to the school (« D-2026-0042 »), and what was done about it.

    The family's own words (`message`, the names it declared) are kept as typed and escaped
    wherever they are shown. `guardian_id` is the record it was matched to, when one was.
    """

    __tablename__ = "help_request"
    __table_args__ = (
        UniqueConstraint("school_id", "school_year", "number"),
        Index("ix_help_request_user_created", "telegram_user_id", "created_at"),
        Index("ix_help_request_school_status", "school_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id")
    # The school year it was filed in (2026 for 2026-2027) and its number in that year.
    school_year: int
    number: int
    reference: str = Field(sa_column=Column(String(20), nullable=False))
    telegram_user_id: int = Field(sa_type=BigInteger)
    # The family's language when it asked: the answers it gets are written in it.
    language: str = Field(default="fr", sa_column=Column(String(10), nullable=False))
    topic: HelpTopic = Field(sa_column=_enum_column(HelpTopic, nullable=False))
    status: HelpStatus = Field(
        default=HelpStatus.OPEN, sa_column=_enum_column(HelpStatus, nullable=False)
    )
    guardian_id: int | None = Field(default=None, foreign_key="guardian.id", index=True)
    # How the record was found: « linked » (the chat's account), « phone », « names », « director ».
    matched_by: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    # Records that might be the family's when the names were not enough to tell.
    candidate_guardian_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    declared_guardian: str | None = None
    declared_child: str | None = None
    declared_class: str | None = None
    message: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class HelpRequestEvent(SQLModel, table=True):
    """One thing that happened to a help request: filed, taken, answered by a director's
    button (`action` names it), a message either way, closed. Who did it, and when."""

    __tablename__ = "help_request_event"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="help_request.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    # « family:<telegram id> » or « telegram:<telegram id> » (a director), as the audit log.
    actor: str
    action: str = Field(sa_column=Column(String(40), nullable=False))
    text: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DigestKind(enum.StrEnum):
    """Why a digest goes out: the weekly one, a daily one in the last 7 days before the LSU
    date, the final check the day before, or one the director asked for now."""

    WEEKLY = "weekly"
    DAILY = "daily"
    FINAL = "final"
    MANUAL = "manual"


class DigestRun(SQLModel, table=True):
    """One digest of a school, due at a moment: claimed once (the unique key), so a digest is
    never sent twice, even by a process that comes back after being down when it was due."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("school_id", "kind", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    kind: DigestKind = Field(sa_column=_enum_column(DigestKind, nullable=False))
    due_at: datetime
    claimed_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # Sent after its time (the process was down when it was due).
    late: bool = False
    # The accounts per state when it was sent, for « +14 activés depuis lundi ».
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FamilyReminder(SQLModel, table=True):
    """An automatic reminder a guardian got (at most one a week), and how it reached them."""

    __tablename__ = "family_reminder"

    id: int | None = Field(default=None, primary_key=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    sent_at: datetime = Field(default_factory=utcnow, index=True)
    # « email » (through the outbox), « paper » is never automatic; « chat » when the linked
    # chat got a message too.
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class InspectorInvitation(SQLModel, table=True):
    """A single-use, expiring invitation for the inspector (IEN) of a list of schools; only the
    SHA-256 of its code is kept, as for directors' invitations."""

    __tablename__ = "inspector_invitation"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    # The schools the inspector will see (ids; a school deleted meanwhile is skipped).
    school_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_telegram_id: int | None = Field(default=None, sa_type=BigInteger)


class InspectorSchool(SQLModel, table=True):
    """A school an inspector sees, read-only: the Telegram user and the school."""

    __tablename__ = "inspector_school"
    __table_args__ = (UniqueConstraint("telegram_user_id", "school_id"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, index=True)
    school_id: int = Field(foreign_key="school.id", index=True)
    display_name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DistrictDigestRun(SQLModel, table=True):
    """One weekly district digest of an inspector, due at a moment: claimed once (the unique
    key), like a school's `DigestRun`."""

    __tablename__ = "district_digest_run"
    __table_args__ = (UniqueConstraint("telegram_user_id", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=BigInteger, index=True)
    due_at: datetime
    claimed_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    late: bool = False
    # Activated accounts per school when it was sent, for « +14 activated since last week ».
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class BlockedChat(SQLModel, table=True):
    """A chat that refused the bot's messages (403: the user blocked the bot, or the chat is
    gone): broadcasts skip it until the user writes to the bot again."""

    __tablename__ = "blocked_chat"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    blocked_at: datetime = Field(default_factory=utcnow)
    # Telegram's words (« Forbidden: bot was blocked by the user »), for the operator.
    reason: str | None = None
