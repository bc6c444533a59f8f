"""Who of a scope will get what, and who is skipped and why: the preview the director
confirms before anything is done (/envoyer, /pdf, /relancer, the CLI's `send` and `letters`).

Planning only reads. The letter's kind (first distribution, reminder, reset) is the accounts
service's decision (`plan_distribution`); the channel (e-mail or paper) and the reasons to skip
someone are decided here.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyascii
from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.i18n import N_
from bot.services.accounts import (
    CredentialKind,
    DistributionPlanItem,
    normalise_email,
    plan_distribution,
)
from bot.services.distribution.scopes import (
    Candidate,
    ScopeArgument,
    account_candidates,
    guardians_pupil_count,
    resolve_scopes,
    scope_candidates,
    scope_pupil_count,
)
from bot.services.mail import CREDENTIAL_KIND_VALUES
from bot.services.roster import ResolvedScope
from models import AccountState, DistributionChannel, OutboxMessage, OutboxStatus, utcnow
from models.queries import in_chunks

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


# --- Planning -------------------------------------------------------------------------------


def _usable_email(candidate: Candidate) -> str | None:
    return normalise_email(candidate.email) if candidate.email else None


def _classify(
    candidate: Candidate, purpose: Purpose, include_all: bool, explicit: bool
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


def plan_entries(
    session: Session,
    candidates: Iterable[Candidate],
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
    for chunk in in_chunks(account_ids):
        found += int(
            session.execute(
                select(func.count(func.distinct(col(OutboxMessage.account_id)))).where(
                    col(OutboxMessage.account_id).in_(chunk),
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
    candidates = scope_candidates(session, school_id, scopes)
    entries, _items = plan_entries(
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
        pupils=scope_pupil_count(session, school_id, scopes),
        entries=tuple(entries),
        planned_at=moment,
        already_queued=_already_queued(session, emailed) if emailed else 0,
    )


def plan_email_distribution(
    session: Session,
    *,
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
    session: Session,
    *,
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
    session: Session,
    *,
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


def plan_for_accounts(
    session: Session,
    *,
    school_id: int,
    account_ids: Sequence[int],
    purpose: Purpose,
    include_all: bool = True,
    now: datetime | None = None,
) -> DistributionPreview:
    """The preview for accounts picked by hand (a guardian's card, the help desk), planned as
    a scope's would be for `purpose` (/envoyer, /pdf or /relancer's rules); accounts of another
    school are left out. Changes nothing; confirm it like any preview."""
    moment = now or utcnow()
    candidates = account_candidates(session, school_id, account_ids)
    entries, _items = plan_entries(
        session,
        candidates.values(),
        purpose=purpose,
        include_all=include_all,
        # As the confirmation will plan them again (from the preview's `confirmation()`).
        explicit=False,
        reset=False,
        now=moment,
    )
    emailed = [e.account_id for e in entries if e.channel == DistributionChannel.EMAIL]
    return DistributionPreview(
        school_id=school_id,
        purpose=purpose,
        reset=None if purpose is Purpose.REMINDER else False,
        include_all=include_all if purpose is not Purpose.EMAIL else False,
        scopes=(),
        pupils=guardians_pupil_count(
            session, school_id, [candidate.guardian_id for candidate in candidates.values()]
        ),
        entries=tuple(entries),
        planned_at=moment,
        already_queued=_already_queued(session, emailed) if emailed else 0,
    )
