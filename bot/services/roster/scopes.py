"""The roster as a director reads it: what a class argument names (a class, a level or the
whole school), the guardians of that scope with their filters and pages, and the « état des
comptes » with the next things to do.

Class arguments match a class label first (case-, accent- and space-insensitive), then a
level, then `ecole`; an unknown one raises `UnknownClassError` carrying the known classes.
"""

from __future__ import annotations

import enum
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from bot.i18n import N_, _
from bot.services.errors import ServiceError
from bot.services.roster.classes import class_label_key, normalise_level, sort_levels
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.reader import read_extraction
from bot.services.roster.onde.report import ImportReport
from bot.services.roster.statistics import (
    GroupCounts,
    SchoolStatistics,
    level_sort_key,
    parse_levels,
    school_statistics,
)
from models import AccountState
from models.queries import (
    ClassRow,
    GuardianRow,
    active_classes,
    children_of,
    enrolled_levels,
    guardians_page,
    never_notified_by_email,
)

# docs/PRODUCT.md: the four lights of the official « état des comptes ».
STATE_LIGHTS: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: "🔴",
    AccountState.NOTIFIED: "🟠",
    AccountState.ACTIVATING: "🟡",
    AccountState.ACTIVATED: "🟢",
}
# The labels of the official tool (« Non notifié »…); the French catalog gives them verbatim.
STATE_LABELS: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: N_("Not notified"),
    AccountState.NOTIFIED: N_("Notified, not activated"),
    AccountState.ACTIVATING: N_("Activation in progress"),
    AccountState.ACTIVATED: N_("Activated"),
}

DEFAULT_PAGE_SIZE = 15


def state_label(state: AccountState) -> str:
    """The label of a state in the current language (« Non notifié » in French)."""
    return _(STATE_LABELS[state])


# --- Scopes -------------------------------------------------------------------------------------


class ScopeKind(enum.StrEnum):
    SCHOOL = "school"
    CLASS = "class"
    LEVEL = "level"


@dataclass(frozen=True)
class ClassInfo:
    """An active class of the school."""

    id: int
    label: str
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    """What a class argument named: one class, one level, or the whole school."""

    kind: ScopeKind
    class_id: int | None = None
    level: str | None = None
    label: str = ""  # the class label or the level; empty for the school

    @property
    def token(self) -> str:
        """A short form for callback data: « e », « c12 », « lCM1 »."""
        if self.kind is ScopeKind.CLASS:
            return f"c{self.class_id}"
        if self.kind is ScopeKind.LEVEL:
            return f"l{self.level}"
        return "e"

    @property
    def argument(self) -> str:
        """How to type this scope after a command: « CE2-CM1 », « niveau CM1 » (a class may be
        labelled « CM1 » too), « ecole »."""
        if self.kind is ScopeKind.LEVEL:
            return f"niveau {self.level}"
        return self.label if self.kind is ScopeKind.CLASS else "ecole"


SCHOOL_SCOPE = Scope(ScopeKind.SCHOOL)


@dataclass(frozen=True)
class ResolvedScope:
    """A scope with what the bot says before acting: « Classe CE2-CM1 — 23 élèves, 38
    responsables ». `statistics` covers the scope (its total, classes and levels)."""

    scope: Scope
    pupils: int
    guardians: int
    classes: tuple[str, ...]  # for a level: the classes that have pupils of that level
    statistics: SchoolStatistics


class UnknownClassError(ServiceError):
    """A class argument that names no class or level of the school."""

    def __init__(self, text: str, classes: Sequence[ClassInfo], levels: Sequence[str]) -> None:
        super().__init__(_("Unknown class: « {text} »").format(text=text))
        self.text = text
        self.classes = list(classes)
        self.levels = list(levels)


# Words that name the whole school, compared once folded (see `_fold`).
_SCHOOL_WORDS = frozenset(
    {
        "ecole",
        "l_ecole",
        "toute_l_ecole",
        "tous",
        "toutes",
        "tout",
        "all",
        "school",
        "etablissement",
    }
)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LEVEL_PREFIX = re.compile(r"^(?:niveau|level|niv\.?)\s*", re.IGNORECASE)


def _fold(text: str) -> str:
    """Lower-case ASCII words joined by « _ »: « Non notifié » → « non_notifie »."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\ufe0f", ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\s'’\-_.]+", "_", plain).strip("_")


def _class_infos(rows: Sequence[ClassRow]) -> list[ClassInfo]:
    infos = [ClassInfo(row.id, row.label, parse_levels(row.levels)) for row in rows]
    infos.sort(
        key=lambda c: (level_sort_key(c.levels[0] if c.levels else None), c.label.casefold())
    )
    return infos


def known_classes(session: Session, *, school_id: int) -> list[ClassInfo]:
    """The school's active classes, in level order."""
    return _class_infos(active_classes(session, school_id))


def known_levels(session: Session, *, school_id: int) -> list[str]:
    """The levels taught in the school (its classes' and its pupils'), in school order."""
    levels = set(enrolled_levels(session, school_id))
    for row in active_classes(session, school_id):
        levels.update(parse_levels(row.levels))
    return sort_levels(levels)


def _match_class(rows: Sequence[ClassRow], text: str) -> ClassRow | None:
    key = class_label_key(text)
    exact = [row for row in rows if row.label_key == key or class_label_key(row.label) == key]
    if len(exact) == 1:
        return exact[0]
    # « ce2 cm1 » or « GS M Petit »: compare letters and digits only, if that is unambiguous.
    loose_key = _NON_ALNUM.sub("", key)
    loose = [row for row in rows if _NON_ALNUM.sub("", class_label_key(row.label)) == loose_key]
    return loose[0] if loose_key and len(loose) == 1 else None


def _resolved(session: Session, school_id: int, scope: Scope) -> ResolvedScope:
    statistics = school_statistics(
        session=session, school_id=school_id, class_id=scope.class_id, level=scope.level
    )
    classes = (
        tuple(group.label for group in statistics.classes) if scope.kind is ScopeKind.LEVEL else ()
    )
    return ResolvedScope(
        scope=scope,
        pupils=statistics.total.pupils,
        guardians=statistics.total.accounts,
        classes=classes,
        statistics=statistics,
    )


def resolve_scope(session: Session, *, school_id: int, text: str) -> ResolvedScope:
    """The class, level or whole school that `text` names, with its counts.

    A class label wins over a level (« CM1 » is the class CM1 when there is one, else the
    level); `ecole` names the whole school. Raises `UnknownClassError` otherwise.
    """
    rows = active_classes(session, school_id)
    text = " ".join(text.split())
    row = _match_class(rows, text) if text else None
    if row is not None:
        return _resolved(
            session, school_id, Scope(ScopeKind.CLASS, class_id=row.id, label=row.label)
        )
    if not text or _fold(text) in _SCHOOL_WORDS:
        return _resolved(session, school_id, SCHOOL_SCOPE)
    # « niveau CM1 » names the level even when a class is labelled « CM1 ».
    level = normalise_level(_LEVEL_PREFIX.sub("", text))
    levels = known_levels(session=session, school_id=school_id)
    if level is not None and level in levels:
        return _resolved(session, school_id, Scope(ScopeKind.LEVEL, level=level, label=level))
    raise UnknownClassError(text, _class_infos(rows), levels)


def scope_from_token(session: Session, *, school_id: int, token: str) -> ResolvedScope:
    """The scope a button carries (`Scope.token`), checked against this school.

    A class of another school, or one archived since the button was sent, raises
    `UnknownClassError` like a mistyped class.
    """
    if token == "e":
        return _resolved(session, school_id, SCHOOL_SCOPE)
    rows = active_classes(session, school_id)
    if token.startswith("c") and token[1:].isdigit():
        class_id = int(token[1:])
        for row in rows:
            if row.id == class_id:
                scope = Scope(ScopeKind.CLASS, class_id=row.id, label=row.label)
                return _resolved(session, school_id, scope)
    elif token.startswith("l"):
        level = token[1:]
        if level in known_levels(session=session, school_id=school_id):
            return _resolved(session, school_id, Scope(ScopeKind.LEVEL, level=level, label=level))
    raise UnknownClassError(
        token, _class_infos(rows), known_levels(session=session, school_id=school_id)
    )


# --- Guardian filters ---------------------------------------------------------------------------

_STATE_CODES: dict[AccountState, str] = {
    AccountState.NOT_NOTIFIED: "n",
    AccountState.NOTIFIED: "o",
    AccountState.ACTIVATING: "c",
    AccountState.ACTIVATED: "a",
}
_NOT_ACTIVATED = frozenset(
    {AccountState.NOT_NOTIFIED, AccountState.NOTIFIED, AccountState.ACTIVATING}
)


def _state_words() -> dict[str, frozenset[AccountState]]:
    words: dict[str, frozenset[AccountState]] = {}

    def add(states: frozenset[AccountState], *names: str) -> None:
        for name in names:
            words[name] = states

    add(
        frozenset({AccountState.NOT_NOTIFIED}),
        "non_notifie", "non_notifies", "non_notifiee", "non_notifiees", "nonnotifie",
        "pas_notifie", "pas_notifies", "jamais_notifie", "jamais_notifies", "not_notified",
        "rouge", "rouges", "🔴",
    )  # fmt: skip
    add(
        frozenset({AccountState.NOTIFIED}),
        "notifie", "notifies", "notifiee", "notifiees", "notifie_non_active",
        "notifie_et_non_active", "notified", "orange", "oranges", "🟠",
    )  # fmt: skip
    add(
        frozenset({AccountState.ACTIVATING}),
        "en_cours", "encours", "en_cours_d_activation", "en_activation", "activation",
        "activating", "jaune", "jaunes", "🟡",
    )  # fmt: skip
    add(
        frozenset({AccountState.ACTIVATED}),
        "active", "actives", "activee", "activees", "activated", "vert", "verts", "🟢",
    )  # fmt: skip
    add(
        _NOT_ACTIVATED,
        "non_active", "non_actives", "non_activee", "non_activees", "pas_active",
        "pas_actives", "not_activated",
    )  # fmt: skip
    return words


_STATE_WORDS = _state_words()
_EMAIL_NOUNS = ("", "email", "mail", "e_mail", "courriel", "adresse", "adresse_email",
                "adresse_mail", "adresse_e_mail", "mel")  # fmt: skip
_EMAIL_WORDS: dict[str, bool] = {
    f"{prefix}_{noun}".strip("_"): value
    for prefix, value in (("avec", True), ("with", True), ("sans", False), ("without", False))
    for noun in _EMAIL_NOUNS
}


def parse_state_word(word: str) -> frozenset[AccountState] | None:
    """The states a word names (« non_notifié », « activés », « 🟢 »…), or None."""
    return _STATE_WORDS.get(_fold(word))


@dataclass(frozen=True)
class GuardianFilters:
    """`avec` / `sans` an e-mail address, and the states to keep (none: every state)."""

    has_email: bool | None = None
    states: frozenset[AccountState] = frozenset()

    @property
    def token(self) -> str:
        """A short form for callback data: « s:no », « -:- »…"""
        email = {True: "a", False: "s", None: "-"}[self.has_email]
        states = "".join(sorted(_STATE_CODES[s] for s in self.states)) or "-"
        return f"{email}:{states}"

    @classmethod
    def from_token(cls, token: str) -> GuardianFilters:
        """The filters of `token` (unknown letters are ignored: old buttons stay harmless)."""
        email, _sep, states = token.partition(":")
        has_email = {"a": True, "s": False}.get(email)
        by_code = {code: state for state, code in _STATE_CODES.items()}
        return cls(has_email, frozenset(by_code[c] for c in states if c in by_code))


@dataclass(frozen=True)
class GuardianQuery:
    """What `/responsables CM1 sans non_notifie` asks: the scope text and the filters."""

    scope_text: str
    filters: GuardianFilters = field(default_factory=GuardianFilters)


def parse_guardian_query(
    arguments: Sequence[str], *, known_labels: Sequence[str] = ()
) -> GuardianQuery:
    """Split command arguments into the scope text and the trailing filter words.

    Filter words are read from the end (« avec », « sans e-mail », « non notifié », « 🟢 »);
    what precedes them names the scope. When the whole text is a class label (`known_labels`),
    it is the scope, even if it ends with a filter word.
    """
    words = [word for argument in arguments for word in argument.split()]
    whole = " ".join(words)
    if whole and any(class_label_key(whole) == class_label_key(label) for label in known_labels):
        return GuardianQuery(whole)
    has_email: bool | None = None
    states: set[AccountState] = set()
    end = len(words)
    while end > 0:
        for size in (3, 2, 1):
            if size > end:
                continue
            phrase = _fold("_".join(words[end - size : end]))
            if phrase in _EMAIL_WORDS and has_email is None:
                has_email = _EMAIL_WORDS[phrase]
            elif phrase in _STATE_WORDS:
                states.update(_STATE_WORDS[phrase])
            else:
                continue
            end -= size
            break
        else:
            break
    return GuardianQuery(" ".join(words[:end]), GuardianFilters(has_email, frozenset(states)))


# --- Guardian lists -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildLine:
    first_name: str
    last_name: str
    class_label: str | None


@dataclass(frozen=True)
class GuardianLine:
    """One guardian as a list shows them (never their address: only whether they have one)."""

    guardian_id: int
    account_id: int
    civility: str | None
    first_name: str
    last_name: str
    identifier: str
    has_email: bool
    state: AccountState
    children: tuple[ChildLine, ...]

    @property
    def light(self) -> str:
        return STATE_LIGHTS[self.state]


@dataclass(frozen=True)
class GuardianPage:
    """One page of the guardians of a scope that match the filters."""

    scope: ResolvedScope
    filters: GuardianFilters
    guardians: list[GuardianLine]
    total: int  # guardians matching the filters, on every page
    page: int  # 0-based, clamped to the existing pages
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _display_last_name(row: GuardianRow) -> str:
    return row.usage_name or row.last_name


def list_guardians(
    session: Session,
    *,
    school_id: int,
    scope: str,
    filters: GuardianFilters | None = None,
    page: int = 0,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> GuardianPage:
    """One page of the guardians of the scope `scope` (a `Scope.token`), with their enrolled
    children, identifier, whether they have an e-mail address, and state.

    Three queries whatever the page size: the count, the page, the children of the page.
    """
    filters = filters or GuardianFilters()
    resolved = scope_from_token(session=session, school_id=school_id, token=scope)

    def fetch(offset: int) -> tuple[int, list[GuardianRow]]:
        return guardians_page(
            session,
            school_id=school_id,
            class_id=resolved.scope.class_id,
            level=resolved.scope.level,
            has_email=filters.has_email,
            states=filters.states,
            offset=offset,
            limit=page_size,
        )

    page = max(page, 0)
    total, rows = fetch(page * page_size)
    if not rows and total and page > 0:
        page = (total - 1) // page_size  # the list shrank since the button was sent
        total, rows = fetch(page * page_size)
    children = children_of(session, [row.guardian_id for row in rows])
    lines = [
        GuardianLine(
            guardian_id=row.guardian_id,
            account_id=row.account_id,
            civility=row.civility,
            first_name=row.first_name,
            last_name=_display_last_name(row),
            identifier=row.identifier,
            has_email=bool(row.email),
            state=AccountState(row.state),
            children=tuple(
                ChildLine(child.first_name, child.last_name, child.class_label)
                for child in children.get(row.guardian_id, [])
            ),
        )
        for row in rows
    ]
    return GuardianPage(resolved, filters, lines, total, page, page_size)


# --- État des comptes ---------------------------------------------------------------------------


class NextStepKind(enum.StrEnum):
    SEND_EMAIL = "send_email"  # never notified, with an e-mail address: /envoyer
    PRINT_LETTERS = "print_letters"  # never notified, no e-mail address: /pdf
    REMIND = "remind"  # notified, not activated: /relancer
    CONFIRM = "confirm"  # activation in progress: the confirmation link was not clicked


@dataclass(frozen=True)
class NextStep:
    """One thing to do next for the guardians of the scope: `count` of them need it."""

    kind: NextStepKind
    count: int
    scope: Scope


@dataclass(frozen=True)
class StatusReport:
    """The « état des comptes » of a scope, what to do next (in the order to do it), and the
    classes furthest behind (lowest share of activated accounts first)."""

    resolved: ResolvedScope
    next_steps: list[NextStep]
    behind: list[GroupCounts]

    @property
    def statistics(self) -> SchoolStatistics:
        return self.resolved.statistics


BEHIND_CLASSES = 3


def status_report(
    session: Session, *, school_id: int, scope_text: str = "", scope: str | None = None
) -> StatusReport:
    """The statistics of the school, or of the class or level `scope_text` names (or the
    `Scope.token` `scope` carries), with the next steps. A few aggregate queries, whatever the
    school's size. Raises `UnknownClassError` like `resolve_scope`."""
    if scope is not None:
        resolved = scope_from_token(session=session, school_id=school_id, token=scope)
    else:
        resolved = resolve_scope(session=session, school_id=school_id, text=scope_text)
    named, total = resolved.scope, resolved.statistics.total
    never_notified = never_notified_by_email(
        session, school_id=school_id, class_id=named.class_id, level=named.level
    )
    candidates = (
        (NextStepKind.SEND_EMAIL, never_notified[True]),
        (NextStepKind.PRINT_LETTERS, never_notified[False]),
        (NextStepKind.REMIND, total.notified),
        (NextStepKind.CONFIRM, total.activating),
    )
    steps = [NextStep(kind, count, named) for kind, count in candidates if count]
    behind: list[GroupCounts] = []
    # Worth saying once activations have begun, and when there are classes to compare.
    if total.activated and len(resolved.statistics.classes) > 1:
        lagging = [
            group
            for group in resolved.statistics.classes
            if group.accounts and group.activated < group.accounts
        ]
        lagging.sort(key=lambda group: (group.activated_accounts_percent, -group.accounts))
        behind = lagging[:BEHIND_CLASSES]
    return StatusReport(resolved, steps, behind)


# --- Roster files sent in a chat ----------------------------------------------------------------
#
# A director sends the two ONDE extractions one after the other, and confirms after a preview:
# the files wait in the data folder between those steps (readable by the bot's user only), so
# that a restart in the middle loses nothing; the chat state keeps only their paths and names.

UPLOADS_FOLDER = "uploads"


@dataclass(frozen=True)
class RosterFileInfo:
    """What an uploaded file is: an Élèves (`pupils`) or Responsables (`guardians`) extraction."""

    kind: str
    data_lines: int


def identify_roster_file(*, data: bytes, filename: str) -> RosterFileInfo:
    """Recognise an ONDE extraction by its header; raises `RosterFileError` (one sentence that
    names the file) when it cannot be imported at all. Reads only: no database."""
    extraction = read_extraction(data, filename=filename)
    return RosterFileInfo(kind=extraction.kind, data_lines=extraction.data_lines)


def save_upload(*, data_dir: Path, telegram_user_id: int, data: bytes) -> Path:
    """Keep an uploaded file under `data_dir/uploads/<user>/`, readable by its owner only."""
    folder = data_dir / UPLOADS_FOLDER / str(int(telegram_user_id))
    folder.mkdir(parents=True, exist_ok=True)
    for directory in (data_dir, data_dir / UPLOADS_FOLDER, folder):
        os.chmod(directory, 0o700)
    path = folder / f"{uuid.uuid4().hex}.csv"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def discard_uploads(paths: Iterable[str], *, data_dir: Path) -> None:
    """Delete uploaded files (only inside `data_dir/uploads`: the paths come from chat state)."""
    root = (data_dir / UPLOADS_FOLDER).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink(missing_ok=True)


def import_uploads(
    session: Session,
    *,
    school_id: int,
    uploads: Sequence[tuple[str, str]],
    actor: str,
    dry_run: bool,
) -> ImportReport:
    """`import_roster` on uploaded files, given as (file name, path) pairs; the bytes are read
    here, in the worker thread. Raises `FileNotFoundError` if a file is gone."""
    files = [(name, Path(path).read_bytes()) for name, path in uploads]
    return import_roster(
        session=session, school_id=school_id, files=files, actor=actor, dry_run=dry_run
    )
