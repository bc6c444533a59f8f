"""Every sentence the ONDE import shows a user: file errors and per-line issues.

Each is an English message id translated with `_()` in the language of the current update or
command (French for the CLI), its named placeholders filled after translation.
"""

from __future__ import annotations

from typing import Any

from babel.numbers import format_decimal

from bot.i18n import N_, _, babel_locale
from bot.services.roster.onde.report import LineIssue, RosterFileError, Severity


def person(first_name: str | None, last_name: str | None) -> str:
    """How a person or a child is named in a message: « Léa DUBOIS »."""
    return " ".join(part for part in (first_name, last_name) if part)


# --- Whole-file errors: nothing is imported. ---------------------------------------------------

_FILE_ERRORS: dict[str, str] = {
    "no_file": N_(
        "No file to import: attach the ONDE « Élèves » extraction, the « Responsables » "
        "extraction, or both."
    ),
    "too_many_files": N_(
        "{count} files received: import at most two files at a time, the « Élèves » extraction "
        "and the « Responsables » extraction — nothing was imported."
    ),
    "same_category": N_(
        "The files « {filename} » and « {other} » are both {category} extractions: attach one "
        "« Élèves » extraction and one « Responsables » extraction — nothing was imported."
    ),
    "too_big": N_(
        "The file « {filename} » is {size_mb} MB, over the {limit_mb} MB accepted: it is not "
        "the ONDE extraction of one school — nothing was imported."
    ),
    "too_many_pupils": N_(
        "The file « {filename} » has {lines} lines, more than the {limit} an « Élèves » "
        "extraction of one school can have (a large primary school has about 1,000 pupils): "
        "it is not your school's extraction. In ONDE, extract the « Élèves » list of your "
        "school only and send that file — nothing was imported."
    ),
    "too_many_guardians": N_(
        "The file « {filename} » has {lines} lines, more than the {limit} a « Responsables » "
        "extraction of one school can have (a large primary school has about 2,000 "
        "guardians): it is not your school's extraction. In ONDE, extract the « Responsables » "
        "list of your school only and send that file — nothing was imported."
    ),
    "empty": N_("The file « {filename} » is empty — nothing was imported."),
    "pdf": N_(
        "The file « {filename} » is a PDF document, not a CSV extraction: in ONDE, use "
        "« Listes & documents » → « Extractions » — nothing was imported."
    ),
    "spreadsheet": N_(
        "The file « {filename} » is a spreadsheet workbook (Excel, LibreOffice) or an archive, "
        "not a CSV extraction: send the CSV file exactly as ONDE produced it — nothing was "
        "imported."
    ),
    "binary": N_(
        "The file « {filename} » is not a text file (binary content): send the CSV file "
        "exactly as ONDE produced it — nothing was imported."
    ),
    "unreadable": N_(
        "The file « {filename} » cannot be read (unknown character encoding) — nothing was "
        "imported."
    ),
    "not_onde": N_(
        "The file « {filename} » is not an ONDE « Élèves » or « Responsables » extraction: its "
        "header does not have the expected columns — nothing was imported."
    ),
    "wrong_separator": N_(
        "The file « {filename} » separates its columns with « {found} » whereas the expected "
        "separator is « ; »: a spreadsheet has probably saved it again, so send the file "
        "exactly as ONDE produced it — nothing was imported."
    ),
    "bad_header": N_(
        "The header of the file « {filename} » cannot be read (a quotation mark is not "
        "closed) — nothing was imported."
    ),
    "missing_columns": N_(
        "The file « {filename} » looks like an ONDE {category} extraction but the column "
        "{columns} is missing — nothing was imported."
    ),
    "truncated": N_(
        "The file « {filename} » is incomplete: its last line (line {line}) is cut off, so "
        "pupils or guardians are probably missing; download the extraction from ONDE again — "
        "nothing was imported."
    ),
    "line_break_in_cell": N_(
        "The file « {filename} » has a line break inside a cell: the record of line {line} "
        "goes on to line {last_line}, which ONDE never writes. Download the extraction from "
        "ONDE again, or remove the line break from that cell (in ONDE, or in the file with a "
        "text editor) — nothing was imported."
    ),
    "no_rows": N_(
        "The file « {filename} » contains only its header, no data lines — nothing was imported."
    ),
    "no_valid_pupil": N_(
        "No line of the file « {filename} » describes a pupil that can be imported ({rejected} "
        "lines rejected, for example: {example}) — nothing was imported."
    ),
    "no_valid_guardian": N_(
        "No guardian of the file « {filename} » could be imported ({rejected} lines rejected, "
        "for example: {example}) — nothing was imported."
    ),
    "no_pupils_in_school": N_(
        "The file « {filename} » is a « Responsables » extraction, but the school has no "
        "pupils yet: import the « Élèves » extraction first, or both files together — nothing "
        "was imported."
    ),
}

# ONDE's own names for its extraction categories: the director finds them under these names in
# ONDE whatever the language of the bot, so they are not translated.
CATEGORY_NAMES: dict[str, str] = {"pupils": "Élèves", "guardians": "Responsables"}


def category_name(kind: str) -> str:
    """« Élèves » or « Responsables », as ONDE names its extraction categories."""
    return CATEGORY_NAMES[kind]


def file_error(
    kind: str,
    *,
    filename: str | None = None,
    issues: list[LineIssue] | None = None,
    **params: Any,
) -> RosterFileError:
    """The error for a file that cannot be imported at all, ready to raise."""
    message = _(_FILE_ERRORS[kind]).format(filename=filename, **params)
    return RosterFileError(message, filename=filename, issues=issues)


# --- Per-line issues: the line is rejected, or imported with a warning. ------------------------
# Keyed by template name; several templates may share one issue code (the code is the cause,
# the template also says what happens).

_LINE_MESSAGES: dict[str, str] = {
    "malformed_line": N_(
        "Line {line}: the line is malformed (a quotation mark not closed or out of place) — "
        "it is not imported."
    ),
    "incomplete_line": N_(
        "Line {line}: the line has only {found} columns of the {expected} expected — it is not "
        "imported."
    ),
    "extra_fields": N_(
        "Line {line}: the line has {found} columns instead of {expected} (a « ; » inside a "
        "field shifts the columns) — it is not imported."
    ),
    "missing_pupil_name": N_(
        "Line {line}: the pupil's last name or first name is missing — the line is not imported."
    ),
    "missing_guardian_name": N_(
        "Line {line}: the guardian's last name or first name is missing — the line is not imported."
    ),
    "missing_birth_date": N_(
        "Line {line}: the birth date of {name} is missing — the pupil is not imported, because "
        "it is asked for when the accounts are activated."
    ),
    "invalid_birth_date": N_(
        "Line {line}: the birth date « {value} » of {name} is not valid — the pupil is not "
        "imported, because it is asked for when the accounts are activated."
    ),
    "duplicate_pupil": N_(
        "Line {line}: {name} is already on line {first_line} — this duplicate line is ignored."
    ),
    "unknown_level_derived": N_(
        "Line {line}: unknown level « {value} » for {name} — the level {level} is deduced from "
        "the class « {class_label} »."
    ),
    "unknown_level_dropped": N_(
        "Line {line}: unknown level « {value} » for {name} — the pupil is imported without a level."
    ),
    "missing_level_derived": N_(
        "Line {line}: the level of {name} is missing — the level {level} is deduced from the "
        "class « {class_label} »."
    ),
    "missing_level_dropped": N_(
        "Line {line}: the level of {name} is missing — the pupil is imported without a level."
    ),
    "missing_class": N_(
        "Line {line}: {name} is not assigned to any class — the pupil is imported without a class."
    ),
    "invalid_email": N_(
        "Line {line}: invalid e-mail address « {email} » — the guardian is imported without an "
        "address and will receive a paper letter."
    ),
    "incomplete_child": N_(
        "Line {line}: child no. {group} of {name} has no last name or first name — this child "
        "is ignored."
    ),
    "missing_child": N_(
        "Line {line}: no child is given for {name} — the guardian is not imported."
    ),
    "unknown_child_warning": N_(
        "Line {line}: the child {child} ({child_class}) of {name} is not a pupil of the "
        "school — the guardian is imported with their other children only."
    ),
    "unknown_child_rejected": N_(
        "Line {line}: no child of {name} ({children}) is a pupil of the school — the guardian "
        "is not imported."
    ),
    "ambiguous_child_warning": N_(
        "Line {line}: the child {child} ({child_class}) of {name} could be any of {count} "
        "pupils with that name, and neither the class nor the address tells them apart — this "
        "link is not made; correct it in ONDE."
    ),
    "ambiguous_child_rejected": N_(
        "Line {line}: the child {child} ({child_class}) of {name} could be any of {count} "
        "pupils with that name, and neither the class nor the address tells them apart — the "
        "guardian is not imported; correct it in ONDE."
    ),
}

# The stable code each template reports under.
_CODES: dict[str, str] = {
    "missing_pupil_name": "missing_name",
    "missing_guardian_name": "missing_name",
    "unknown_level_derived": "unknown_level",
    "unknown_level_dropped": "unknown_level",
    "missing_level_derived": "unknown_level",
    "missing_level_dropped": "unknown_level",
    "unknown_child_warning": "unknown_child",
    "unknown_child_rejected": "unknown_child",
    "ambiguous_child_warning": "ambiguous_child",
    "ambiguous_child_rejected": "ambiguous_child",
}


def line_issue(
    template: str, *, filename: str, line: int, severity: Severity, **params: Any
) -> LineIssue:
    """A per-line issue, its message built from `template` and the named `params`."""
    message = _(_LINE_MESSAGES[template]).format(line=line, **params)
    return LineIssue(
        filename=filename,
        line=line,
        severity=severity,
        code=_CODES.get(template, template),
        message=message,
        params=params,
    )


def rejected(template: str, *, filename: str, line: int, **params: Any) -> LineIssue:
    """A line that is not imported, and why."""
    return line_issue(template, filename=filename, line=line, severity=Severity.REJECTED, **params)


def warning(template: str, *, filename: str, line: int, **params: Any) -> LineIssue:
    """A line that is imported, with something the director should know."""
    return line_issue(template, filename=filename, line=line, severity=Severity.WARNING, **params)


def class_not_given() -> str:
    """Shown in place of a child's class when the guardians file leaves it empty."""
    return _("class not given")


def child_in_class(child: str, child_class: str) -> str:
    """A child and their class, as listed in a message: « Nina LEGRAND (CM1) »."""
    return _("{child} ({child_class})").format(child=child, child_class=child_class)


def quoted(names: list[str]) -> str:
    """Names listed between French quotes: « Nom », « Date naissance »."""
    return ", ".join(_("« {name} »").format(name=name) for name in names)


def separator_name(separator: str) -> str:
    """How a column separator is named to the user."""
    return _("tab") if separator == "\t" else separator


def megabytes(size: int) -> str:
    """A file size in megabytes with one decimal, in the current language (« 20,5 »)."""
    return format_decimal(round(size / 1024 / 1024, 1), format="#,##0.0", locale=babel_locale())
