"""The translation gate: every message id in the code has a French translation, translations
keep the placeholders, HTML tags and plural forms of their ids, and the language follows each
update or task, never a global.

When a test here fails on a missing entry: run `make i18n` (it extracts the ids and adds them,
empty, to every catalog), then write the French in locales/fr/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import string
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from bot import i18n
from bot.i18n import _, current_language, ngettext, set_language, use_language

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
FRENCH_PO = "locales/fr/LC_MESSAGES/messages.po"
CATALOGS = sorted(i18n.LOCALES_DIR.glob(f"*/LC_MESSAGES/{i18n.DOMAIN}.po"))

MsgId = str | tuple[str, ...] | list[str]

# Where the texts a family reads live (the bot's family side, the portal, e-mails, letters):
# they must be complete in every family language. The director's side is French and English.
FAMILY_SOURCES = (
    "handlers/family",
    "handlers/helpdesk/conversation.py",
    "handlers/helpdesk/guided.py",
    "handlers/helpdesk/filing.py",
    "handlers/helpdesk/family_requests.py",
    "handlers/helpdesk/texts.py",
    "handlers/helpdesk/buttons.py",
    "handlers/helpdesk/followup.py",
    "handlers/start.py",
    "handlers/help.py",
    "handlers/menus.py",
    "handlers/keyboards.py",
    "handlers/language.py",
    "bot/portal/",
    "bot/services/portal/",
    "bot/services/family/",
    "bot/services/accounts/",
    "bot/services/mail/",
    "bot/services/letters/content.py",
    "bot/services/letters/rendering.py",
    "bot/services/letters/wording.py",
    "bot/jobs/reminders.py",
    "bot/services/helpdesk/",
)
# In the family folders above, but read by the operator only (start-up errors of the webhook
# and of the portal's own processes): French and English, as the CLI.
OPERATOR_SOURCES = ("bot/portal/webhook.py", "bot/portal/standalone.py")
FAMILY_LANGUAGES = tuple(code for code in i18n.SUPPORTED_LANGUAGES if code not in ("fr", "en"))


def _key(message_id: MsgId) -> str:
    """How a catalog keys a message: its singular id."""
    return message_id if isinstance(message_id, str) else message_id[0]


def _extract() -> dict[str, tuple[MsgId, list[str]]]:
    """Every message id of the source tree, as `make i18n` finds it: key → (id, locations)."""
    with BABEL_CFG.open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config, str(BABEL_CFG))
    found: dict[str, tuple[MsgId, list[str]]] = {}
    # No default keywords: babel.cfg names them (`_`, `N_`, `ngettext:1,2`), as for pybabel.
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={}
    ):
        message_id: MsgId = message if isinstance(message, str) else tuple(message)
        if isinstance(message_id, tuple) and not all(message_id):
            continue  # ngettext with a computed argument: nothing to translate statically
        entry = found.setdefault(_key(message_id), (message_id, []))
        entry[1].append(f"{filename}:{line}")
    return found


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[MsgId, list[str]]]:
    return _extract()


def _read(path: Path) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file, locale=path.parent.parent.name)


def _forms(message: Message) -> list[str]:
    string_ = message.string
    return [string_] if isinstance(string_, str) else list(string_ or ())


def _is_translated(message: Message) -> bool:
    forms = _forms(message)
    return bool(forms) and all(forms) and not message.fuzzy


def _where(locations: list[str]) -> str:
    return ", ".join(locations[:3]) + (" …" if len(locations) > 3 else "")


def _shown(message_id: MsgId) -> str:
    return repr(message_id if isinstance(message_id, str) else message_id[0])


# --- French is complete ----------------------------------------------------------------------


def test_the_extraction_finds_the_messages_of_the_code(
    extracted: dict[str, tuple[MsgId, list[str]]],
) -> None:
    # A babel.cfg that matched nothing would make every test below pass vacuously.
    folders = {
        location.split("/")[0] for _id, locations in extracted.values() for location in locations
    }
    assert {"bot", "handlers"} <= folders
    # The portal's Jinja2 templates too (babel.cfg's jinja2 section).
    assert any(
        location.startswith("bot/portal/templates/")
        for _id, locations in extracted.values()
        for location in locations
    )
    assert len(extracted) > 100
    assert any(isinstance(message_id, tuple) for message_id, _locations in extracted.values())


def test_every_message_id_has_a_french_translation(
    extracted: dict[str, tuple[MsgId, list[str]]],
) -> None:
    french = _read(ROOT / FRENCH_PO)
    missing, fuzzy, wrong_kind = [], [], []
    for key, (message_id, locations) in sorted(extracted.items()):
        entry = french.get(key)
        line = f"  {_where(locations)}: {_shown(message_id)}"
        if entry is None or not any(_forms(entry)):
            missing.append(line)
        elif entry.fuzzy:
            fuzzy.append(line)
        elif not _is_translated(entry):
            missing.append(line + " (a plural form is empty)")
        elif isinstance(message_id, tuple) != entry.pluralizable:
            wrong_kind.append(line + " (singular in one place, plural in the other)")
    problems = []
    if missing:
        problems.append(f"{len(missing)} message id(s) without a French translation:")
        problems += missing
    if fuzzy:
        problems.append(
            f"{len(fuzzy)} French translation(s) marked fuzzy (check them, then delete "
            "their «#, fuzzy» line):"
        )
        problems += fuzzy
    if wrong_kind:
        problems.append("Catalog entries out of date:")
        problems += wrong_kind
    assert not problems, (
        "\n".join(problems)
        + f"\nRun `make i18n`, then write the French of these entries in {FRENCH_PO}."
    )


# --- What every translation must keep --------------------------------------------------------


def _placeholders(text: str) -> set[str]:
    """The `{name}` fields of a str.format template, with their conversion and format spec."""
    return {
        name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^<>]*)?/?>")


def _tags(text: str) -> Counter[str]:
    return Counter(match[0] for match in _TAG.finditer(text))


def _nesting_error(text: str) -> str | None:
    """Why the tags of `text` are not well nested, or None."""
    open_tags: list[str] = []
    for match in _TAG.finditer(text):
        name = match[1].lower()
        if match[0].startswith("</"):
            if not open_tags or open_tags.pop() != name:
                return f"unexpected {match[0]}"
        elif not match[0].endswith("/>"):
            open_tags.append(name)
    return f"<{open_tags[-1]}> not closed" if open_tags else None


def _id_forms(message: Message) -> list[str]:
    return [message.id] if isinstance(message.id, str) else list(message.id)


def _translation_problems(message: Message) -> list[str]:
    problems = []
    ids = _id_forms(message)
    try:
        # A plural entry has the fields of its singular and plural ids, in every form.
        expected_fields = set().union(*(_placeholders(text) for text in ids))
    except ValueError as error:
        return [f"the id is not a valid format string ({error})"]
    expected_tags = _tags(ids[0])
    for index, form in enumerate(_forms(message)):
        if not form:
            continue
        where = f"msgstr[{index}]" if message.pluralizable else "msgstr"
        try:
            fields = _placeholders(form)
        except ValueError as error:
            problems.append(f"{where} is not a valid format string ({error})")
            continue
        # A form for one exact number (Arabic's « one » and « two ») may say it in words and
        # drop the count; the last form (« other ») always keeps every placeholder.
        exact_form = message.pluralizable and index < len(_forms(message)) - 1
        if fields != expected_fields and not (exact_form and fields < expected_fields):
            problems.append(
                f"{where} has the placeholders {sorted(fields)}, the id {sorted(expected_fields)}"
            )
        if _tags(form) != expected_tags:
            problems.append(
                f"{where} has the tags {sorted(_tags(form).elements())}, "
                f"the id {sorted(expected_tags.elements())}"
            )
        elif nesting := _nesting_error(form):
            problems.append(f"{where}: {nesting}")
    return problems


@pytest.mark.parametrize("path", CATALOGS, ids=[p.parent.parent.name for p in CATALOGS])
def test_translations_keep_the_placeholders_and_tags_of_their_ids(path: Path) -> None:
    catalog = _read(path)
    problems = [
        f"  {_shown(message.id)}: {problem}"
        for message in catalog
        if message.id
        for problem in _translation_problems(message)
    ]
    relative = path.relative_to(ROOT)
    assert not problems, f"{relative}: {len(problems)} problem(s)\n" + "\n".join(problems)


@pytest.mark.parametrize("path", CATALOGS, ids=[p.parent.parent.name for p in CATALOGS])
def test_plural_entries_have_the_plural_forms_of_their_language(path: Path) -> None:
    catalog = _read(path)
    expected = Catalog(locale=catalog.locale).num_plurals  # CLDR's count for the language
    assert catalog.num_plurals == expected, f"{path.name}: header says {catalog.plural_forms}"
    wrong = [
        f"  {_shown(message.id)}: {len(_forms(message))} forms instead of {expected}"
        for message in catalog
        if message.id and message.pluralizable and len(_forms(message)) != expected
    ]
    assert not wrong, f"{path.relative_to(ROOT)}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("language", FAMILY_LANGUAGES)
def test_every_family_text_is_translated_in_every_family_language(
    extracted: dict[str, tuple[MsgId, list[str]]], language: str
) -> None:
    catalog = _read(i18n.catalog_path(language))
    missing = []
    for key, (message_id, locations) in sorted(extracted.items()):
        if not any(
            location.startswith(FAMILY_SOURCES) and not location.startswith(OPERATOR_SOURCES)
            for location in locations
        ):
            continue
        entry = catalog.get(key)
        if entry is None or not _is_translated(entry):
            missing.append(f"  {_where(locations)}: {_shown(message_id)}")
    assert not missing, (
        f"{len(missing)} family text(s) not translated (or fuzzy) in {language} "
        f"(locales/{language}/LC_MESSAGES/messages.po; glossary: docs/glossary/{language}.md):\n"
        + "\n".join(missing)
    )


def test_the_catalogs_are_french_and_english_at_least() -> None:
    languages = {path.parent.parent.name for path in CATALOGS}
    assert {"fr", "en"} <= languages
    assert languages <= set(i18n.SUPPORTED_LANGUAGES)


# --- French plurals: three forms (CLDR), chosen by the number ------------------------------


def test_french_has_three_plural_forms_and_ngettext_picks_the_right_one() -> None:
    french = _read(ROOT / FRENCH_PO)
    assert french.num_plurals == 3
    plural = i18n.translations("fr").plural  # type: ignore[attr-defined]
    # one: 0 and 1; many: whole millions (« 1 000 000 de … »); other: the rest.
    assert [plural(n) for n in (0, 1, 2, 10, 999_999, 1_000_000, 1_000_001, 2_000_000)] == [
        0,
        0,
        2,
        2,
        2,
        1,
        2,
        1,
    ]
    with use_language("fr"):
        assert ngettext("{count} pupil", "{count} pupils", 0) == "{count} élève"
        assert ngettext("{count} pupil", "{count} pupils", 1) == "{count} élève"
        assert ngettext("{count} pupil", "{count} pupils", 2) == "{count} élèves"
        assert ngettext("{count} pupil", "{count} pupils", 1_000_000) == "{count} élèves"
    with use_language("en"):
        assert ngettext("{count} pupil", "{count} pupils", 0) == "{count} pupils"
        assert ngettext("{count} pupil", "{count} pupils", 1) == "{count} pupil"


def test_the_account_states_have_the_official_french_labels() -> None:
    from bot.services.roster.states import state_label
    from models import AccountState

    with use_language("fr"):
        labels = [state_label(state) for state in AccountState]
    assert labels == ["Non notifié", "Notifié et non activé", "En cours d'activation", "Activé"]


# --- Which language, and the fallbacks -------------------------------------------------------


def test_french_for_fr_and_the_english_id_for_en() -> None:
    with use_language("fr"):
        assert _("Whole school") == "Toute l'école"
    with use_language("en"):
        assert _("Whole school") == "Whole school"


@pytest.fixture
def partial_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The real French and English catalogs, and a Spanish one with a single entry."""
    for language in ("fr", "en"):
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        shutil.copy(i18n.catalog_path(language), folder / f"{i18n.DOMAIN}.po")
    spanish = Catalog(locale="es")
    spanish.add("Whole school", "Toda la escuela")
    spanish.add("Everyone", "")  # not translated yet: falls back like a missing entry
    spanish.add(("{count} pupil", "{count} pupils"), ("", ""))
    (tmp_path / "es" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "es" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("wb") as po_file:
        write_po(po_file, spanish)
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    i18n.translations.cache_clear()
    yield
    i18n.translations.cache_clear()


@pytest.mark.usefixtures("partial_catalogs")
def test_a_language_falls_back_to_french_entry_by_entry_then_to_the_id() -> None:
    with use_language("es"):
        assert _("Whole school") == "Toda la escuela"
        assert _("Everyone") == "Tous"  # empty in Spanish: French
        assert _("Level {level}") == "Niveau {level}"  # absent in Spanish: French
        assert ngettext("{count} pupil", "{count} pupils", 2) == "{count} élèves"
        assert _("An id nobody translated") == "An id nobody translated"
    with use_language("tr"):  # no catalog at all
        assert _("Whole school") == "Toute l'école"
    with use_language("en"):  # English ends at the id, never French
        assert _("Everyone") == "Everyone"


def test_an_unsupported_language_is_french() -> None:
    with use_language("de-DE"):
        assert current_language() == "fr"
        assert _("Whole school") == "Toute l'école"
    with use_language("pt-BR"):
        assert current_language() == "pt"


async def test_each_task_keeps_its_own_language() -> None:
    """Two updates handled at once: each task sees the language it set, and so do the
    worker threads it runs services in (asyncio.to_thread copies the context)."""
    both_set = asyncio.Barrier(2)

    async def handle(language: str) -> tuple[str, str, str]:
        set_language(language)
        await both_set.wait()  # the other task has set its language too
        await asyncio.sleep(0)
        in_thread = await asyncio.to_thread(lambda: _("Whole school"))
        return current_language(), _("Whole school"), in_thread

    set_language("fr")
    french, english = await asyncio.gather(handle("fr"), handle("en"))

    assert french == ("fr", "Toute l'école", "Toute l'école")
    assert english == ("en", "Whole school", "Whole school")
    assert current_language() == "fr"  # the tasks' choices did not leak out


def test_use_language_restores_the_previous_language() -> None:
    before = current_language()
    with use_language("en"):
        with use_language("fr"):
            assert current_language() == "fr"
        assert current_language() == "en"
    assert current_language() == before


# --- The catalogs themselves -----------------------------------------------------------------


@pytest.mark.parametrize("path", CATALOGS, ids=[p.parent.parent.name for p in CATALOGS])
def test_every_catalog_compiles_as_the_bot_loads_it(path: Path) -> None:
    compiled = i18n._load_catalog(path.parent.parent.name)
    assert compiled is not None
    translated = sum(1 for message in _read(path) if message.id and _is_translated(message))
    # The compiled catalog holds every translated entry (singular or each plural form), and
    # nothing else: an entry left empty must fall through to the next language.
    keys: list[object] = list(vars(compiled)["_catalog"])
    singular = sum(1 for key in keys if isinstance(key, str) and key)  # "" is the header
    plural = len({key[0] for key in keys if isinstance(key, tuple)})
    assert singular + plural == translated


def test_arabic_has_six_plural_forms_and_ngettext_picks_each() -> None:
    # CLDR: 0 zero, 1 one, 2 two, 3–10 few, 11–99 many, 100 other.
    forms = {
        count: i18n.translations("ar").ngettext("{count} pupil", "{count} pupils", count)
        for count in (0, 1, 2, 3, 11, 100)
    }
    # « one », « two », « few », « many » and « other » are five different words; zero may
    # read like « other ».
    assert len({forms[count] for count in (1, 2, 3, 11, 100)}) == 5, forms
    assert "{count}" in forms[100] and "{count}" in forms[3] and "{count}" in forms[0]


def test_dates_and_numbers_follow_the_language() -> None:
    day = date(2027, 1, 15)
    with use_language("es"):
        assert "enero" in i18n.format_date(day)
    with use_language("tr"):
        assert "Ocak" in i18n.format_date(day)
    with use_language("pt"):
        assert "janeiro" in i18n.format_date(day)
    with use_language("ar"):
        assert "يناير" in i18n.format_date(day)
