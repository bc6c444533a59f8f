"""What a parent's free text is about (« j'ai perdu mon identifiant », « forgot password »), so the
bot can propose the matching help path instead of « I did not understand ».

Keyword rules on an accent- and case-free form of the text, tried in order (the most specific
first); a few key words also match with a typo. No model: predictable and easy to extend.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import anyascii


class Intent(enum.StrEnum):
    """A help path the bot can propose."""

    IDENTIFIER = "identifier"
    PASSWORD = "password"
    ACTIVATION = "activation"
    CONFIRMATION_EMAIL = "confirmation_email"
    BIRTH_DATE = "birth_date"
    MISSING_CHILD = "missing_child"
    HELP_STATUS = "help_status"


@dataclass(frozen=True, slots=True)
class _Rule:
    intent: Intent
    pattern: re.Pattern[str] | None = None
    # Words that also match with a typo (« identifient », « pasword »).
    fuzzy: tuple[str, ...] = ()


def _words(*alternatives: str) -> str:
    return r"\b(?:" + "|".join(alternatives) + r")\b"


_CHILD = _words(
    "fils", "fille", "filles", "enfant", "enfants", "garcon", "gamin", "gamine", "petit",
    "petite", "son", "daughter", "child", "children", "kid", "kids",
)  # fmt: skip
_ABSENT = _words(
    r"(?:n )?apparai\w*",
    "manque",
    "manquent",
    "manquant",
    "introuvable",
    r"pas (?:la|dedans|dans|sur|visible|affiche|liste|inscrit)",
    "missing",
    r"not (?:shown|listed|there|appearing|visible|on)",
    r"(?:doesn t|does not|don t|do not) (?:appear|show)",
)
_MAIL = _words(r"e ?mails?", "mails?", "courriels?", "mel", "liens?", "links?")
_NOT_RECEIVED = _words(
    r"(?:pas|jamais|rien|aucun|toujours pas) (?:\w+ ){0,2}re[cs]ue?s?",
    r"(?:pas|jamais) (?:\w+ ){0,2}arrivee?s?",
    r"(?:didn t|did not|never|haven t|have not|not) (?:\w+ ){0,2}(?:get|got|receive|received)",
)

_RULES: tuple[_Rule, ...] = (
    _Rule(
        Intent.HELP_STATUS,
        re.compile(
            _words(r"(?:ma|mes|notre|nos|my|our) (?:\w+ )?(?:demandes?|requests?)")
            + "|"
            + _words(r"d \d{4} \d{1,5}", r"suivi (?:de )?(?:ma|mon|mes)", r"status of my")
        ),
    ),
    _Rule(
        Intent.BIRTH_DATE,
        re.compile(_words("naissance", r"birth ?dates?", "date of birth", "birthday", "dob")),
    ),
    _Rule(Intent.MISSING_CHILD, re.compile(f"{_CHILD}.*{_ABSENT}|{_ABSENT}.*{_CHILD}")),
    _Rule(
        Intent.CONFIRMATION_EMAIL,
        re.compile(
            _words(
                r"(?:e ?mail|mail|courriel|lien|message) (?:de |d )?confirm\w*",
                r"confirm\w* (?:e ?mail|mail|link|message)",
                r"confirm\w* (?:my|mon|mon adresse|my address)",
            )
        ),
    ),
    _Rule(
        Intent.IDENTIFIER,
        re.compile(
            _words(
                r"in?dentif\w*",
                "identifiers?",
                "logins?",
                r"user ?names?",
                r"nom d utilisateur",
                r"(?:mon|my) id",
            )
        ),
        fuzzy=("identifiant", "username"),
    ),
    _Rule(
        Intent.PASSWORD,
        re.compile(
            _words(
                r"mots? (?:de )?pass?e?s?",
                "motdepasse",
                "mdp",
                r"pass ?words?",
                "passwd",
                "pwd",
                r"code provisoire",
            )
        ),
        fuzzy=("password", "motdepasse"),
    ),
    _Rule(
        Intent.ACTIVATION,
        re.compile(_words(r"activ(?:er|e|ez|ation|ate|ated|ating)", r"reactiv\w*")),
        fuzzy=("activation", "activer"),
    ),
    _Rule(
        Intent.CONFIRMATION_EMAIL,
        re.compile(f"{_NOT_RECEIVED}.*{_MAIL}|{_MAIL}.*{_NOT_RECEIVED}|" + r"\bconfirm\w*"),
        fuzzy=("confirmation",),
    ),
    _Rule(
        Intent.PASSWORD,
        re.compile(_words(r"(?:me )?connecter", "connexion", r"log ?in", r"sign ?in")),
    ),
)
# Below this, two words are different words, not one with a typo.
_FUZZY_RATIO = 0.85
_FUZZY_MIN_LENGTH = 6


def normalise_text(text: str) -> str:
    """The text without accents, case or punctuation: « J'ai reçu l'e-mail » → « j ai recu l e
    mail »."""
    plain = anyascii.anyascii(text).casefold()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def _near(word: str, wanted: tuple[str, ...]) -> bool:
    if len(word) < _FUZZY_MIN_LENGTH:
        return False
    return any(SequenceMatcher(None, word, target).ratio() >= _FUZZY_RATIO for target in wanted)


def detect_intent(text: str) -> Intent | None:
    """The help path `text` asks for, or None when it is about something else."""
    plain = normalise_text(text)
    if not plain:
        return None
    words = plain.split()
    for rule in _RULES:
        if rule.pattern is not None and rule.pattern.search(plain):
            return rule.intent
        if rule.fuzzy and any(_near(word, rule.fuzzy) for word in words):
            return rule.intent
    return None
