"""Reading one ONDE extraction: every ONDE variant, per-line reasons, refused files."""

from __future__ import annotations

from dataclasses import astuple
from datetime import date
from pathlib import Path

import pytest

from bot.services.roster.onde.reader import (
    MAX_FILE_BYTES,
    GuardianExtraction,
    PupilExtraction,
    read_extraction,
)
from bot.services.roster.onde.report import RosterFileError, Severity
from tests.services.onde.builder import (
    ChildSpec,
    GuardianSpec,
    Options,
    PupilSpec,
    guardians_csv,
    pupils_csv,
    replace,
    small_school,
)

TODAY = date(2026, 11, 28)


def read_pupils(data: bytes, filename: str = "eleves.csv") -> PupilExtraction:
    extraction = read_extraction(data, filename=filename, today=TODAY)
    assert isinstance(extraction, PupilExtraction)
    return extraction


def read_guardians(data: bytes, filename: str = "responsables.csv") -> GuardianExtraction:
    extraction = read_extraction(data, filename=filename, today=TODAY)
    assert isinstance(extraction, GuardianExtraction)
    return extraction


def pupil_rows(extraction: PupilExtraction) -> list[tuple[object, ...]]:
    # Without the line number: variants may add lines (sep=, footers…).
    return [astuple(row)[1:] for row in extraction.rows]


def guardian_rows(extraction: GuardianExtraction) -> list[tuple[object, ...]]:
    return [astuple(row)[1:] for row in extraction.rows]


def codes(extraction: PupilExtraction | GuardianExtraction) -> list[tuple[int, str, Severity]]:
    return [(issue.line, issue.code, issue.severity) for issue in extraction.issues]


# --- Recognition ------------------------------------------------------------------------------


def test_files_are_recognised_by_header_not_by_name(samples_dir: Path) -> None:
    pupils = read_extraction((samples_dir / "eleves.csv").read_bytes(), filename="responsables.csv")
    guardians = read_extraction(
        (samples_dir / "responsables.csv").read_bytes(), filename="CSVExtraction.csv"
    )
    assert isinstance(pupils, PupilExtraction)
    assert isinstance(guardians, GuardianExtraction)
    assert pupils.encoding == "cp1252"


# --- Variants of the Élèves extraction: all read to the same rows -----------------------------


PUPIL_VARIANTS = {
    "windows-1252": Options(),
    "iso-8859-1": Options(encoding="latin-1"),
    "utf-8": Options(encoding="utf-8"),
    "utf-8 with BOM": Options(encoding="utf-8", bom=True),
    "utf-16 from a spreadsheet": Options(encoding="utf-16"),
    "every field quoted": Options(quote_all=True),
    "iso dates": Options(date_format="%Y-%m-%d"),
    "older header (Nom Elève, Classe)": Options(old_header=True),
    "upper-case header": Options(header_style="upper"),
    "lower-case header": Options(header_style="lower"),
    "header with extra spaces": Options(header_style="spaced"),
    "sex as H/F": Options(sex_letters="HF"),
    "empty country": Options(empty_country=True),
    "footer line": Options(footer="Nombre d'élèves : 6"),
    "quoted footer line": Options(footer='"Total : 6";;;'),
    "LF line breaks": Options(line_break="\n"),
    "CR line breaks": Options(line_break="\r"),
    "no final line break": Options(final_line_break=False),
    "no final line break after the footer": Options(
        footer="Nombre d'élèves : 6", final_line_break=False
    ),
}


@pytest.mark.parametrize("options", PUPIL_VARIANTS.values(), ids=PUPIL_VARIANTS.keys())
def test_pupil_variants_read_the_same_rows(options: Options) -> None:
    pupils, _ = small_school()
    expected = read_pupils(pupils_csv(pupils))
    extraction = read_pupils(pupils_csv(pupils, options))
    assert extraction.issues == []
    assert pupil_rows(extraction) == pupil_rows(expected)
    assert len(extraction.rows) == len(pupils)


def test_pupils_without_ine_nor_class_identifier_columns() -> None:
    pupils, _ = small_school()
    extraction = read_pupils(pupils_csv(pupils, Options(with_ine=False, with_class_id=False)))
    assert extraction.issues == []
    assert [row.ine for row in extraction.rows] == [None] * len(pupils)
    assert "ine" not in extraction.columns
    assert "class_onde_id" not in extraction.columns


def test_pupil_fields_are_cleaned() -> None:
    pupil = PupilSpec(
        "  SAINT-EXUPÉRY ",
        "Raphaël",
        date(2023, 4, 10),
        "PS-MS  Mme Roux",
        "ps",
        sex="M",
        ine="887077445da",
        usage_name="SAINT-EXUPÉRY",
    )
    row = read_pupils(pupils_csv([pupil], Options(sex_letters="HF"))).rows[0]
    assert (row.last_name, row.usage_name, row.first_name) == ("SAINT-EXUPÉRY", None, "Raphaël")
    assert (row.birth_date, row.sex, row.ine) == (date(2023, 4, 10), "M", "887077445DA")
    assert (row.level, row.class_label) == ("PS", "PS-MS Mme Roux")


def test_a_sep_line_from_a_spreadsheet_is_skipped() -> None:
    pupils, _ = small_school()
    data = b"sep=;\r\n" + pupils_csv(pupils)
    assert len(read_pupils(data).rows) == len(pupils)


# --- Variants of the Responsables extraction --------------------------------------------------


GUARDIAN_VARIANTS = {
    "windows-1252": Options(),
    "utf-8 with BOM": Options(encoding="utf-8", bom=True),
    "iso-8859-1": Options(encoding="latin-1"),
    "every field quoted": Options(quote_all=True),
    "upper-case header": Options(header_style="upper"),
    "header with extra spaces": Options(header_style="spaced"),
    "header lists the child group once": Options(header_child_groups=1),
    "empty country": Options(empty_country=True),
    "footer line": Options(footer="Nombre de responsables : 8"),
    "LF line breaks": Options(line_break="\n"),
}


@pytest.mark.parametrize("options", GUARDIAN_VARIANTS.values(), ids=GUARDIAN_VARIANTS.keys())
def test_guardian_variants_read_the_same_rows(options: Options) -> None:
    _, guardians = small_school()
    # An empty « Pays » is read as no country; everything else reads the same.
    expected = read_guardians(
        guardians_csv(guardians, Options(empty_country=options.empty_country))
    )
    extraction = read_guardians(guardians_csv(guardians, options))
    assert codes(extraction) == codes(expected)  # the one malformed e-mail of the school
    assert guardian_rows(extraction) == guardian_rows(expected)


def test_rows_may_carry_more_child_groups_than_the_header_lists() -> None:
    children = tuple(ChildSpec("ANDRÉ", name, "CE1") for name in ("Lucie", "Léa", "Margaux"))
    guardian = GuardianSpec("ANDRÉ", "Agathe", children)
    extraction = read_guardians(guardians_csv([guardian], Options(header_child_groups=1)))
    assert [child.first_name for child in extraction.rows[0].children] == [
        "Lucie",
        "Léa",
        "Margaux",
    ]


def test_guardian_fields_are_cleaned() -> None:
    child = ChildSpec("DUBOIS", "Emma", "CLASSE  CE2", usage_name="MARTIN")
    guardian = GuardianSpec(
        "DUBOIS", "Léa", (child,), civility="Mme", email=" Lea.Dubois@ORANGE.FR ", phone="06 01"
    )
    row = read_guardians(guardians_csv([guardian])).rows[0]
    assert (row.civility, row.last_name, row.first_name) == ("Mme", "DUBOIS", "Léa")
    assert row.email == "Lea.Dubois@orange.fr"  # the domain is lower-cased, the rest kept
    assert row.phone_mobile == "06 01"
    assert row.children[0].usage_name == "MARTIN"
    assert row.children[0].class_label == "CLASSE CE2"


@pytest.mark.parametrize("civility", ["MME", "Mme", "mme", "Madame"])
def test_civility_spellings_are_one(civility: str) -> None:
    _, guardians = small_school()
    guardian = replace(guardians[0], civility=civility)
    assert read_guardians(guardians_csv([guardian])).rows[0].civility == "Mme"


# --- Per-line reasons -------------------------------------------------------------------------


def test_pupil_lines_are_rejected_with_their_reason() -> None:
    pupils, _ = small_school()
    base = pupils[0]
    data = pupils_csv(
        [
            base,  # line 2, fine
            replace(base, ine=None, last_name=""),  # 3: no name
            replace(base, ine=None, first_name=""),  # 4: no first name
            replace(base, ine="X1", birth_date=date(2016, 2, 1)),  # 5: fine
            replace(base, ine=base.ine, first_name="Autre"),  # 6: same INE as line 2
            replace(base, ine="X2", level="CE9", class_label="CE2 Mme Roux"),  # 7: level derived
            replace(base, ine="X3", level="", class_label="Classe de M Machin"),  # 8: no level
            replace(base, ine="X4", class_label="", level="CP"),  # 9: no class
        ]
    )
    data = data.replace(b"01/02/2016", b"31/02/2016")  # line 5: not a real date
    extraction = read_pupils(data)
    assert codes(extraction) == [
        (3, "missing_name", Severity.REJECTED),
        (4, "missing_name", Severity.REJECTED),
        (5, "invalid_birth_date", Severity.REJECTED),
        (6, "duplicate_pupil", Severity.REJECTED),
        (7, "unknown_level", Severity.WARNING),
        (8, "unknown_level", Severity.WARNING),
        (9, "missing_class", Severity.WARNING),
    ]
    levels = {row.line: row.level for row in extraction.rows}
    assert levels == {2: "CE1", 7: "CE2", 8: None, 9: "CP"}
    message = extraction.issues[2].message
    assert message.startswith("Ligne 5 : la date de naissance « 31/02/2016 » de Léa MARTIN")
    assert "n'est pas importé" in message


@pytest.mark.parametrize("birth", ["", "2016-13-01", "1/1/16", "30/11/2026", "demain"])
def test_a_pupil_without_a_valid_birth_date_is_rejected(birth: str) -> None:
    pupils, _ = small_school()
    data = pupils_csv(pupils[:1]).replace(b"14/03/2018", birth.encode())
    extraction = read_pupils(data)
    expected = "missing_birth_date" if not birth else "invalid_birth_date"
    assert codes(extraction) == [(2, expected, Severity.REJECTED)]
    assert extraction.rejected_pupils[0].ine == pupils[0].ine


@pytest.mark.parametrize(
    "address",
    ["jean.dupont@@free.fr", "pas d'adresse", "jean@", "x@y", "jean dupont@free.fr", "@free.fr"],
)
def test_a_malformed_email_is_a_warning_and_the_guardian_is_kept(address: str) -> None:
    _, guardians = small_school()
    extraction = read_guardians(guardians_csv([replace(guardians[0], email=address)]))
    assert len(extraction.rows) == 1 and extraction.rows[0].email is None
    (issue,) = extraction.issues
    assert (issue.code, issue.severity) == ("invalid_email", Severity.WARNING)
    assert issue.message == (
        f"Ligne 2 : adresse e-mail « {address} » invalide — le responsable est importé sans "
        "adresse et recevra un courrier papier."
    )


def test_guardian_lines_are_rejected_with_their_reason() -> None:
    _, guardians = small_school()
    base = guardians[0]
    data = guardians_csv(
        [
            base,
            replace(base, last_name=""),
            replace(base, first_name=""),
            replace(base, children=()),
            replace(base, children=(ChildSpec("", "Léa", "CE1"),)),
            replace(base, children=(ChildSpec("MARTIN", "", "CE1"), *base.children)),
        ]
    )
    extraction = read_guardians(data)
    assert codes(extraction) == [
        (3, "missing_name", Severity.REJECTED),
        (4, "missing_name", Severity.REJECTED),
        (5, "missing_child", Severity.REJECTED),
        (6, "incomplete_child", Severity.WARNING),
        (6, "missing_child", Severity.REJECTED),
        (7, "incomplete_child", Severity.WARNING),
    ]
    assert [row.line for row in extraction.rows] == [2, 7]
    assert len(extraction.rows[1].children) == 2


def test_a_line_with_an_unclosed_quote_is_rejected_alone() -> None:
    pupils, _ = small_school()
    lines = pupils_csv(pupils).split(b"\r\n")
    lines[2] = lines[2].replace(b"Hugo", b'"Hugo')
    extraction = read_pupils(b"\r\n".join(lines))
    assert codes(extraction) == [(3, "malformed_line", Severity.REJECTED)]
    assert len(extraction.rows) == len(pupils) - 1


def test_a_line_with_shifted_columns_is_rejected() -> None:
    pupils, _ = small_school()
    lines = pupils_csv(pupils).split(b"\r\n")
    lines[2] = lines[2].replace(b"1 rue de la Paix", b"1; rue de la Paix")
    lines[3] = b"MARTIN;;Hugo"
    extraction = read_pupils(b"\r\n".join(lines))
    assert codes(extraction) == [
        (3, "extra_fields", Severity.REJECTED),
        (4, "incomplete_line", Severity.REJECTED),
    ]


def test_an_unknown_line_under_the_data_is_reported() -> None:
    pupils, _ = small_school()
    extraction = read_pupils(pupils_csv(pupils, Options(footer="Page 1/1")))
    assert codes(extraction) == [(len(pupils) + 2, "incomplete_line", Severity.REJECTED)]


def test_blank_lines_are_ignored() -> None:
    pupils, _ = small_school()
    data = pupils_csv(pupils).replace(b"\r\n", b"\r\n\r\n;;;;\r\n", 2)
    extraction = read_pupils(data)
    assert extraction.issues == [] and len(extraction.rows) == len(pupils)


# --- Files refused whole ----------------------------------------------------------------------


def refused(data: bytes, filename: str = "CSVExtraction.csv") -> str:
    with pytest.raises(RosterFileError) as caught:
        read_extraction(data, filename=filename, today=TODAY)
    assert caught.value.filename == filename
    message = str(caught.value)
    assert f"« {filename} »" in message and message.endswith("rien n'a été importé.")
    return message


def small_pupils(options: Options | None = None) -> bytes:
    return pupils_csv(small_school()[0], options)


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    assert "est vide" in refused(data)


def test_a_file_with_only_its_header_is_refused() -> None:
    header = small_pupils().split(b"\r\n")[0] + b"\r\n"
    assert "que son en-tête" in refused(header)
    assert "que son en-tête" in refused(header + b"Nombre d'\xe9l\xe8ves : 0\r\n")


def test_a_pdf_renamed_csv_is_refused() -> None:
    assert "document PDF" in refused(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")


def test_a_spreadsheet_is_refused() -> None:
    assert "tableur" in refused(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "eleves.xlsx")


@pytest.mark.parametrize(
    "data", [bytes(range(256)) * 40, b"Nom;Pr\xe9nom\r\n" + bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 100]
)
def test_a_binary_file_is_refused(data: bytes) -> None:
    assert "binaire" in refused(data)


def test_a_file_over_the_byte_limit_is_refused_before_reading() -> None:
    data = small_pupils() + b"x" * MAX_FILE_BYTES
    assert f"au-delà des {MAX_FILE_BYTES // (1024 * 1024)} Mo" in refused(data)


@pytest.mark.parametrize(("delimiter", "shown"), [(",", "« , »"), ("\t", "« tabulation »")])
def test_a_wrong_separator_is_named(delimiter: str, shown: str) -> None:
    message = refused(small_pupils(Options(delimiter=delimiter)))
    assert shown in message and "le séparateur attendu est « ; »" in message


def test_a_missing_required_column_is_named() -> None:
    lines = small_pupils().split(b"\r\n")
    lines[0] = lines[0].replace(b"Date naissance", b"Date entree")
    message = refused(b"\r\n".join(lines))
    assert "extraction ONDE Élèves" in message and "« Date naissance »" in message


def test_a_guardians_file_without_children_columns_is_refused() -> None:
    data = "Civilité Responsable;Nom responsable;Prénom responsable\r\nMME;DUBOIS;Léa\r\n"
    assert "« Prénom enfant »" in refused(data.encode("cp1252"))


@pytest.mark.parametrize(
    "data",
    [
        b"id;name;price\r\n1;chair;12\r\n",
        b"Bonjour,\r\nvoici le fichier.\r\n",
        "Nom;Prénom;Téléphone\r\nDUBOIS;Léa;06\r\n".encode("cp1252"),
    ],
)
def test_a_csv_that_is_not_an_onde_extraction_is_refused(data: bytes) -> None:
    assert "n'est pas une extraction ONDE Élèves ou Responsables" in refused(data)


def test_a_truncated_file_is_refused() -> None:
    data = small_pupils()
    cut = data[: data.rindex(b"Paris")]  # the last row stops in the middle
    message = refused(cut)
    assert "est incomplet" in message and f"ligne {len(small_school()[0]) + 1}" in message


def test_a_file_cut_inside_a_quoted_field_is_refused() -> None:
    data = small_pupils(Options(quote_all=True))
    assert "est incomplet" in refused(data[: data.rindex(b"Paris") + 2])


def test_a_truncated_guardians_file_is_refused() -> None:
    _, guardians = small_school()
    data = guardians_csv(guardians)
    assert "est incomplet" in refused(data[: data.rindex(b";ROUX;")])


def test_a_file_ending_on_a_complete_row_without_line_break_is_read() -> None:
    extraction = read_pupils(small_pupils(Options(final_line_break=False)))
    assert extraction.issues == [] and len(extraction.rows) == len(small_school()[0])


def test_siblings_who_share_a_first_name_stay_two_children() -> None:
    children = (ChildSpec("MOREL", "Théo", "CE1"), ChildSpec("MOREL", "Théo", "CM2"))
    doubled = (ChildSpec("MOREL", "Léa", "CP"), ChildSpec("MOREL", "Léa", "CP"))
    data = guardians_csv(
        [GuardianSpec("MOREL", "Benoît", children), GuardianSpec("MOREL", "Ana", doubled)]
    )
    first, second = read_guardians(data).rows
    assert len(first.children) == 2
    assert len(second.children) == 1  # the same child listed twice
