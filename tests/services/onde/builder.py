"""Writes ONDE extractions for tests, in every variant ONDE writes (encodings, headers…)."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field, replace
from datetime import date

_ine_numbers = itertools.count(100000001)


def next_ine() -> str:
    """A fresh, well-formed INE (9 digits and 2 letters)."""
    return f"{next(_ine_numbers)}AB"


@dataclass(frozen=True)
class PupilSpec:
    last_name: str
    first_name: str
    birth_date: date
    class_label: str
    level: str
    sex: str = "M"
    ine: str | None = field(default_factory=next_ine)
    usage_name: str = ""
    address: str = "1 rue de la Paix"
    postcode: str = "75011"
    city: str = "Paris"
    class_id: str = ""


@dataclass(frozen=True)
class ChildSpec:
    last_name: str
    first_name: str
    class_label: str
    usage_name: str = ""


@dataclass(frozen=True)
class GuardianSpec:
    last_name: str
    first_name: str
    children: tuple[ChildSpec, ...]
    civility: str = "MME"
    email: str = ""
    address: str = "1 rue de la Paix"
    postcode: str = "75011"
    city: str = "Paris"
    usage_name: str = ""
    country: str = "FRANCE"
    phone: str = ""


@dataclass(frozen=True)
class Options:
    """How the extraction is written."""

    encoding: str = "cp1252"  # "utf-8", "latin-1", "utf-16"…
    bom: bool = False
    quote_all: bool = False
    line_break: str = "\r\n"
    final_line_break: bool = True
    date_format: str = "%d/%m/%Y"  # or "%Y-%m-%d"
    footer: str | None = None  # e.g. "Nombre d'élèves : 3"
    old_header: bool = False  # « Nom Elève », « Prénom Elève », « Classe »
    header_style: str = "onde"  # "onde", "upper", "lower", "spaced"
    with_ine: bool = True
    with_class_id: bool = True
    sex_letters: str = "MF"  # or "HF"
    delimiter: str = ";"
    header_child_groups: int | None = None  # groups the header lists (default: the most used)
    empty_country: bool = False


PUPIL_HEADER = [
    "Nom élève",
    "Nom d'usage élève",
    "Prénom élève",
    "Date naissance",
    "Sexe",
    "INE",
    "Adresse1",
    "Cp1",
    "Commune1",
    "Pays1",
    "Adresse2",
    "Cp2",
    "Commune2",
    "Pays2",
    " Cycle",
    "Niveau",
    "Libellé classe",
    "Identifiant classe",
    "Attestation fournie",
    "Autorisation associations",
    "Autorisation photo",
    "Décision de passage",
]
GUARDIAN_HEADER = [
    "Civilité Responsable",
    "Nom usage responsable",
    "Nom responsable",
    "Prénom responsable",
    "Adresse responsable",
    "CP responsable",
    "Commune responsable",
    "Pays",
    "Courriel",
    "Téléphone domicile",
    "Téléphone travail",
    "Téléphone portable",
]
CHILD_HEADER = ["Nom d'usage enfant", "Nom de famille enfant", "Prénom enfant", "Classes enfants"]
_CYCLES = {
    "TPS": "MATERNELLE",
    "PS": "MATERNELLE",
    "MS": "MATERNELLE",
    "GS": "MATERNELLE",
    "CP": "CYCLE II",
    "CE1": "CYCLE II",
    "CE2": "CYCLE II",
    "CM1": "CYCLE III",
    "CM2": "CYCLE III",
}


def _style(title: str, options: Options) -> str:
    if options.old_header:
        title = {"Nom élève": "Nom Elève", "Prénom élève": "Prénom Elève"}.get(title, title)
        title = "Classe" if title == "Libellé classe" else title
    if options.header_style == "upper":
        return title.upper()
    if options.header_style == "lower":
        return title.lower()
    if options.header_style == "spaced":
        return f"  {title.replace(' ', '  ')} "
    return title


def _encode(rows: list[list[str]], options: Options, footer: str | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=options.delimiter,
        lineterminator=options.line_break,
        quoting=csv.QUOTE_ALL if options.quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerows(rows)
    text = buffer.getvalue()
    if footer:
        text += footer + options.line_break
    if not options.final_line_break:
        text = text.removesuffix(options.line_break)
    data = text.encode(options.encoding)
    if options.bom and options.encoding.replace("-", "").lower() == "utf8":
        data = b"\xef\xbb\xbf" + data
    return data


def pupils_csv(pupils: list[PupilSpec], options: Options | None = None) -> bytes:
    """An Élèves extraction listing `pupils`."""
    options = options or Options()
    keep = [
        title
        for title in PUPIL_HEADER
        if (options.with_ine or title != "INE")
        and (options.with_class_id or title != "Identifiant classe")
    ]
    rows = [[_style(title, options) for title in keep]]
    for pupil in pupils:
        sex = pupil.sex if options.sex_letters == "MF" else pupil.sex.replace("M", "H")
        values = {
            "Nom élève": pupil.last_name,
            "Nom d'usage élève": pupil.usage_name,
            "Prénom élève": pupil.first_name,
            "Date naissance": pupil.birth_date.strftime(options.date_format),
            "Sexe": sex,
            "INE": pupil.ine or "",
            "Adresse1": pupil.address,
            "Cp1": pupil.postcode,
            "Commune1": pupil.city,
            "Pays1": "" if options.empty_country else "FRANCE",
            " Cycle": _CYCLES.get(pupil.level, ""),
            "Niveau": pupil.level,
            "Libellé classe": pupil.class_label,
            "Identifiant classe": pupil.class_id,
            "Attestation fournie": "Oui",
            "Autorisation associations": "Non",
            "Autorisation photo": "Oui",
        }
        rows.append([values.get(title, "") for title in keep])
    return _encode(rows, options, options.footer)


def guardians_csv(guardians: list[GuardianSpec], options: Options | None = None) -> bytes:
    """A Responsables extraction listing `guardians`, one row each, children in groups."""
    options = options or Options()
    most = max((len(g.children) for g in guardians), default=1)
    groups = options.header_child_groups or most
    header = GUARDIAN_HEADER + CHILD_HEADER * groups
    rows = [[_style(title, options) for title in header]]
    for guardian in guardians:
        row = [
            guardian.civility,
            guardian.usage_name,
            guardian.last_name,
            guardian.first_name,
            guardian.address,
            guardian.postcode,
            guardian.city,
            "" if options.empty_country else guardian.country,
            guardian.email,
            "",
            "",
            guardian.phone,
        ]
        for child in guardian.children:
            row += [child.usage_name, child.last_name, child.first_name, child.class_label]
        rows.append(row)
    return _encode(rows, options, options.footer)


# --- A small school, for tests that change it between two imports -----------------------------


def small_school() -> tuple[list[PupilSpec], list[GuardianSpec]]:
    """Six pupils in three classes (one multi-level), eight guardians, siblings included."""
    martin_lea = PupilSpec("MARTIN", "Léa", date(2018, 3, 14), "CE1-CE2 Mme Roux", "CE1", "F")
    martin_hugo = PupilSpec("MARTIN", "Hugo", date(2016, 5, 2), "CM2", "CM2")
    petit_emma = PupilSpec(
        "PETIT", "Emma", date(2017, 1, 30), "CE1-CE2 Mme Roux", "CE2", "F", address="5 rue Haute"
    )
    durand_noe = PupilSpec("DURAND", "Noé", date(2020, 9, 9), "GS", "GS", address="8 allée Verte")
    nguyen_lina = PupilSpec(
        "NGUYEN", "Lina", date(2016, 12, 1), "CM2", "CM2", "F", address="3 place Ronde"
    )
    roux_jade = PupilSpec("ROUX", "Jade", date(2020, 2, 2), "GS", "GS", "F", address="9 quai Bas")
    pupils = [martin_lea, martin_hugo, petit_emma, durand_noe, nguyen_lina, roux_jade]

    def child(pupil: PupilSpec) -> ChildSpec:
        return ChildSpec(pupil.last_name, pupil.first_name, pupil.class_label)

    guardians = [
        GuardianSpec(
            "MARTIN",
            "Claire",
            (child(martin_lea), child(martin_hugo)),
            email="claire.martin@orange.fr",
        ),
        GuardianSpec(
            "MARTIN", "Paul", (child(martin_lea), child(martin_hugo)), civility="M.", email=""
        ),
        GuardianSpec(
            "PETIT",
            "Sophie",
            (child(petit_emma),),
            email="sophie.petit@free.fr",
            address="5 rue Haute",
        ),
        GuardianSpec(
            "DURAND", "Karim", (child(durand_noe),), civility="M.", address="8 allée Verte"
        ),
        GuardianSpec(
            "DURAND", "Julie", (child(durand_noe),), email="julie@@free.fr", address="8 allée Verte"
        ),
        GuardianSpec(
            "NGUYEN",
            "Anh",
            (child(nguyen_lina),),
            email="anh.nguyen@gmail.com",
            address="3 place Ronde",
        ),
        GuardianSpec("ROUX", "Marc", (child(roux_jade),), civility="M.", address="9 quai Bas"),
        GuardianSpec("ROUX", "Inès", (child(roux_jade),), address="9 quai Bas"),
    ]
    return pupils, guardians


__all__ = [
    "ChildSpec",
    "GuardianSpec",
    "Options",
    "PupilSpec",
    "guardians_csv",
    "next_ine",
    "pupils_csv",
    "replace",
    "small_school",
]
