"""What an import did, or would do: counts per kind of record and a per-line report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RosterFileError(Exception):
    """A file that cannot be imported at all (unreadable, wrong type, missing column…).

    The message is one clear sentence for the user; nothing was changed.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None = None,
        issues: list[LineIssue] | None = None,
    ) -> None:
        super().__init__(message)
        self.filename = filename
        # When every line was rejected: the per-line reasons, so the user can fix the file.
        self.issues: list[LineIssue] = issues or []


class Severity(enum.StrEnum):
    REJECTED = "rejected"  # the line was not imported
    WARNING = "warning"  # the line was imported, with something to know


@dataclass(frozen=True)
class LineIssue:
    """One line of one file that was rejected or imported with a warning."""

    filename: str
    line: int  # 1-based line number in the file, header included
    severity: Severity
    code: str  # stable machine-readable reason, e.g. "missing_name", "invalid_email"
    message: str  # one sentence for the user, saying what was wrong and what happens
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordCounts:
    """How many records of one kind were added, changed, left as they were, or retired."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0  # pupils archived, guardians' accounts deactivated, classes archived

    @property
    def total_in_file(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass
class ImportReport:
    """The outcome of one import (or of a dry run, which changes nothing)."""

    dry_run: bool
    files: dict[str, str] = field(default_factory=dict)  # filename -> "pupils" | "guardians"
    pupils: RecordCounts = field(default_factory=RecordCounts)
    guardians: RecordCounts = field(default_factory=RecordCounts)
    classes: RecordCounts = field(default_factory=RecordCounts)
    accounts_created: int = 0
    accounts_reactivated: int = 0
    accounts_deactivated: int = 0
    links_added: int = 0  # guardian ↔ pupil links
    links_removed: int = 0
    issues: list[LineIssue] = field(default_factory=list)

    @property
    def rejected(self) -> list[LineIssue]:
        return [i for i in self.issues if i.severity is Severity.REJECTED]

    @property
    def warnings(self) -> list[LineIssue]:
        return [i for i in self.issues if i.severity is Severity.WARNING]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for `--json` and for tests."""
        return {
            "dry_run": self.dry_run,
            "files": self.files,
            "pupils": vars(self.pupils) | {"in_file": self.pupils.total_in_file},
            "guardians": vars(self.guardians) | {"in_file": self.guardians.total_in_file},
            "classes": vars(self.classes) | {"in_file": self.classes.total_in_file},
            "accounts_created": self.accounts_created,
            "accounts_reactivated": self.accounts_reactivated,
            "accounts_deactivated": self.accounts_deactivated,
            "links_added": self.links_added,
            "links_removed": self.links_removed,
            "rejected": [_issue_dict(i) for i in self.rejected],
            "warnings": [_issue_dict(i) for i in self.warnings],
        }


def _issue_dict(issue: LineIssue) -> dict[str, Any]:
    return {
        "file": issue.filename,
        "line": issue.line,
        "code": issue.code,
        "message": issue.message,
        **({"params": issue.params} if issue.params else {}),
    }
