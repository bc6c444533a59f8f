"""Fuzzing what a user types after a command, parsed by the services: each parser returns a
value or raises its documented error, with a message short enough to be sent back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from bot.i18n import use_language
from bot.services.accounts import normalise_email, normalise_phone
from bot.services.accounts.family_links import hash_link_code, looks_like_link_code
from bot.services.accounts.identifiers import MAX_LENGTH as IDENTIFIER_LENGTH
from bot.services.accounts.identifiers import identifier_base
from bot.services.errors import ServiceError
from bot.services.family.intents import Intent, detect_intent
from bot.services.helpdesk.filing import MAX_TEXT_LENGTH, clean_text
from bot.services.helpdesk.matching import words
from bot.services.portal.forms import parse_birth_date
from bot.services.roster import (
    GuardianFilters,
    ScopeKind,
    UnknownClassError,
    known_classes,
    known_levels,
    parse_guardian_query,
    resolve_scope,
    scope_from_token,
)
from bot.services.roster.classes import LEVELS, class_label_key, levels_in_label, normalise_level
from bot.services.roster.guardians import parse_state_word
from bot.services.scheduling import LsuDateError, latest_lsu_date, parse_lsu_date
from bot.services.schools.registry import InvalidUAIError, normalize_uai
from bot.services.schools.search import find_schools
from models import AccountState
from tests.fuzz.conftest import examples, school_with_roster
from tests.fuzz.strategies import typed_text

TODAY = date(2026, 12, 3)
# Room left in a Telegram message (4,096 characters) around an error quoted in a reply.
MAX_ERROR_LENGTH = 1000


@pytest.fixture(autouse=True)
def french() -> Iterator[None]:
    with use_language("fr"):
        yield


def _check_error(error: ServiceError) -> None:
    assert error.message.strip(), "an error without a message"
    assert len(error.message) <= MAX_ERROR_LENGTH, f"{len(error.message)} characters"


# --- Dates ------------------------------------------------------------------------------------


@given(typed_text)
@example("99999999999999999999/1/1")
@example("1/1/99999999999999999999")
@example("15 janvier 99999999999999999999")
@example("x" * 4090)
@example("٣/٣/٢٠٢٧")
def test_lsu_date_is_a_date_within_a_year_or_a_clear_refusal(text: str) -> None:
    try:
        value = parse_lsu_date(text, today=TODAY)
    except LsuDateError as error:
        _check_error(error)
        return
    assert TODAY <= value <= latest_lsu_date(TODAY)


@given(typed_text)
@example("14032018")
@example("99999999/99/99")
def test_portal_birth_date_is_a_real_date_or_none(text: str) -> None:
    value = parse_birth_date(text)
    assert value is None or isinstance(value, date)


# --- Schools ----------------------------------------------------------------------------------


@given(typed_text)
@example("0751234x")
@example(" 075 1234 X ")
@example("0751234X" + "é" * 4000)
def test_uai_is_canonical_or_refused_clearly(text: str) -> None:
    try:
        uai = normalize_uai(text)
    except InvalidUAIError as error:
        _check_error(error)
        return
    assert re.fullmatch(r"[0-9]{7}[A-Z]", uai)
    assert normalize_uai(uai) == uai


# --- Class names, levels, guardian filters ----------------------------------------------------


@given(typed_text)
def test_levels_named_are_school_levels(text: str) -> None:
    found = levels_in_label(text)
    assert set(found) <= set(LEVELS) and len(found) == len(set(found))
    level = normalise_level(text)
    assert level is None or level in LEVELS
    assert isinstance(class_label_key(text), str)


@given(st.lists(typed_text, max_size=5), st.lists(st.sampled_from(["CE1", "CM2 A", "GS"])))
@example(["CM1", "sans", "e-mail", "non", "notifiés"], [])
@example(["🟢🟢"], [])
def test_guardian_query_splits_scope_and_filters(arguments: list[str], labels: list[str]) -> None:
    query = parse_guardian_query(arguments, known_labels=labels)
    words_typed = [word for argument in arguments for word in argument.split()]
    scope_words = query.scope_text.split()
    assert scope_words == words_typed[: len(scope_words)]
    assert query.filters.states <= set(AccountState)
    assert GuardianFilters.from_token(query.filters.token) == query.filters


@given(typed_text)
def test_state_words_name_states_or_nothing(text: str) -> None:
    states = parse_state_word(text)
    assert states is None or (states and states <= set(AccountState))


@given(st.text(max_size=12))
@example("a:noca")
@example(":::")
def test_filters_from_forged_button_data_are_harmless(token: str) -> None:
    filters = GuardianFilters.from_token(token)
    assert filters.states <= set(AccountState)
    assert GuardianFilters.from_token(filters.token) == filters


@given(typed_text, typed_text)
@example("Éloïse-Marie", "de La Fontaine")
@example("😀", "")
@example("x" * 4000, "ß" * 4000)
def test_identifier_bases_are_short_lower_case_words(first_name: str, last_name: str) -> None:
    base = identifier_base(first_name, last_name)
    assert re.fullmatch(r"[a-z]+(\.[a-z]+)?", base), base
    assert len(base) <= IDENTIFIER_LENGTH - 4  # room for the homonyms' number


# --- Families: addresses, telephone numbers, codes, help texts ----------------------------------


@given(st.one_of(typed_text, st.emails().map(lambda e: f"  {e.upper()} ")))
@example("a@b.fr\n")
@example("é@é.fr")
def test_email_is_normalised_once_or_refused(text: str) -> None:
    address = normalise_email(text)
    if address is not None:
        assert "@" in address and address == address.strip()
        assert normalise_email(address) == address


_phones = st.lists(
    st.sampled_from([*"0123456789+ .-()/٠٦١", "00", "33", "06", "07"]), max_size=20
).map("".join)


@given(st.one_of(typed_text, _phones))
@example("٠٦١٢٣٤٥٦٧٨")
@example("010000000٠")  # was « +3310000000٠ »: the fast path kept the Arabic-Indic zero
@example("+" + "9" * 4000)
def test_phone_is_e164_or_none(text: str) -> None:
    number = normalise_phone(text)
    if number is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", number), number
        assert normalise_phone(number) == number


@given(typed_text)
@example("f_" + "é" * 32)
@example("f_" + "٣" * 32)
def test_link_code_shape_is_ascii(text: str) -> None:
    if looks_like_link_code(text):
        assert len(hash_link_code(text.strip())) == 64


@given(st.one_of(typed_text, st.text()))
def test_help_texts_are_kept_without_nul_and_bounded(text: str) -> None:
    kept = clean_text(text)
    assert kept is None or ("\x00" not in kept and 0 < len(kept) <= MAX_TEXT_LENGTH)
    assert all(word.isascii() for word in words(text))
    assert detect_intent(text) in (None, *Intent)


# --- Parsers that read the school's classes ----------------------------------------------------


def test_class_arguments_name_a_scope_or_the_known_classes(session: Session) -> None:
    school_id = school_with_roster(session)

    @settings(max_examples=examples(0.3))
    @given(typed_text)
    @example("CE2 - CM1")
    @example("niveau cm1")
    @example("x" * 4000)
    def resolve(text: str) -> None:
        try:
            resolved = resolve_scope(session, school_id=school_id, text=text)
        except UnknownClassError as error:
            _check_error(error)
            assert error.classes and error.levels
            return
        assert resolved.pupils >= 0 and resolved.guardians >= 0

    resolve()


def test_forged_scope_tokens_name_a_scope_of_the_school_or_are_refused(session: Session) -> None:
    school_id = school_with_roster(session)
    other_id = school_with_roster(session, uai="0759999Z")
    ours = {info.id for info in known_classes(session, school_id=school_id)}
    theirs = [info.id for info in known_classes(session, school_id=other_id)]
    levels = set(known_levels(session, school_id=school_id))

    @settings(max_examples=examples(0.3))
    @given(st.one_of(st.from_regex(r"\A[cle]\w{0,20}\Z"), st.text(max_size=20)))
    @example("c²")
    @example("c٣")
    @example("c" + "9" * 40)
    @example(f"c{theirs[0]}")
    @example("lCE1")
    def from_token(token: str) -> None:
        try:
            scope = scope_from_token(session, school_id=school_id, token=token).scope
        except UnknownClassError as error:
            _check_error(error)
            return
        assert scope.kind is not ScopeKind.CLASS or scope.class_id in ours
        assert scope.kind is not ScopeKind.LEVEL or scope.level in levels

    from_token()


def test_school_search_finds_registered_schools_or_nothing(session: Session) -> None:
    school_with_roster(session)

    @settings(max_examples=examples(0.3))
    @given(typed_text)
    @example("0751234X")
    @example("é" * 4000)
    def search(text: str) -> None:
        found = find_schools(session, text=text)
        assert len(found) <= 8

    search()
