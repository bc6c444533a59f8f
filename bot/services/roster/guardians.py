"""The guardians of a scope as `/responsables` lists them: the filters a director types
(avec / sans e-mail, a state), and their pages with children, identifier and light."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from bot.services.roster.classes import class_label_key
from bot.services.roster.scopes import (
    ResolvedScope,
    fold_words,
    scope_from_token,
)
from bot.services.roster.states import STATE_LIGHTS
from models import AccountState
from models.queries import (
    GuardianRow,
    children_of,
    guardians_page,
)

DEFAULT_PAGE_SIZE = 15

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
    return _STATE_WORDS.get(fold_words(word))


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
            phrase = fold_words("_".join(words[end - size : end]))
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
