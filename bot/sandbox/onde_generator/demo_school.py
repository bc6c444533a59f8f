"""The demo school: one fixed school, « École de démonstration Jules Ferry » (UAI 0590001A),
with the mess of real ONDE extractions planted on purpose. The sandbox imports it and the tests
read its files (tests/data/onde, rewritten by `DEMO_FILES_COMMAND`)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.sandbox.onde_generator.names import BOYS, DOMAINS, GIRLS, MEN, SURNAMES, WOMEN
from bot.sandbox.onde_generator.schools import (
    AGE,
    GUARDIAN_HEADER,
    LEVELS,
    PUPIL_HEADER,
    WITH_EMAIL_RATE,
    Child,
    GuardianEntry,
    SchoolBuilder,
    SchoolExtraction,
    encode,
    fold,
    guardian_head,
    pupil_row,
    weighted,
)

DEMO_UAI = "0590001A"
DEMO_SCHOOL_NAME = "École de démonstration Jules Ferry"
DEMO_CITY = "Lille"
DEMO_GUARDIANS = 226
# Its classes in school order: label, ONDE id, and how many pupils of each level.
DEMO_CLASSES: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = (
    ("PS-MS Mme Roux", "1000", (("PS", 14), ("MS", 12))),
    ("GS M. Petit", "1001", (("GS", 24),)),
    ("CP A", "1002", (("CP", 24),)),
    ("CP B", "1003", (("CP", 25),)),
    ("CE1", "1004", (("CE1", 22),)),
    ("CE2-CM1", "1005", (("CE2", 7), ("CM1", 12))),
    ("CM1", "1006", (("CM1", 22),)),
    ("CM1/2 Mme N'Diaye", "1007", (("CM1", 3), ("CM2", 15))),
)
# What `demo_school()` writes is committed as the tests' input; this command rewrites it.
DEMO_FILES_COMMAND = "python -m bot.sandbox.onde_generator tests/data/onde"
_DEMO_SEED = "demo-school"
_DEMO_SCHOOL_YEAR = 2025
# The families drawn around the planted ones: fewer guardians per pupil than a district's
# schools, as in this school's real counterpart (226 for 180 pupils).
_DEMO_CHILDREN = ((1, 62), (2, 30), (3, 7), (4, 1))
_DEMO_GUARDIAN_COUNTS = ((1, 25), (2, 65), (3, 7), (4, 3))
_DEMO_DRAWN_MALFORMED = 4
_AUTO = "@"  # a well-formed address made from the guardian's names


@dataclass(frozen=True)
class _Kid:
    first_name: str
    sex: str
    class_label: str
    level: str = ""  # needed in a multi-level class
    usage_name: str = ""
    shown_class: str = ""


@dataclass(frozen=True)
class _Parent:
    civility: str
    last_name: str
    first_name: str
    email: str = _AUTO  # _AUTO, "" (none) or exactly what the file says
    home: int = 0  # which of the family's homes
    usage_name: str = ""


@dataclass(frozen=True)
class _Family:
    name: str
    homes: tuple[tuple[str, str, str], ...]
    kids: tuple[_Kid, ...]
    parents: tuple[_Parent, ...]


_LILLE, _LOMME, _LAMBERSART = ("59000", "Lille"), ("59160", "Lomme"), ("59130", "Lambersart")

# The mess a real extraction holds, each case on purpose (the tests rely on every one of them).
_PLANTED = (
    # Three siblings in three classes, one guardian and so one account; no e-mail: paper.
    _Family(
        "ANDRÉ",
        (("102 place de l'Église", *_LILLE),),
        (
            _Kid("Lucie", "F", "CE1"),
            _Kid("Léa", "F", "GS M. Petit"),
            _Kid("Margaux", "F", "PS-MS Mme Roux", "MS"),
        ),
        (_Parent("MME", "ANDRÉ", "Agathe", email=""),),
    ),
    # Two different mothers named Léa DUBOIS (here and below): two guardians, two identifiers.
    _Family(
        "DUBOIS",
        (("18 place de l'Église", *_LILLE),),
        (_Kid("Emma", "F", "CP A"),),
        (_Parent("MME", "DUBOIS", "Léa"), _Parent("M.", "DUBOIS", "Ibrahima")),
    ),
    # Two pupils named Inès DUBOIS in CP A, told apart by their address (here and below).
    _Family(
        "DUBOIS",
        (("72 place de l'Église", *_LILLE),),
        (
            _Kid("Inès", "F", "CP A"),
            _Kid("Youssef", "M", "CM1"),
            _Kid("Loïc", "M", "CM1/2 Mme N'Diaye", "CM2"),
        ),
        (_Parent("MME", "LEROY", "Yasmine", email=""),),
    ),
    _Family(
        "DUBOIS",
        (("80 allée des Peupliers", *_LILLE),),
        (_Kid("Inès", "F", "CP A"),),
        (_Parent("MME", "DUBOIS", "Léa"), _Parent("M.", "DUBOIS", "João")),
    ),
    # Separated parents at two addresses (the pupils' Adresse1 and Adresse2), a step-mother.
    _Family(
        "MOREL",
        (("7 avenue Jean Jaurès", *_LILLE), ("45 rue Pasteur", *_LAMBERSART)),
        (_Kid("Côme", "M", "GS M. Petit"), _Kid("Nathan", "M", "CM1")),
        (
            _Parent("MME", "DE LA FONTAINE", "Anaïs"),
            _Parent("M.", "MOREL", "Benoît", home=1),
            _Parent("MME", "DA SILVA", "Manon", email="", home=1),
        ),
    ),
    # « Classes enfants » is not the pupils file's « Libellé classe » (two spaces included).
    _Family(
        "NOËL",
        (("3 rue des Écoles", *_LOMME),),
        (_Kid("Zoé", "F", "CE2-CM1", "CE2", shown_class="CLASSE  CE2"),),
        (_Parent("MME", "GUÉRIN", "Hélène"), _Parent("M.", "NOËL", "Joël", email="")),
    ),
    # Four children: more child groups on the row than the header lists.
    _Family(
        "FRANÇOIS",
        (("12 rue Gambetta", *_LILLE),),
        (
            _Kid("Gabriel", "M", "CM1/2 Mme N'Diaye", "CM2"),
            _Kid("Louise", "F", "CE1"),
            _Kid("Jules", "M", "CP B"),
            _Kid("Rose", "F", "PS-MS Mme Roux", "PS"),
        ),
        (_Parent("MME", "FRANÇOIS", "Clémence"), _Parent("M.", "FRANÇOIS", "Stéphane")),
    ),
    # A mother known by her usage name; an address with spaces and capitals, valid once tidied.
    _Family(
        "LE GALL",
        (("5 allée des Tilleuls", *_LAMBERSART),),
        (_Kid("Maël", "M", "CP B"), _Kid("Nina", "F", "PS-MS Mme Roux", "MS")),
        (
            _Parent("MME", "N'DIAYE", "Aïssatou", usage_name="LE GALL"),
            _Parent("M.", "LE GALL", "Yannick", email=" Yannick.LeGall@Orange.FR "),
        ),
    ),
    # A pupil with a usage name (« Nom d'usage élève »), which the guardians' rows give too.
    _Family(
        "LEGRAND",
        (("21 rue Molière", *_LILLE),),
        (_Kid("Chloé", "F", "CE1", usage_name="MARTIN-LEGRAND"),),
        (_Parent("MME", "MARTIN", "Sophie"), _Parent("M.", "LEGRAND", "Julien")),
    ),
    # Malformed addresses, one kind each: imported without them, with a warning per line.
    _Family(
        "HADDAD",
        (("9 rue Carnot", *_LILLE),),
        (_Kid("Sami", "M", "CM1"),),
        (
            _Parent("MME", "HADDAD", "Nadia", email="nadia.haddad@@free.fr"),
            _Parent("M.", "HADDAD", "Karim", email="karim.haddad@gmail"),
        ),
    ),
    _Family(
        "PETIT",
        (("14 chemin du Moulin", *_LOMME),),
        (_Kid("Rayan", "M", "CE2-CM1", "CM1"), _Kid("Noémie", "F", "CE2-CM1", "CE2")),
        (
            _Parent("MME", "PETIT", "Sandrine", email="pas d'adresse"),
            _Parent("M.", "PETIT", "Olivier"),
        ),
    ),
    _Family(
        "ROUX",
        (("33 boulevard Victor Hugo", *_LILLE),),
        (_Kid("Hugo", "M", "CP B"),),
        (
            _Parent("MME", "ROUX", "Élodie", email="elodie.roux.orange.fr"),
            _Parent("M.", "ROUX", "Thierry", email="thierry.roux@orange.fr, elodie.roux@orange.fr"),
        ),
    ),
    _Family(
        "LAMBERT",
        (("27 rue de la Paix", "59800", "Lille"),),
        (_Kid("Mia", "F", "GS M. Petit"),),
        (
            _Parent("MME", "LAMBERT", "Julie", email="julie.lambert @ laposte.net"),
            _Parent("M.", "LAMBERT", "Mamadou", email="mamadou.lambert@"),
        ),
    ),
    _Family(
        "SAINT-EXUPÉRY",
        (("40 rue Voltaire", *_LILLE),),
        (_Kid("Théo", "M", "CM1/2 Mme N'Diaye", "CM2"),),
        (
            _Parent("MME", "SAINT-EXUPÉRY", "Chloé", email="x@y"),
            _Parent("M.", "SAINT-EXUPÉRY", "Raphaël"),
        ),
    ),
)


# Well-formed once the spaces around it are gone: the generator's own view, for its count of
# malformed addresses (the importer decides with email-validator).
_WELL_FORMED = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


_ONDE_IDS = {label: onde_id for label, onde_id, _sizes in DEMO_CLASSES}
_LEVELS_OF = {label: [level for level, _n in sizes] for label, _id, sizes in DEMO_CLASSES}


def _key(last_name: str, first_name: str) -> tuple[str, str]:
    """Two people are homonyms when their names fold to the same letters."""
    return fold(last_name), fold(first_name)


def _malformed(local: str, domain: str, kind: int) -> str:
    """A malformed address of one of the kinds typed by hand: @@, no dot, no @, spaces."""
    return (
        f"{local}@@{domain}",
        f"{local}@{domain.split('.')[0]}",
        f"{local}.{domain}",
        f"{local} @ {domain}",
    )[kind % 4]


class _DemoBuilder(SchoolBuilder):
    """The demo school: the planted families, then families drawn from the seed to fill each
    class to its size and the school to `DEMO_GUARDIANS` guardians."""

    def __init__(self) -> None:
        super().__init__(
            random.Random(_DEMO_SEED),
            pupils=sum(count for *_class, sizes in DEMO_CLASSES for _level, count in sizes),
            school_year=_DEMO_SCHOOL_YEAR,
            class_id_base=0,
            ines=set(),
        )
        self.home = _LILLE
        self.families: list[list[GuardianEntry]] = []
        # Names already given (folded, as the importer compares them): no homonyms but the
        # planted ones.
        self.pupil_names: set[tuple[str, str]] = set()
        self.guardian_names: set[tuple[str, str]] = set()
        self.streets: set[str] = set()
        self.emails: set[str] = set()
        # The places still free in each level: (class label, ONDE id), one per pupil.
        self.slots: dict[str, list[tuple[str, str]]] = {level: [] for level in LEVELS}
        for label, onde_id, sizes in DEMO_CLASSES:
            for level, count in sizes:
                self.slots[level] += [(label, onde_id)] * count

    def build_demo(self) -> tuple[bytes, bytes]:
        for family in _PLANTED:
            self._plant(family)
        self._fill()
        pupil_rows = [pupil_row(child) for child in self.children]
        self.rng.shuffle(pupil_rows)
        self.rng.shuffle(self.families)
        guardian_rows = [_demo_guardian_row(g) for family in self.families for g in family]
        # ONDE sometimes writes a summary line under the data.
        footer = f"Nombre d'élèves : {len(self.children)}"
        return encode(PUPIL_HEADER, pupil_rows, footer), encode(GUARDIAN_HEADER, guardian_rows)

    # -- people --------------------------------------------------------------------------

    def _address(self) -> tuple[str, str, str]:
        while True:  # never another family's street: homonyms are told apart by address
            address = super()._address()
            if address[0] not in self.streets:
                self.streets.add(address[0])
                return address

    def _born(self, level: str) -> date:
        return date(self.school_year - AGE[level], 1, 1) + timedelta(days=self.rng.randrange(365))

    def _first_name(
        self, pool: tuple[str, ...], last_name: str, taken: set[tuple[str, str]]
    ) -> str:
        name = self.rng.choice([name for name in pool if _key(last_name, name) not in taken])
        taken.add(_key(last_name, name))
        return name

    def _auto_email(self, first_name: str, last_name: str) -> str:
        while True:
            local = f"{fold(first_name)}.{fold(last_name)}{self.rng.randint(1, 99)}"
            address = f"{local}@{self.rng.choice(DOMAINS)}"
            if address not in self.emails:
                self.emails.add(address)
                return address

    def _person(
        self, parent: _Parent, address: tuple[str, str, str], children: list[Child]
    ) -> GuardianEntry:
        rng = self.rng
        email = parent.email
        if email == _AUTO:
            email = self._auto_email(parent.first_name, parent.usage_name or parent.last_name)
        elif email and not _WELL_FORMED.fullmatch(email.strip()):
            self.malformed += 1
        return GuardianEntry(
            civility=parent.civility,
            usage_name=parent.usage_name,
            last_name=parent.last_name,
            first_name=parent.first_name,
            address=address,
            email=email,
            phone_home=self._phone(False) if rng.random() < 0.15 else "",
            phone_work=self._phone(False) if rng.random() < 0.05 else "",
            phone_mobile=self._phone(True) if rng.random() < 0.9 else "",
            children=children,
        )

    # -- the planted families --------------------------------------------------------------

    def _take_place(self, label: str, level: str) -> str:
        places = self.slots[level]
        index = places.index((label, _ONDE_IDS[label]))
        return places.pop(index)[1]

    def _plant(self, family: _Family) -> None:
        self.streets.update(street for street, _postcode, _city in family.homes)
        children = []
        for kid in family.kids:
            level = kid.level or _LEVELS_OF[kid.class_label][0]
            children.append(
                Child(
                    last_name=family.name,
                    first_name=kid.first_name,
                    sex=kid.sex,
                    birth_date=self._born(level),
                    level=level,
                    ine=self._ine(),
                    address=family.homes[0],
                    class_label=kid.class_label,
                    class_id=self._take_place(kid.class_label, level),
                    usage_name=kid.usage_name,
                    second_address=family.homes[1] if len(family.homes) > 1 else None,
                    shown_class=kid.shown_class,
                )
            )
            self.pupil_names.add(_key(family.name, kid.first_name))
        self.children += children
        self.guardian_names.update(_key(p.last_name, p.first_name) for p in family.parents)
        self.families.append(
            [self._person(p, family.homes[p.home], children) for p in family.parents]
        )

    # -- the families drawn around them ----------------------------------------------------

    def _fill(self) -> None:
        rng = self.rng
        families: list[list[tuple[str, str, str]]] = []
        while any(self.slots.values()):
            levels = [level for level in LEVELS if self.slots[level]]
            wanted = min(weighted(rng, _DEMO_CHILDREN), len(levels))
            places = []
            for level in sorted(rng.sample(levels, wanted), key=LEVELS.index):
                label, onde_id = self.slots[level].pop(rng.randrange(len(self.slots[level])))
                places.append((label, onde_id, level))
            families.append(places)
        # Guardians per family drawn, then evened out to the school's total.
        missing = DEMO_GUARDIANS - sum(len(family) for family in self.families)
        counts = [weighted(rng, _DEMO_GUARDIAN_COUNTS) for _ in families]
        while sum(counts) > missing:
            counts[rng.choice([i for i, count in enumerate(counts) if count > 1])] -= 1
        while sum(counts) < missing:
            counts[rng.choice([i for i, count in enumerate(counts) if count < 4])] += 1
        planted = len(self.families)
        for places, count in zip(families, counts, strict=True):
            self._drawn_family(places, count)
        with_email = [g for family in self.families[planted:] for g in family if g.email]
        for kind, guardian in enumerate(rng.sample(with_email, _DEMO_DRAWN_MALFORMED)):
            local, domain = guardian.email.split("@")
            guardian.email = _malformed(local, domain, kind)
            self.malformed += 1

    def _drawn_family(self, places: list[tuple[str, str, str]], guardians: int) -> None:
        rng = self.rng
        family_name = rng.choice(SURNAMES)
        if rng.random() < 0.05:
            family_name = f"{family_name}-{rng.choice(SURNAMES)}"
        home = self._address()
        second_home = self._address() if guardians >= 2 and rng.random() < 0.2 else None
        children = []
        for label, onde_id, level in places:
            sex = rng.choice("MF")
            children.append(
                Child(
                    last_name=family_name,
                    first_name=self._first_name(
                        GIRLS if sex == "F" else BOYS, family_name, self.pupil_names
                    ),
                    sex=sex,
                    birth_date=self._born(level),
                    level=level,
                    ine=self._ine(),
                    address=home,
                    class_label=label,
                    class_id=onde_id,
                    second_address=second_home,
                )
            )
        self.children += children
        # (woman, last name, address): a mother (her own name in about half the families), a
        # father, then step-parents at one home or the other; a lone guardian is most often
        # the mother.
        woman = guardians > 1 or rng.random() < 0.8
        mother_name = rng.choice(SURNAMES) if rng.random() < 0.5 else family_name
        people = [(woman, mother_name if woman else family_name, home)]
        if guardians >= 2:
            people.append((False, family_name, second_home or home))
        for extra in range(guardians - 2):
            place = home if extra % 2 else second_home or home
            people.append((extra % 2 == 1, rng.choice(SURNAMES), place))
        family = []
        for is_woman, last_name, address in people:
            names = WOMEN if is_woman else MEN
            first_name = self._first_name(names, last_name, self.guardian_names)
            email = _AUTO if rng.random() < WITH_EMAIL_RATE else ""
            parent = _Parent("MME" if is_woman else "M.", last_name, first_name, email)
            family.append(self._person(parent, address, children))
        rng.shuffle(family)
        self.families.append(family)


def _demo_guardian_row(guardian: GuardianEntry) -> list[str]:
    row = guardian_head(guardian)
    for child in guardian.children:
        shown = child.shown_class or child.class_label
        row += [child.usage_name, child.last_name, child.first_name, shown]
    return row


def demo_school() -> SchoolExtraction:
    """The sandbox's demo school, « École de démonstration Jules Ferry » (UAI 0590001A): 180
    pupils in 8 classes, 226 guardians, the same bytes every time.

    Around families drawn from a fixed seed, it plants what real extractions hold: siblings
    sharing their guardians (Agathe ANDRÉ, three children), two mothers named Léa DUBOIS, two
    pupils named Inès DUBOIS in « CP A » at two addresses, separated parents and a
    step-mother, a usage name on a mother and on a pupil, « CLASSE  CE2 » for a pupil of
    « CE2-CM1 », four children on one row, 12 malformed e-mail addresses of several kinds and
    one valid once tidied, multi-level classes, a footer line under the pupils.
    """
    builder = _DemoBuilder()
    pupils_csv, guardians_csv = builder.build_demo()
    return SchoolExtraction(
        uai=DEMO_UAI,
        name=DEMO_SCHOOL_NAME,
        city=DEMO_CITY,
        pupils_csv=pupils_csv,
        guardians_csv=guardians_csv,
        pupils=len(builder.children),
        guardians=sum(len(family) for family in builder.families),
        classes=len(DEMO_CLASSES),
        malformed_emails=builder.malformed,
    )
