"""ONDE extractions as ONDE writes them, drawn from a seed: the file format (headers,
encoding, rows) and the schools and districts of any size the benchmarks import.

Files look like the real thing: the exact ONDE headers, Windows-1252, `;`, CRLF, rows trimmed
after their last child group, French names with accents and particles, multi-level classes
(« CE2-CM1 Mme Roux », « CM1/2 »), siblings sharing their guardians, separated parents at two
addresses, step-parents, about 1.5 guardians per pupil, a few malformed e-mail addresses and a
few « Classes enfants » that differ from the pupils file's label. The same seed gives the same
bytes.
"""

from __future__ import annotations

import random
import string
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bot.sandbox.onde_generator.names import (
    BOYS,
    CITIES,
    DOMAINS,
    GIRLS,
    MEN,
    STREET_NAMES,
    STREET_TYPES,
    SURNAMES,
    TEACHERS,
    WOMEN,
)

ENCODING = "cp1252"
LINE_BREAK = "\r\n"

# The headers of the real extractions, exactly as ONDE writes them (leading space of « Cycle »
# included); the Responsables header lists three child groups, rows carry as many as needed.
PUPIL_HEADER = (
    "Nom élève;Nom d'usage élève;Prénom élève;Date naissance;Sexe;INE;Adresse1;Cp1;Commune1;"
    "Pays1;Adresse2;Cp2;Commune2;Pays2; Cycle;Niveau;Libellé classe;Identifiant classe;"
    "Attestation fournie;Autorisation associations;Autorisation photo;Décision de passage"
)
_CHILD_GROUP = "Nom d'usage enfant;Nom de famille enfant;Prénom enfant;Classes enfants"
GUARDIAN_HEADER = (
    "Civilité Responsable;Nom usage responsable;Nom responsable;Prénom responsable;"
    "Adresse responsable;CP responsable;Commune responsable;Pays;Courriel;Téléphone domicile;"
    "Téléphone travail;Téléphone portable;" + ";".join([_CHILD_GROUP] * 3)
)

LEVELS = ("PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")
_CYCLES = {
    "PS": "MATERNELLE",
    "MS": "MATERNELLE",
    "GS": "MATERNELLE",
    "CP": "CYCLE II",
    "CE1": "CYCLE II",
    "CE2": "CYCLE II",
    "CM1": "CYCLE III",
    "CM2": "CYCLE III",
}
# Birth year of each level for a school year starting in September of `school_year`.
AGE = {level: 3 + position for position, level in enumerate(LEVELS)}

# Weights: children per family, guardians per family (about 1.5 guardians per pupil).
_CHILDREN = ((1, 70), (2, 24), (3, 5), (4, 1))
_GUARDIANS = ((1, 8), (2, 80), (3, 8), (4, 4))
MALFORMED_EMAIL_RATE = 0.005
WITH_EMAIL_RATE = 0.8


@dataclass(frozen=True)
class SchoolExtraction:
    """The two ONDE extractions of one school, and what they hold."""

    uai: str
    name: str
    city: str
    pupils_csv: bytes
    guardians_csv: bytes
    pupils: int
    guardians: int
    classes: int
    malformed_emails: int

    @property
    def files(self) -> list[tuple[str, bytes]]:
        """What `import_roster(files=...)` takes (ONDE names both files CSVExtraction.csv)."""
        return [("eleves.csv", self.pupils_csv), ("responsables.csv", self.guardians_csv)]

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write `eleves.csv` and `responsables.csv` into `directory`; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        pupils, guardians = directory / "eleves.csv", directory / "responsables.csv"
        pupils.write_bytes(self.pupils_csv)
        guardians.write_bytes(self.guardians_csv)
        return pupils, guardians


@dataclass
class Child:
    last_name: str
    first_name: str
    sex: str
    birth_date: date
    level: str
    ine: str
    address: tuple[str, str, str]
    class_label: str = ""
    class_id: str = ""
    usage_name: str = ""
    # The pupil's second address (« Adresse2 »): parents living apart.
    second_address: tuple[str, str, str] | None = None
    # « Classes enfants » when the guardians file spells the class otherwise.
    shown_class: str = ""


@dataclass
class GuardianEntry:
    civility: str
    usage_name: str
    last_name: str
    first_name: str
    address: tuple[str, str, str]
    email: str
    phone_home: str
    phone_work: str
    phone_mobile: str
    children: list[Child]


def weighted(rng: random.Random, table: tuple[tuple[int, int], ...]) -> int:
    return rng.choices([value for value, _ in table], [weight for _, weight in table])[0]


def fold(text: str) -> str:
    """Lower-case ASCII letters only, for e-mail local parts."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("œ", "oe"))
    return "".join(char for char in decomposed if char in string.ascii_lowercase)


class SchoolBuilder:
    def __init__(
        self,
        rng: random.Random,
        *,
        pupils: int,
        school_year: int,
        class_id_base: int,
        ines: set[str],
    ) -> None:
        self.rng = rng
        self.target = pupils
        self.school_year = school_year
        self.class_id_base = class_id_base
        self.ines = ines
        self.children: list[Child] = []
        self.guardians: list[GuardianEntry] = []
        self.malformed = 0
        self.home = rng.choice(CITIES)

    # -- people --------------------------------------------------------------------------

    def _address(self) -> tuple[str, str, str]:
        rng = self.rng
        postcode, city = self.home if rng.random() < 0.85 else rng.choice(CITIES)
        street = f"{rng.randint(1, 180)} {rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}"
        if rng.random() < 0.08:
            street += f" appt {rng.randint(1, 60)}"
        return street, postcode, city

    def _ine(self) -> str:
        while True:
            ine = f"{self.rng.randrange(10**9):09d}" + "".join(
                self.rng.choices(string.ascii_uppercase, k=2)
            )
            if ine not in self.ines:
                self.ines.add(ine)
                return ine

    def _phone(self, mobile: bool) -> str:
        prefix = self.rng.choice(("06", "07")) if mobile else f"0{self.rng.randint(1, 5)}"
        digits = f"{self.rng.randrange(10**8):08d}"
        if prefix == "07" and digits[0] in "012":
            # 070–072 are not allocated in France: move to 073–079 without drawing again, so
            # the rest of the school stays what the seed made it.
            digits = "3456789"[int(digits[0]) + int(digits[1]) % 3] + digits[1:]
        return prefix + digits

    def _email(self, first_name: str, last_name: str) -> str:
        rng = self.rng
        if rng.random() >= WITH_EMAIL_RATE:
            return ""
        local = f"{fold(first_name)}.{fold(last_name)}{rng.randint(1, 99)}"
        domain = rng.choice(DOMAINS)
        if rng.random() < MALFORMED_EMAIL_RATE:
            self.malformed += 1
            return rng.choice(
                (
                    f"{local}@@{domain}",
                    f"{local}@{domain.split('.')[0]}",
                    f"{local}.{domain}",
                    f"{local}@{domain} ,{local}@gmail.com",
                    f"{local} @ {domain}",
                )
            )
        return f"{local}@{domain}"

    def _guardian(
        self,
        *,
        woman: bool,
        last_name: str,
        address: tuple[str, str, str],
        children: list[Child],
        usage_name: str = "",
    ) -> GuardianEntry:
        rng = self.rng
        first_name = rng.choice(WOMEN if woman else MEN)
        shown_name = usage_name or last_name
        return GuardianEntry(
            civility="MME" if woman else "M.",
            usage_name=usage_name,
            last_name=last_name,
            first_name=first_name,
            address=address,
            email=self._email(first_name, shown_name),
            phone_home=self._phone(False) if rng.random() < 0.15 else "",
            phone_work=self._phone(False) if rng.random() < 0.05 else "",
            phone_mobile=self._phone(True) if rng.random() < 0.9 else "",
            children=children,
        )

    def _family(self, count: int) -> None:
        rng = self.rng
        family_name = rng.choice(SURNAMES)
        if rng.random() < 0.05:
            family_name = f"{family_name}-{rng.choice(SURNAMES)}"
        home = self._address()
        levels = sorted(rng.sample(LEVELS, min(count, len(LEVELS))), key=LEVELS.index)
        children: list[Child] = []
        for level in levels:
            sex = rng.choice("MF")
            born = date(self.school_year - AGE[level], 1, 1) + timedelta(days=rng.randrange(365))
            taken = {child.first_name for child in children}
            names = GIRLS if sex == "F" else BOYS
            first_name = rng.choice([name for name in names if name not in taken])
            children.append(
                Child(
                    last_name=family_name,
                    first_name=first_name,
                    sex=sex,
                    birth_date=born,
                    level=level,
                    ine=self._ine(),
                    address=home,
                )
            )
        self.children += children

        guardians = weighted(rng, _GUARDIANS)
        # The mother keeps her birth name in about half the families.
        mother_name = rng.choice(SURNAMES) if rng.random() < 0.5 else family_name
        separated = guardians >= 2 and rng.random() < 0.2
        second_home = self._address() if separated else home
        people = [
            self._guardian(woman=True, last_name=mother_name, address=home, children=children)
        ]
        if guardians >= 2:
            people.append(
                self._guardian(
                    woman=False, last_name=family_name, address=second_home, children=children
                )
            )
        for extra in range(guardians - 2):
            # Step-parents, each at one of the two homes.
            people.append(
                self._guardian(
                    woman=extra % 2 == 1,
                    last_name=rng.choice(SURNAMES),
                    address=home if extra % 2 else second_home,
                    children=children,
                )
            )
        rng.shuffle(people)
        self.guardians += people

    # -- classes -------------------------------------------------------------------------

    def _classes(self) -> int:
        """Cut the pupils, in level order, into classes of about 25: a class straddling two
        levels is a multi-level class, as in a real school."""
        rng = self.rng
        ordered = sorted(self.children, key=lambda c: (LEVELS.index(c.level), c.birth_date))
        labels: set[str] = set()
        start = count = 0
        while start < len(ordered):
            size = rng.randint(22, 28)
            if len(ordered) - start - size < 12:
                size = len(ordered) - start
            members = ordered[start : start + size]
            start += size
            levels = sorted({c.level for c in members}, key=LEVELS.index)
            base = "-".join(levels) if len(levels) <= 2 else f"{levels[0]}-{levels[-1]}"
            if len(levels) == 2 and rng.random() < 0.3 and levels[0][:2] == levels[1][:2]:
                base = f"{levels[0]}/{levels[1][-1]}"  # « CM1/2 »
            label = f"{base} {rng.choice(TEACHERS)}" if rng.random() < 0.5 else base
            suffix = 0
            candidate = label
            while fold(candidate) in labels:
                suffix += 1
                candidate = f"{label} {_letters(suffix)}"
            labels.add(fold(candidate))
            count += 1
            for child in members:
                child.class_label = candidate
                child.class_id = str(self.class_id_base + count)
        return count

    # -- files ---------------------------------------------------------------------------

    def build(self) -> tuple[bytes, bytes, int]:
        while len(self.children) < self.target:
            self._family(min(weighted(self.rng, _CHILDREN), self.target - len(self.children)))
        classes = self._classes()
        pupil_rows = [pupil_row(child) for child in self.children]
        self.rng.shuffle(pupil_rows)
        guardian_rows = [self._guardian_row(guardian) for guardian in self.guardians]
        return encode(PUPIL_HEADER, pupil_rows), encode(GUARDIAN_HEADER, guardian_rows), classes

    def _guardian_row(self, guardian: GuardianEntry) -> list[str]:
        row = guardian_head(guardian)
        for child in guardian.children:
            shown = child.class_label
            roll = self.rng.random()
            if roll < 0.03:
                shown = shown.upper()  # another tool's spelling of the same class
            elif roll < 0.04:
                shown = f"CLASSE  {child.level}"  # not the pupils file's label at all
            row += [child.usage_name, child.last_name, child.first_name, shown]
        return row


def guardian_head(guardian: GuardianEntry) -> list[str]:
    """The guardian's own cells, before the child groups."""
    street, postcode, city = guardian.address
    return [
        guardian.civility,
        guardian.usage_name,
        guardian.last_name,
        guardian.first_name,
        street,
        postcode,
        city,
        "FRANCE",
        guardian.email,
        guardian.phone_home,
        guardian.phone_work,
        guardian.phone_mobile,
    ]


def _letters(number: int) -> str:
    """A, B, …, Z, AA, AB…"""
    text = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        text = string.ascii_uppercase[rest] + text
    return text


def pupil_row(child: Child) -> list[str]:
    street, postcode, city = child.address
    second = [*child.second_address, "FRANCE"] if child.second_address else ["", "", "", ""]
    return [
        child.last_name,
        child.usage_name,
        child.first_name,
        child.birth_date.strftime("%d/%m/%Y"),
        child.sex,
        child.ine,
        street,
        postcode,
        city,
        "FRANCE",
        *second,
        _CYCLES[child.level],
        child.level,
        child.class_label,
        child.class_id,
        "Oui",
        "Non",
        "Oui",
        "",
    ]


def encode(header: str, rows: list[list[str]], footer: str = "") -> bytes:
    lines = [header, *(";".join(row) for row in rows), *([footer] if footer else [])]
    return (LINE_BREAK.join(lines) + LINE_BREAK).encode(ENCODING)


def generate_school(
    *,
    seed: int | str = 2026,
    pupils: int = 250,
    index: int = 0,
    school_year: int = 2025,
    ines: set[str] | None = None,
) -> SchoolExtraction:
    """One school's Élèves and Responsables extractions with `pupils` pupils.

    `index` tells the schools of one district apart (their UAI, name and class ids); `ines`
    (shared across a district) keeps every INE unique, as they are nationally.
    """
    rng = random.Random(f"{seed}:{index}")
    builder = SchoolBuilder(
        rng,
        pupils=pupils,
        school_year=school_year,
        class_id_base=10_000 + 1_000 * index,
        ines=ines if ines is not None else set(),
    )
    pupils_csv, guardians_csv, classes = builder.build()
    _postcode, city = builder.home
    letter = string.ascii_uppercase[index % 26]
    return SchoolExtraction(
        uai=f"059{index + 1:04d}{letter}",
        name=f"École {rng.choice(STREET_NAMES)} n°{index + 1}",
        city=city,
        pupils_csv=pupils_csv,
        guardians_csv=guardians_csv,
        pupils=len(builder.children),
        guardians=len(builder.guardians),
        classes=classes,
        malformed_emails=builder.malformed,
    )


def generate_district(
    *, seed: int | str = 2026, schools: int = 80, pupils_per_school: int = 250
) -> list[SchoolExtraction]:
    """A district: `schools` schools of `pupils_per_school` pupils, INEs unique across all."""
    ines: set[str] = set()
    return [
        generate_school(seed=seed, pupils=pupils_per_school, index=index, ines=ines)
        for index in range(schools)
    ]
