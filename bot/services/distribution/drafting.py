"""Drafting a confirmed distribution in memory, with nothing written and nothing locked:
credentials drawn and hashed, family-link codes drawn, the letters built, the e-mails composed
and the PDF of the printed letters rendered. This is the slow part; `recording` then writes a
draft in one short transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.config import get_settings
from bot.i18n import _, use_language
from bot.services.accounts import (
    CredentialDraft,
    CredentialKind,
    DistributionPlanItem,
    IssuedCredential,
    TransitionRefused,
    draft_credentials,
    draw_link_codes,
    normalise_email,
    provisional_expiry,
)
from bot.services.distribution.confirming import (
    Confirmation,
    confirmed_accounts,
    replan,
)
from bot.services.distribution.errors import DistributionError, stale_plan_error
from bot.services.distribution.planning import DistributionPreview, Purpose, plan_paper_letters
from bot.services.distribution.scopes import ScopeArgument
from bot.services.letters import (
    ChildLine,
    Letter,
    activation_url,
    bot_link_url,
    letter_filename,
    render_letters,
    split_letters,
)
from bot.services.mail import OutgoingEmail, compose_credentials_email, credentials_kind
from models import DistributionChannel, Guardian, Pupil, PupilGuardian, School, SchoolClass, utcnow
from models.queries import in_chunks


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
        return kind_counts(self.letters)

    def individual_documents(self, *, password: str | None = None) -> list[tuple[str, bytes]]:
        """One PDF per letter, (file name, content), encrypted with `password` if given.
        CPU-bound: call it off the event loop."""
        if not self.letters:
            return []
        return split_letters(self.pdf, self.letters, password=password)


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
    batch_id: str | None  # the e-mails' batch, for `mail.batch_progress`
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


def kind_counts(letters: Iterable[Letter]) -> dict[CredentialKind, int]:
    """How many letters of each kind (first, reminder, reset), the kinds in their order."""
    found = Counter(letter.kind for letter in letters)
    return {kind: found[kind] for kind in CredentialKind if found[kind]}


# --- Drafting -------------------------------------------------------------------------------


def _draft_credentials(
    session: Session,
    items: Mapping[int, DistributionPlanItem],
    *,
    now: datetime,
) -> CredentialDraft:
    try:
        return draft_credentials(session=session, plan=list(items.values()), now=now)
    except TransitionRefused as error:
        raise stale_plan_error() from error  # changed between the re-plan and this read


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


# A guardian's columns for a letter: civility, first name, surname, e-mail, language.
_GuardianColumns = tuple[Any, ...]


def _guardians_and_children(
    session: Session, guardian_ids: Sequence[int]
) -> tuple[dict[int, _GuardianColumns], dict[int, list[ChildLine]]]:
    """What letters say of each guardian, and their enrolled children (class, then first
    name), in one query per `in_chunks` of guardians."""
    guardians: dict[int, _GuardianColumns] = {}
    children: dict[int, list[ChildLine]] = defaultdict(list)
    pupil_name = func.coalesce(func.nullif(col(Pupil.usage_name), ""), col(Pupil.last_name))
    for chunk in in_chunks(guardian_ids):
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
            .where(col(Guardian.id).in_(chunk))
        )
        for row in session.execute(statement):
            guardian_id = row[0]
            guardians.setdefault(guardian_id, tuple(row[1:6]))
            pupil_id, child_first, child_last, pupil_archived, label, class_archived = row[6:]
            if pupil_id is not None and pupil_archived is None and class_archived is None:
                children[guardian_id].append(ChildLine(child_first, child_last, label))
    for lines in children.values():
        lines.sort(key=lambda line: ((line.class_label or "").casefold(), line.first_name))
    return guardians, children


def build_letters(
    session: Session,
    *,
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
    and children of all credentials (per `in_chunks` of guardians)."""
    guardians, children = _guardians_and_children(
        session, sorted({credential.guardian_id for credential in credentials})
    )
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


def _compose_emails(letters: Sequence[Letter], mail_from: str | None) -> list[OutgoingEmail]:
    """The credential e-mails of these letters, in French like the letters."""
    if not letters:
        return []
    assert mail_from is not None, "e-mails need a sender address"
    with use_language("fr"):
        return [
            OutgoingEmail(
                message=compose_credentials_email(letter, mail_from=mail_from),
                kind=credentials_kind(letter.kind),
                account_id=letter.account_id,
                recipient=letter.email,
            )
            for letter in letters
        ]


def _render_paper(
    letters: Sequence[Letter],
    preview: DistributionPreview | None,
    progress: Callable[[int, int], None] | None,
) -> PaperLetters | None:
    """The combined PDF of the printed letters (None when none is printed)."""
    if not letters:
        return None
    with use_language("fr"):
        pdf = render_letters(letters, progress=progress)
    return PaperLetters(pdf=pdf, letters=tuple(letters), preview=preview)


def draft_distribution(
    session: Session,
    *,
    school_id: int,
    purpose: Purpose,
    confirmation: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str | None,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> DistributionDraft:
    """Plan the confirmed accounts again (`StalePlanError` if one changed since the preview),
    draw and hash their credentials, draw the link codes, build the letters, then compose the
    e-mails and render the PDF of the printed ones — reading only."""
    replanned = replan(
        session,
        school_id,
        confirmed_accounts(confirmation, purpose),
        purpose=purpose,
        reset=reset,
        now=now,
    )
    preview = confirmation if isinstance(confirmation, DistributionPreview) else None
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
    emails = _compose_emails(emailed, mail_from)
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
        paper=_render_paper(printed, preview, progress),
    )


def _nothing_to_print(
    *, school_id: int, reset: bool, actor: str, now: datetime, preview: DistributionPreview
) -> DistributionDraft:
    """The draft of a /pdf whose preview has nobody to print for (it says why)."""
    return DistributionDraft(
        school_id=school_id,
        purpose=Purpose.PAPER,
        reset=reset,
        actor=actor,
        now=now,
        credentials=None,
        link_codes={},
        link_expiries={},
        letters=(),
        emails=(),
        email_letters=(),
        batch_id=None,
        paper=PaperLetters(pdf=b"", letters=(), preview=preview),
    )


def draft_paper_letters(
    session: Session,
    *,
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
            return _nothing_to_print(
                school_id=school_id, reset=reset, actor=actor, now=moment, preview=preview
            )
        confirmation: Confirmation = preview
    else:
        confirmation = preview_or_account_ids
    return draft_distribution(
        session,
        school_id=school_id,
        purpose=Purpose.PAPER,
        confirmation=confirmation,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=None,
        now=moment,
        progress=progress,
    )


def draft_reminders(
    session: Session,
    *,
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
    return draft_distribution(
        session,
        school_id=school_id,
        purpose=Purpose.REMINDER,
        confirmation=preview_or_account_ids,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=now or utcnow(),
    )
