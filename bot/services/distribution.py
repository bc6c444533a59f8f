"""Distributing credentials to a scope of guardians: who will get what (the preview the director
confirms), then new credentials, family-link codes, the letters, and either the e-mails written
to the outbox or the printable PDF marked as delivered on paper.

Confirming is two steps: a draft made in memory while only reading the database (hashing,
composing, rendering: the slow part), then one short write transaction that checks again that
no account changed and records it all. /envoyer runs both in one transaction; /pdf and
/relancer hand the PDF over in between, so no write lock is held while it renders and uploads.

Used by /envoyer, /pdf, /relancer and the CLI (`send`, `letters`). Nothing here speaks
Telegram or SMTP: e-mails become outbox rows, sent later by the outbox's sender, and an account
becomes `notified` only when its e-mail is accepted; a printed letter counts as delivered when
it is produced, so the paper flow marks the accounts itself.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import anyascii
from sqlalchemy import ColumnElement, false, func, or_, select
from sqlmodel import Session, col

from bot.config import get_settings
from bot.i18n import N_, _, use_language
from bot.services.accounts import (
    CredentialDraft,
    CredentialKind,
    DistributionPlanItem,
    IssuedCredential,
    TransitionRefused,
    draft_credentials,
    mark_distributed,
    plan_distribution,
    provisional_expiry,
    record_credentials,
)
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from bot.services.family import draw_link_codes, record_link_codes
from bot.services.letter_content import ChildLine, Letter, activation_url, bot_link_url
from bot.services.mail import compose_credentials_email
from bot.services.onde.normalise import normalise_email
from bot.services.outbox import (
    CREDENTIAL_KIND_VALUES,
    OutgoingEmail,
    credentials_kind,
    enqueue_many,
)
from bot.services.roster import (
    ResolvedScope,
    Scope,
    ScopeKind,
    UnknownClassError,
    resolve_scope,
    scope_from_token,
)
from models import (
    Account,
    AccountState,
    DistributionChannel,
    Guardian,
    OutboxMessage,
    OutboxStatus,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)

# Ids per `IN (...)`: far below SQLite's and PostgreSQL's bound-parameter caps.
_ID_CHUNK = 1000
# A `Scope.token` as buttons carry it (« e », « c12 », « lCM1 »).
_SCOPE_TOKEN = re.compile(r"^(?:e|c[0-9]+|l[A-Z0-9]+)$")
_ACTIVE_OUTBOX = (OutboxStatus.PENDING, OutboxStatus.SENDING)


class Purpose(enum.StrEnum):
    """What the director asked for."""

    EMAIL = "email"  # /envoyer: credentials by e-mail to those with an address
    PAPER = "paper"  # /pdf: printable letters (those without an address, or everyone)
    REMINDER = "reminder"  # /relancer: the notified, not activated; e-mail or paper


class SkipReason(enum.StrEnum):
    """Why a guardian of the scope gets nothing this time."""

    NO_ADDRESS = "no_address"  # no e-mail address in ONDE: a paper letter instead
    # An address is on file but is not a valid one (ONDE's are checked at import, and a bad
    # one is dropped there with a warning: then the guardian simply has no address).
    INVALID_ADDRESS = "invalid_address"
    HAS_ADDRESS = "has_address"  # /pdf without « tous »: they get an e-mail instead
    ALREADY_ACTIVATED = "already_activated"
    NOT_YET_NOTIFIED = "not_yet_notified"  # /relancer: nothing to remind of yet
    ARCHIVED = "archived"  # no enrolled child any more (pupil left): account deactivated
    DEACTIVATED = "deactivated"  # account deactivated although a child is still enrolled


# What each letter kind and skip reason is called, in lists and summaries (chat and CLI).
KIND_LABELS: dict[CredentialKind, str] = {
    CredentialKind.FIRST: N_("First distribution"),
    CredentialKind.REMINDER: N_("Reminder (password unchanged)"),
    CredentialKind.RESET: N_("New provisional password"),
}
SKIP_LABELS: dict[SkipReason, str] = {
    SkipReason.NO_ADDRESS: N_("No e-mail address"),
    SkipReason.INVALID_ADDRESS: N_("Invalid e-mail address"),
    SkipReason.HAS_ADDRESS: N_("Has an e-mail address"),
    SkipReason.ALREADY_ACTIVATED: N_("Already activated"),
    SkipReason.NOT_YET_NOTIFIED: N_("Never notified yet"),
    SkipReason.ARCHIVED: N_("Child left the school"),
    SkipReason.DEACTIVATED: N_("Account deactivated"),
}


class DistributionError(ServiceError):
    """A distribution that cannot start (the message says why and what to do)."""


class NoScopeError(DistributionError):
    """No class, level or `ecole` was named."""


class StalePlanError(DistributionError):
    """Accounts changed since the preview was shown: nothing was done; plan again."""


class NothingToDistributeError(DistributionError):
    """The confirmed plan has nobody left to send to."""


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One guardian of the scope: what they will get (`kind` by `channel`), or why not."""

    account_id: int
    guardian_id: int
    identifier: str
    first_name: str
    last_name: str
    email: str | None
    state: AccountState
    channel: DistributionChannel | None
    kind: CredentialKind | None
    skip: SkipReason | None = None
    # The outstanding provisional password has expired: a reminder becomes a reset.
    provisional_expired: bool = False

    @property
    def name(self) -> str:
        """« Prénom NOM », as lists show a guardian."""
        return f"{self.first_name} {self.last_name.upper()}".strip()


@dataclass(frozen=True)
class DistributionPreview:
    """Who will get what, before anything is done (« who will get what, who is skipped and why »).

    `reset` is None when the choice between reminder and reset is made at confirmation
    (/relancer): the kinds shown are then those of a reminder. Entries are in name order.
    """

    school_id: int
    purpose: Purpose
    reset: bool | None
    include_all: bool
    scopes: tuple[ResolvedScope, ...]
    pupils: int
    entries: tuple[PlanEntry, ...]
    planned_at: datetime
    # Accounts to send to whose previous credential e-mail is still waiting in the outbox
    # (sending again replaces it: the older message is cancelled, never both sent).
    already_queued: int = 0

    @property
    def planned(self) -> list[PlanEntry]:
        """The guardians who will get a letter or an e-mail."""
        return [entry for entry in self.entries if entry.kind is not None]

    @property
    def skipped(self) -> list[PlanEntry]:
        """The guardians who get nothing, each with a reason."""
        return [entry for entry in self.entries if entry.kind is None]

    @property
    def account_ids(self) -> list[int]:
        return [entry.account_id for entry in self.planned]

    @property
    def guardians(self) -> int:
        """Guardians of the scope with an active account and an enrolled child."""
        return sum(
            1
            for entry in self.entries
            if entry.skip not in (SkipReason.ARCHIVED, SkipReason.DEACTIVATED)
        )

    @property
    def is_empty(self) -> bool:
        return not any(entry.kind is not None for entry in self.entries)

    def counts(self, channel: DistributionChannel | None = None) -> dict[CredentialKind, int]:
        """How many of each kind (first, reminder, reset), on one channel or on all."""
        found = Counter(
            entry.kind
            for entry in self.planned
            if entry.kind is not None and (channel is None or entry.channel == channel)
        )
        return {kind: found[kind] for kind in CredentialKind if found[kind]}

    def channel_count(self, channel: DistributionChannel) -> int:
        return sum(1 for entry in self.planned if entry.channel == channel)

    def skip_counts(self) -> dict[SkipReason, int]:
        found = Counter(entry.skip for entry in self.skipped if entry.skip is not None)
        return {reason: found[reason] for reason in SkipReason if found[reason]}

    def entries_for(self, reason: SkipReason) -> list[PlanEntry]:
        return [entry for entry in self.entries if entry.skip == reason]

    def confirmation(self) -> dict[str, Any]:
        """What the confirmation step needs, JSON-serialisable (for a chat's user_data): give
        it back to `start_…` as `preview_or_account_ids`; accounts changed since are refused."""
        return {
            "purpose": self.purpose.value,
            "include_all": self.include_all,
            "accounts": {str(entry.account_id): entry.state.value for entry in self.planned},
        }


@dataclass(frozen=True, slots=True)
class LetterFile:
    """One letter of a combined PDF, in page order, as an individual document would be named."""

    account_id: int
    identifier: str
    addressee: str
    kind: CredentialKind
    filename: str  # « lettre-celine.dupont114.pdf », as `letters.split_letters` names it


@dataclass(frozen=True)
class PaperLetters:
    """Printable letters: the accounts count as delivered on paper once they are recorded
    (`prepare_paper_letters` records at once; a `DistributionDraft`'s wait for
    `record_paper_letters`).

    `pdf` is the combined PDF, one page per letter in `letters` order, not encrypted (it
    carries passwords: the chat encrypts it, the CLI writes it for its operator only).
    `letters` hold the clear passwords in memory, for `individual_documents`. Empty when
    nobody was left to print for.
    """

    pdf: bytes
    letters: tuple[Letter, ...]
    # The preview it was printed from (None when confirmed from a `confirmation()` or ids).
    preview: DistributionPreview | None = None

    @property
    def count(self) -> int:
        return len(self.letters)

    @property
    def files(self) -> list[LetterFile]:
        """What each letter is, in page order (no password)."""
        from bot.services.letters import letter_filename

        return [
            LetterFile(
                account_id=letter.account_id,
                identifier=letter.identifier,
                addressee=letter.addressee,
                kind=letter.kind,
                filename=letter_filename(letter),
            )
            for letter in self.letters
        ]

    def counts(self) -> dict[CredentialKind, int]:
        return _kind_counts(self.letters)

    def individual_documents(self, *, password: str | None = None) -> list[tuple[str, bytes]]:
        """One PDF per letter, (file name, content), encrypted with `password` if given.
        CPU-bound: call it off the event loop."""
        from bot.services.letters import split_letters

        if not self.letters:
            return []
        return split_letters(self.pdf, self.letters, password=password)


@dataclass(frozen=True)
class ReminderResult:
    """What /relancer started: the e-mails' batch (None if no e-mail) and the paper letters
    for those without an address (None if none)."""

    batch_id: str | None
    emails: int
    email_counts: dict[CredentialKind, int] = field(default_factory=dict)
    paper: PaperLetters | None = None


@dataclass(frozen=True, repr=False)
class DistributionDraft:
    """A confirmed distribution made in memory — credentials drawn and hashed, family-link
    codes drawn, letters built, the PDF rendered, the e-mails composed — with nothing written
    and nothing locked (`draft_paper_letters`, `draft_reminders`). `record_paper_letters` or
    `record_reminders` writes it all in one short transaction, unless an account changed in
    between. It carries clear passwords: keep it in memory, briefly, and never log it.
    """

    school_id: int
    purpose: Purpose
    reset: bool
    actor: str
    now: datetime
    credentials: CredentialDraft | None  # None: nobody to send or print for
    link_codes: dict[int, str]  # account id → its new family-link code, in clear
    link_expiries: dict[int, datetime]
    letters: tuple[Letter, ...]  # every letter, e-mailed or printed
    emails: tuple[OutgoingEmail, ...]  # the composed e-mails, in `letters` order
    email_letters: tuple[Letter, ...]  # the letters those e-mails carry
    batch_id: str | None  # the e-mails' batch, for `outbox.batch_progress`
    # The printed letters (None when none; empty letters when nobody was left to print for).
    paper: PaperLetters | None

    def __repr__(self) -> str:
        return (
            f"DistributionDraft(school_id={self.school_id}, purpose={self.purpose.value}, "
            f"letters={len(self.letters)}, emails={len(self.emails)})"
        )

    __str__ = __repr__

    @property
    def is_empty(self) -> bool:
        return self.credentials is None


# --- Scopes ---------------------------------------------------------------------------------

ScopeArgument = str | Scope | ResolvedScope


def resolve_scopes(
    *, session: Session, school_id: int, scope_tokens: Sequence[ScopeArgument]
) -> tuple[ResolvedScope, ...]:
    """The scopes named: class arguments as typed (« CM1 », « ce2 cm1 », « ecole »), `Scope`
    tokens from buttons (« c12 », « lCM1 », « e »), or scopes already resolved. The whole
    school absorbs the rest. Raises `UnknownClassError` (from `resolve_scope`) or `NoScopeError`.
    """
    resolved: dict[str, ResolvedScope] = {}
    for argument in scope_tokens:
        if isinstance(argument, ResolvedScope):
            item = argument
        elif isinstance(argument, Scope):
            item = scope_from_token(session=session, school_id=school_id, token=argument.token)
        else:
            text = " ".join(argument.split())
            if not text:
                continue
            try:
                item = resolve_scope(session=session, school_id=school_id, text=text)
            except UnknownClassError:
                if not _SCOPE_TOKEN.fullmatch(text):
                    raise
                item = scope_from_token(session=session, school_id=school_id, token=text)
        resolved.setdefault(item.scope.token, item)
    if not resolved:
        raise NoScopeError(_("Name a class, a level, or « ecole » for the whole school."))
    school = [item for item in resolved.values() if item.scope.kind is ScopeKind.SCHOOL]
    return tuple(school) if school else tuple(resolved.values())


def _pupil_filter(scopes: Sequence[ResolvedScope]) -> ColumnElement[bool] | None:
    """Which pupils the scopes cover (None: the whole school)."""
    if any(item.scope.kind is ScopeKind.SCHOOL for item in scopes):
        return None
    class_ids = [item.scope.class_id for item in scopes if item.scope.kind is ScopeKind.CLASS]
    levels = [item.scope.level for item in scopes if item.scope.kind is ScopeKind.LEVEL]
    conditions: list[ColumnElement[bool]] = []
    if class_ids:
        conditions.append(col(Pupil.class_id).in_(class_ids))
    if levels:
        conditions.append(col(Pupil.level).in_(levels))
    return or_(*conditions) if conditions else false()


def _enrolled_conditions(school_id: int) -> list[ColumnElement[bool]]:
    # Needs `SchoolClass` outer-joined on the pupil's class, as `models.queries` does.
    return [
        col(Pupil.school_id) == school_id,
        col(Pupil.archived_at).is_(None),
        col(SchoolClass.archived_at).is_(None),
    ]


def _scope_pupil_count(session: Session, school_id: int, scopes: Sequence[ResolvedScope]) -> int:
    if len(scopes) == 1:
        return scopes[0].pupils
    where = _pupil_filter(scopes)
    statement = (
        select(func.count(func.distinct(col(Pupil.id))))
        .select_from(Pupil)
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*_enrolled_conditions(school_id))
    )
    if where is not None:
        statement = statement.where(where)
    return int(session.execute(statement).scalar_one())


# --- Planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    account_id: int
    guardian_id: int
    identifier: str
    first_name: str
    last_name: str
    email: str | None
    state: AccountState
    deactivated: bool
    enrolled: bool


def _candidate_columns() -> tuple[Any, ...]:
    return (
        col(Account.id),
        col(Guardian.id),
        col(Account.identifier),
        col(Guardian.first_name),
        func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name)),
        col(Guardian.email),
        col(Account.state),
        col(Account.deactivated_at),
    )


def _enrolled_guardians(
    session: Session, school_id: int, guardian_ids: Sequence[int] | None, where: Any
) -> set[int]:
    """Which guardians have an enrolled child (in the scope, when `where` is given)."""
    statement = (
        select(col(PupilGuardian.guardian_id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(*_enrolled_conditions(school_id))
        .distinct()
    )
    if where is not None:
        statement = statement.where(where)
    enrolled = set(session.execute(statement).scalars())
    # The school's pupils are read anyway: filtering in SQL with `guardian_id IN (…)` made
    # SQLite probe the whole list once per pupil (0.2 s for a thousand guardians).
    return enrolled if guardian_ids is None else enrolled.intersection(guardian_ids)


def _candidate(values: Sequence[Any], enrolled: set[int]) -> _Candidate:
    account_id, guardian_id, identifier, first, last, email, state, deactivated_at = values
    return _Candidate(
        account_id=account_id,
        guardian_id=guardian_id,
        identifier=identifier,
        first_name=first,
        last_name=last,
        email=email or None,
        state=AccountState(state),
        deactivated=deactivated_at is not None,
        enrolled=guardian_id in enrolled,
    )


def _scope_candidates(
    session: Session, school_id: int, scopes: Sequence[ResolvedScope]
) -> list[_Candidate]:
    """Every guardian of the scope with their account: those with an enrolled child in it, and
    those whose child in it has left (archived), so the preview can say why they are skipped."""
    where = _pupil_filter(scopes)
    statement = (
        select(*_candidate_columns())
        .select_from(Guardian)
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Guardian.school_id) == school_id)
    )
    if where is not None:
        # Any child in the scope, enrolled or not (a pupil who left is archived, not deleted).
        linked = (
            select(col(PupilGuardian.guardian_id))
            .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
            .where(col(Pupil.school_id) == school_id, where)
        )
        statement = statement.where(col(Guardian.id).in_(linked))
    rows = list(session.execute(statement))
    enrolled = _enrolled_guardians(session, school_id, None, where)
    return [_candidate(values, enrolled) for values in rows]


def _account_candidates(
    session: Session, school_id: int, account_ids: Sequence[int]
) -> dict[int, _Candidate]:
    """These accounts of the school with what planning needs (others are ignored)."""
    ids = sorted(set(account_ids))
    rows: list[Sequence[Any]] = []
    for start in range(0, len(ids), _ID_CHUNK):
        # The school is checked here rather than in SQL: with both conditions SQLite walked
        # the school's guardians and probed the whole id list for each (0.15 s a thousand).
        found = session.execute(
            select(*_candidate_columns(), col(Guardian.school_id))
            .select_from(Account)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Account.id).in_(ids[start : start + _ID_CHUNK]))
        )
        rows.extend(tuple(values[:-1]) for values in found if values[-1] == school_id)
    enrolled = _enrolled_guardians(session, school_id, [values[1] for values in rows], None)
    candidates = (_candidate(values, enrolled) for values in rows)
    return {candidate.account_id: candidate for candidate in candidates}


def _usable_email(candidate: _Candidate) -> str | None:
    return normalise_email(candidate.email) if candidate.email else None


def _classify(
    candidate: _Candidate, purpose: Purpose, include_all: bool, explicit: bool
) -> tuple[DistributionChannel | None, SkipReason | None]:
    """The channel a guardian would be reached by, or why they are skipped (before the accounts
    service decides the letter's kind)."""
    if not candidate.enrolled:
        return None, SkipReason.ARCHIVED
    if candidate.deactivated:
        return None, SkipReason.DEACTIVATED
    # In bulk, an activated family is left alone: resetting would lock them out of the
    # password they chose. Only a single account picked by hand (help desk) may be reset.
    if candidate.state == AccountState.ACTIVATED and not explicit:
        return None, SkipReason.ALREADY_ACTIVATED
    if purpose is Purpose.REMINDER and candidate.state == AccountState.NOT_NOTIFIED:
        return None, SkipReason.NOT_YET_NOTIFIED
    usable = _usable_email(candidate)
    if purpose is Purpose.EMAIL:
        if candidate.email is None:
            return None, SkipReason.NO_ADDRESS
        if usable is None:
            return None, SkipReason.INVALID_ADDRESS
        return DistributionChannel.EMAIL, None
    if purpose is Purpose.PAPER:
        if usable is not None and not include_all:
            return None, SkipReason.HAS_ADDRESS
        return DistributionChannel.PAPER, None
    return (DistributionChannel.EMAIL if usable else DistributionChannel.PAPER), None


def _entries(
    session: Session,
    candidates: Iterable[_Candidate],
    *,
    purpose: Purpose,
    include_all: bool,
    explicit: bool,
    reset: bool,
    now: datetime,
) -> tuple[list[PlanEntry], dict[int, DistributionPlanItem]]:
    """Plan entries in name order, and the accounts service's plan for those not skipped."""
    classified = [
        (candidate, *_classify(candidate, purpose, include_all, explicit))
        for candidate in candidates
    ]
    wanted = [candidate.account_id for candidate, _channel, skip in classified if skip is None]
    items = {
        item.account_id: item
        for item in plan_distribution(session=session, account_ids=wanted, reset=reset, now=now)
    }
    entries: list[PlanEntry] = []
    for candidate, channel, skip in classified:
        item = items.get(candidate.account_id)
        kind = item.kind if item is not None else None
        if item is not None and kind is None:
            skip = (
                SkipReason.ALREADY_ACTIVATED
                if item.state == AccountState.ACTIVATED
                else SkipReason.DEACTIVATED
            )
        entries.append(
            PlanEntry(
                account_id=candidate.account_id,
                guardian_id=candidate.guardian_id,
                identifier=candidate.identifier,
                first_name=candidate.first_name,
                last_name=candidate.last_name,
                email=_usable_email(candidate) or candidate.email,
                state=candidate.state,
                channel=channel if kind is not None else None,
                kind=kind,
                skip=skip,
                provisional_expired=item.provisional_expired if item is not None else False,
            )
        )
    entries.sort(key=_name_key)
    return entries, {id_: item for id_, item in items.items() if item.kind is not None}


def _name_key(entry: PlanEntry) -> tuple[str, str, int]:
    return (
        anyascii.anyascii(entry.last_name).casefold(),
        anyascii.anyascii(entry.first_name).casefold(),
        entry.account_id,
    )


def _already_queued(session: Session, account_ids: Sequence[int]) -> int:
    found = 0
    for start in range(0, len(account_ids), _ID_CHUNK):
        found += int(
            session.execute(
                select(func.count(func.distinct(col(OutboxMessage.account_id)))).where(
                    col(OutboxMessage.account_id).in_(account_ids[start : start + _ID_CHUNK]),
                    col(OutboxMessage.status).in_(_ACTIVE_OUTBOX),
                    col(OutboxMessage.kind).in_(sorted(CREDENTIAL_KIND_VALUES)),
                )
            ).scalar_one()
        )
    return found


def _preview(
    session: Session,
    *,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument],
    purpose: Purpose,
    reset: bool | None,
    include_all: bool,
    now: datetime | None,
) -> DistributionPreview:
    moment = now or utcnow()
    scopes = resolve_scopes(session=session, school_id=school_id, scope_tokens=scope_tokens)
    candidates = _scope_candidates(session, school_id, scopes)
    entries, _items = _entries(
        session,
        candidates,
        purpose=purpose,
        include_all=include_all,
        explicit=False,
        reset=bool(reset),
        now=moment,
    )
    emailed = [e.account_id for e in entries if e.channel == DistributionChannel.EMAIL]
    return DistributionPreview(
        school_id=school_id,
        purpose=purpose,
        reset=reset,
        include_all=include_all,
        scopes=scopes,
        pupils=_scope_pupil_count(session, school_id, scopes),
        entries=tuple(entries),
        planned_at=moment,
        already_queued=_already_queued(session, emailed) if emailed else 0,
    )


def plan_email_distribution(
    *,
    session: Session,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument],
    reset: bool | None = False,
    now: datetime | None = None,
) -> DistributionPreview:
    """/envoyer: who of the scope gets an e-mail (first distribution, reminder or reset), who
    is skipped and why (no or invalid address, already activated, archived, deactivated).
    Changes nothing."""
    return _preview(
        session,
        school_id=school_id,
        scope_tokens=scope_tokens,
        purpose=Purpose.EMAIL,
        reset=reset,
        include_all=False,
        now=now,
    )


def plan_paper_letters(
    *,
    session: Session,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument],
    include_all: bool = False,
    reset: bool | None = False,
    now: datetime | None = None,
) -> DistributionPreview:
    """/pdf: who of the scope gets a printed letter — those without a usable e-mail address,
    or everyone with `include_all` (« tous ») — and who is skipped and why. Changes nothing."""
    return _preview(
        session,
        school_id=school_id,
        scope_tokens=scope_tokens,
        purpose=Purpose.PAPER,
        reset=reset,
        include_all=include_all,
        now=now,
    )


def plan_reminders(
    *,
    session: Session,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument] = ("ecole",),
    now: datetime | None = None,
) -> DistributionPreview:
    """/relancer: every guardian of the scope notified but not activated yet, by e-mail when
    they have an address, else on paper. Kinds are those of a reminder (a reset where the
    provisional password has expired); reminder or reset is chosen at confirmation. Those never
    notified are skipped (/envoyer or /pdf first). Changes nothing."""
    return _preview(
        session,
        school_id=school_id,
        scope_tokens=scope_tokens or ("ecole",),
        purpose=Purpose.REMINDER,
        reset=None,
        include_all=True,
        now=now,
    )


# --- Confirming -----------------------------------------------------------------------------

Confirmation = DistributionPreview | Mapping[str, Any] | Sequence[int]


@dataclass(frozen=True)
class _Confirmed:
    account_ids: list[int]
    expected: dict[int, AccountState] | None  # None: ids picked by hand, no preview
    include_all: bool


def _confirmed(confirmation: Confirmation, purpose: Purpose) -> _Confirmed:
    if isinstance(confirmation, DistributionPreview):
        return _Confirmed(
            account_ids=confirmation.account_ids,
            expected={entry.account_id: entry.state for entry in confirmation.planned},
            include_all=confirmation.include_all,
        )
    if isinstance(confirmation, Mapping):
        accounts = confirmation.get("accounts") or {}
        expected = {int(key): AccountState(value) for key, value in accounts.items()}
        if confirmation.get("purpose", purpose.value) != purpose.value:
            raise ValueError("this confirmation belongs to another kind of distribution")
        return _Confirmed(
            account_ids=list(expected),
            expected=expected,
            include_all=bool(confirmation.get("include_all", False)),
        )
    ids = [int(account_id) for account_id in confirmation]
    return _Confirmed(account_ids=list(dict.fromkeys(ids)), expected=None, include_all=True)


def _stale() -> StalePlanError:
    return StalePlanError(
        _(
            "Some accounts changed since the preview (another send, an activation or a new "
            "import), so nothing was done. Ask again to see the up-to-date preview."
        )
    )


@dataclass(frozen=True)
class _Replanned:
    entries: list[PlanEntry]
    items: dict[int, DistributionPlanItem]


def _replan(
    session: Session,
    school_id: int,
    confirmed: _Confirmed,
    *,
    purpose: Purpose,
    reset: bool,
    now: datetime,
) -> _Replanned:
    """Plan the confirmed accounts again, now; refuse if one changed since its preview."""
    candidates = _account_candidates(session, school_id, confirmed.account_ids)
    if confirmed.expected is not None and set(candidates) != set(confirmed.expected):
        raise _stale()
    entries, items = _entries(
        session,
        candidates.values(),
        purpose=purpose,
        include_all=confirmed.include_all,
        explicit=confirmed.expected is None,
        reset=reset,
        now=now,
    )
    if confirmed.expected is not None:
        for entry in entries:
            if entry.kind is None or confirmed.expected[entry.account_id] != entry.state:
                raise _stale()
    planned = [entry for entry in entries if entry.kind is not None]
    if not planned:
        raise NothingToDistributeError(
            _("Nobody is left to send credentials to: every account of the list is up to date.")
        )
    return _Replanned(planned, items)


def _draft_credentials(
    session: Session,
    items: Mapping[int, DistributionPlanItem],
    *,
    now: datetime,
) -> CredentialDraft:
    try:
        return draft_credentials(session=session, plan=list(items.values()), now=now)
    except TransitionRefused as error:
        raise _stale() from error  # changed between the re-plan and this read


def _link_expiries(credentials: Sequence[IssuedCredential], now: datetime) -> dict[int, datetime]:
    # A code expires with the provisional password printed beside it; a reminder to a family
    # that already chose its password still gets a code, valid as long as a new password.
    fallback = provisional_expiry(now)
    return {c.account_id: c.expires_at or fallback for c in credentials}


def _letter_date(now: datetime) -> date:
    return now.astimezone(get_settings().tz).date()


def _school(session: Session, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None:
        raise DistributionError(_("This school does not exist."))
    return school


def build_letters(
    *,
    session: Session,
    credentials: Sequence[IssuedCredential],
    link_codes: Mapping[int, str],
    school: School,
    bot_username: str | None,
    portal_url: str,
    letter_date: date,
) -> list[Letter]:
    """The letters of these credentials, in their order: guardian, children, identifier,
    password (None for a reminder), expiry, portal and activation links, bot deep link with the
    account's family-link code (`link_codes`: account id → code). One query for the guardians
    and children of all credentials (per thousand accounts)."""
    guardian_ids = sorted({credential.guardian_id for credential in credentials})
    guardians: dict[int, tuple[Any, ...]] = {}
    children: dict[int, list[ChildLine]] = defaultdict(list)
    pupil_name = func.coalesce(func.nullif(col(Pupil.usage_name), ""), col(Pupil.last_name))
    for start in range(0, len(guardian_ids), _ID_CHUNK):
        statement = (
            select(
                col(Guardian.id),
                col(Guardian.civility),
                col(Guardian.first_name),
                func.coalesce(func.nullif(col(Guardian.usage_name), ""), col(Guardian.last_name)),
                col(Guardian.email),
                col(Guardian.preferred_language),
                col(Pupil.id),
                col(Pupil.first_name),
                pupil_name,
                col(Pupil.archived_at),
                col(SchoolClass.label),
                col(SchoolClass.archived_at),
            )
            .select_from(Guardian)
            .outerjoin(PupilGuardian, col(PupilGuardian.guardian_id) == col(Guardian.id))
            .outerjoin(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
            .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .where(col(Guardian.id).in_(guardian_ids[start : start + _ID_CHUNK]))
        )
        for row in session.execute(statement):
            guardian_id = row[0]
            guardians.setdefault(guardian_id, tuple(row[1:6]))
            pupil_id, child_first, child_last, pupil_archived, label, class_archived = row[6:]
            if pupil_id is not None and pupil_archived is None and class_archived is None:
                children[guardian_id].append(ChildLine(child_first, child_last, label))
    for lines in children.values():
        lines.sort(key=lambda line: ((line.class_label or "").casefold(), line.first_name))
    letters: list[Letter] = []
    for credential in credentials:
        civility, first, last, email, language = guardians[credential.guardian_id]
        code = link_codes.get(credential.account_id)
        letters.append(
            Letter(
                account_id=credential.account_id,
                kind=credential.kind,
                civility=civility,
                first_name=first,
                last_name=last,
                email=normalise_email(email) if email else None,
                language=language,
                school_name=school.name,
                school_uai=school.uai,
                school_city=school.city,
                children=tuple(children.get(credential.guardian_id, ())),
                identifier=credential.identifier,
                password=credential.password,
                expires_at=credential.expires_at,
                portal_url=portal_url,
                activation_url=activation_url(portal_url, credential.identifier),
                bot_link_url=bot_link_url(bot_username, code) if bot_username and code else None,
                family_link_code=code,
                letter_date=letter_date,
            )
        )
    return letters


def _draft(
    session: Session,
    *,
    school_id: int,
    purpose: Purpose,
    reset: bool,
    replanned: _Replanned,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str | None,
    now: datetime,
    preview: DistributionPreview | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DistributionDraft:
    """Draw and hash the credentials of a plan, draw the link codes, build the letters, then
    compose the e-mails and render the PDF of the printed ones — reading only."""
    school = _school(session, school_id)
    credentials = _draft_credentials(session, replanned.items, now=now)
    issued = list(credentials.credentials)
    codes = draw_link_codes(credential.account_id for credential in issued)
    letters = build_letters(
        session=session,
        credentials=issued,
        link_codes=codes,
        school=school,
        bot_username=bot_username,
        portal_url=portal_url,
        letter_date=_letter_date(now),
    )
    channels = {
        entry.account_id: entry.channel for entry in replanned.entries if entry.channel is not None
    }
    emailed = [x for x in letters if channels[x.account_id] is DistributionChannel.EMAIL]
    printed = [x for x in letters if channels[x.account_id] is DistributionChannel.PAPER]
    emails: list[OutgoingEmail] = []
    if emailed:
        assert mail_from is not None, "e-mails need a sender address"
        with use_language("fr"):
            emails = [
                OutgoingEmail(
                    message=compose_credentials_email(letter, mail_from=mail_from),
                    kind=credentials_kind(letter.kind),
                    account_id=letter.account_id,
                    recipient=letter.email,
                )
                for letter in emailed
            ]
    paper: PaperLetters | None = None
    if printed:
        from bot.services.letters import render_letters

        with use_language("fr"):
            pdf = render_letters(printed, progress=progress)
        paper = PaperLetters(pdf=pdf, letters=tuple(printed), preview=preview)
    return DistributionDraft(
        school_id=school_id,
        purpose=purpose,
        reset=reset,
        actor=actor,
        now=now,
        credentials=credentials,
        link_codes=codes,
        link_expiries=_link_expiries(issued, now),
        letters=tuple(letters),
        emails=tuple(emails),
        email_letters=tuple(emailed),
        batch_id=str(uuid.uuid4()) if emails else None,
        paper=paper,
    )


def _record(session: Session, draft: DistributionDraft) -> None:
    """Write a draft: the credentials (checked again under lock: `StalePlanError` if an account
    changed since the draft, and then nothing is written), the link codes, the e-mails into
    the outbox, the printed letters as delivered on paper."""
    assert draft.credentials is not None
    try:
        record_credentials(session=session, draft=draft.credentials, actor=draft.actor)
    except TransitionRefused as error:
        # Another letter or e-mail, an activation, a reset since the draft.
        raise _stale() from error
    record_link_codes(
        session=session, codes=draft.link_codes, expiries=draft.link_expiries, now=draft.now
    )
    if draft.emails:
        enqueue_many(
            session=session,
            emails=draft.emails,
            school_id=draft.school_id,
            batch_id=draft.batch_id,
            now=draft.now,
        )
    if draft.paper is not None and draft.paper.letters:
        mark_distributed(
            session=session,
            account_ids=[letter.account_id for letter in draft.paper.letters],
            channel=DistributionChannel.PAPER,
            actor=draft.actor,
            at=draft.now,
        )


def _kind_counts(letters: Iterable[Letter]) -> dict[CredentialKind, int]:
    found = Counter(letter.kind for letter in letters)
    return {kind: found[kind] for kind in CredentialKind if found[kind]}


def _audit_batch(
    session: Session,
    *,
    actor: str,
    action: str,
    school_id: int,
    letters: Sequence[Letter],
    **details: Any,
) -> None:
    record_event(
        session,
        actor=actor,
        action=action,
        school_id=school_id,
        accounts=len(letters),
        kinds={kind.value: count for kind, count in _kind_counts(letters).items()},
        **details,
    )


def start_email_distribution(
    *,
    session: Session,
    school_id: int,
    preview_or_account_ids: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> str:
    """/envoyer, confirmed: in the caller's transaction, issue the credentials, create the
    family-link codes, compose each e-mail and write it to the outbox; returns the batch id
    (for `outbox.batch_progress`). Wake the sender after the commit. Everything slow — hashing,
    composing — happens before the first write.

    `preview_or_account_ids` is the preview shown (or its `confirmation()`), or account ids
    picked by hand. Raises `StalePlanError` if an account changed since the preview (plan
    again), `NothingToDistributeError` if nobody is left.
    """
    moment = now or utcnow()
    replanned = _replan(
        session,
        school_id,
        _confirmed(preview_or_account_ids, Purpose.EMAIL),
        purpose=Purpose.EMAIL,
        reset=reset,
        now=moment,
    )
    draft = _draft(
        session,
        school_id=school_id,
        purpose=Purpose.EMAIL,
        reset=reset,
        replanned=replanned,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=moment,
    )
    _record(session, draft)
    assert draft.batch_id is not None
    _audit_batch(
        session,
        actor=actor,
        action="distribution.emails_queued",
        school_id=school_id,
        letters=draft.letters,
        batch_id=draft.batch_id,
        reset=reset,
    )
    session.flush()
    return draft.batch_id


def draft_paper_letters(
    *,
    session: Session,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument] = (),
    preview_or_account_ids: Confirmation | None = None,
    include_all: bool = False,
    reset: bool = False,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DistributionDraft:
    """/pdf, first step: the letters of the scope's guardians without an e-mail address (all
    of them with `include_all`) — credentials drawn and hashed, family-link codes drawn, one
    combined PDF rendered — reading the database only: nothing is written or locked, so the
    slow part blocks nobody. CPU-bound: run it off the event loop. Then hand the PDF over and
    `record_paper_letters`.

    Either `scope_tokens` (plan and print at once) or `preview_or_account_ids` (a preview
    confirmed: `StalePlanError` if an account changed since). Nobody to print for: an empty
    draft whose `paper` is empty (its preview says why). `progress(done, total)` follows the
    rendering.
    """
    moment = now or utcnow()
    preview: DistributionPreview | None = None
    if preview_or_account_ids is None:
        preview = plan_paper_letters(
            session=session,
            school_id=school_id,
            scope_tokens=scope_tokens,
            include_all=include_all,
            reset=reset,
            now=moment,
        )
        if preview.is_empty:
            return DistributionDraft(
                school_id=school_id,
                purpose=Purpose.PAPER,
                reset=reset,
                actor=actor,
                now=moment,
                credentials=None,
                link_codes={},
                link_expiries={},
                letters=(),
                emails=(),
                email_letters=(),
                batch_id=None,
                paper=PaperLetters(pdf=b"", letters=(), preview=preview),
            )
        confirmation: Confirmation = preview
    else:
        confirmation = preview_or_account_ids
    replanned = _replan(
        session,
        school_id,
        _confirmed(confirmation, Purpose.PAPER),
        purpose=Purpose.PAPER,
        reset=reset,
        now=moment,
    )
    return _draft(
        session,
        school_id=school_id,
        purpose=Purpose.PAPER,
        reset=reset,
        replanned=replanned,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=None,
        now=moment,
        preview=confirmation if isinstance(confirmation, DistributionPreview) else None,
        progress=progress,
    )


def record_paper_letters(*, session: Session, draft: DistributionDraft) -> PaperLetters:
    """/pdf, last step, in the caller's (short) transaction: check every account again under
    lock and write what `draft_paper_letters` made — the new password hashes and expiries, the
    family-link codes, the accounts delivered on paper, the audit events. Raises
    `StalePlanError` if an account changed since the draft (another director printed, a family
    activated): then nothing is written, and the letters must not be used. Returns the
    letters printed."""
    if draft.purpose is not Purpose.PAPER:
        raise ValueError("this draft belongs to another kind of distribution")
    assert draft.paper is not None
    if draft.is_empty:
        return draft.paper
    _record(session, draft)
    _audit_batch(
        session,
        actor=draft.actor,
        action="distribution.letters_printed",
        school_id=draft.school_id,
        letters=draft.paper.letters,
        reset=draft.reset,
    )
    session.flush()
    return draft.paper


def prepare_paper_letters(
    *,
    session: Session,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument] = (),
    preview_or_account_ids: Confirmation | None = None,
    include_all: bool = False,
    reset: bool = False,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PaperLetters:
    """/pdf in one go: `draft_paper_letters` then `record_paper_letters`, in the caller's
    transaction (the rendering comes before the first write, so a failed rendering records
    nothing). For callers that hand the PDF over before recording (the chat, the CLI), the two
    steps are separate. Arguments and errors as `draft_paper_letters`."""
    draft = draft_paper_letters(
        session=session,
        school_id=school_id,
        scope_tokens=scope_tokens,
        preview_or_account_ids=preview_or_account_ids,
        include_all=include_all,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        now=now,
        progress=progress,
    )
    return record_paper_letters(session=session, draft=draft)


def draft_reminders(
    *,
    session: Session,
    school_id: int,
    preview_or_account_ids: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> DistributionDraft:
    """/relancer, confirmed with reminder (`reset=False`: no new password, except where the
    provisional one expired) or reset, first step: the e-mails composed for those with an
    address, one combined PDF rendered for the others — reading the database only, nothing
    written or locked. CPU-bound when there are letters: run it off the event loop. Then hand
    the PDF over (`draft.paper`, if any) and `record_reminders`. Raises like
    `start_email_distribution`."""
    moment = now or utcnow()
    replanned = _replan(
        session,
        school_id,
        _confirmed(preview_or_account_ids, Purpose.REMINDER),
        purpose=Purpose.REMINDER,
        reset=reset,
        now=moment,
    )
    preview = preview_or_account_ids
    return _draft(
        session,
        school_id=school_id,
        purpose=Purpose.REMINDER,
        reset=reset,
        replanned=replanned,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=moment,
        preview=preview if isinstance(preview, DistributionPreview) else None,
    )


def record_reminders(*, session: Session, draft: DistributionDraft) -> ReminderResult:
    """/relancer, last step, in the caller's (short) transaction: check every account again
    under lock, then write the credentials, the family-link codes, the e-mails into the outbox
    and the printed letters as delivered on paper. Raises `StalePlanError` if an account
    changed since the draft (nothing is written then). Wake the sender after the commit."""
    if draft.purpose is not Purpose.REMINDER:
        raise ValueError("this draft belongs to another kind of distribution")
    _record(session, draft)
    printed = draft.paper.letters if draft.paper is not None else ()
    _audit_batch(
        session,
        actor=draft.actor,
        action="distribution.reminders_started",
        school_id=draft.school_id,
        letters=draft.letters,
        batch_id=draft.batch_id,
        reset=draft.reset,
        emails=len(draft.emails),
        letters_printed=len(printed),
    )
    session.flush()
    return ReminderResult(
        batch_id=draft.batch_id,
        emails=len(draft.emails),
        email_counts=_kind_counts(draft.email_letters),
        paper=draft.paper,
    )


def start_reminders(
    *,
    session: Session,
    school_id: int,
    preview_or_account_ids: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> ReminderResult:
    """/relancer in one go: `draft_reminders` then `record_reminders`, in the caller's
    transaction (e-mails to the outbox for those with an address, one combined PDF for the
    others, marked delivered on paper). CPU-bound when there are letters: run it off the event
    loop. Raises like `start_email_distribution`."""
    draft = draft_reminders(
        session=session,
        school_id=school_id,
        preview_or_account_ids=preview_or_account_ids,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=now,
    )
    return record_reminders(session=session, draft=draft)
