"""Data that does not outlive its purpose: the purge of pupils and guardians gone for more than
the retention (one school year), and the backups and restores of a SQLite database.

- `selection`: what a purge takes (`plan_purge`), counted per kind and per school.
- `purging`: the purge, in one transaction, keeping the audit log without personal data.
- `backups`: SQLite's online backup, and a checked restore.
"""

from __future__ import annotations

from bot.services.retention.backups import (
    BackupError,
    DatabaseFile,
    backup_sqlite,
    inspect_database,
    known_revisions,
    restore_sqlite,
)
from bot.services.retention.purging import (
    PERSONAL_KEYS,
    PURGED,
    REMOVED_FAMILY,
    PurgeChangedError,
    purge,
)
from bot.services.retention.selection import (
    DEFAULT_RETENTION,
    MINIMUM_RETENTION,
    PurgeCounts,
    PurgePlan,
    RetentionTooShortError,
    SchoolPurge,
    plan_purge,
)

__all__ = [
    "DEFAULT_RETENTION",
    "MINIMUM_RETENTION",
    "PERSONAL_KEYS",
    "PURGED",
    "REMOVED_FAMILY",
    "BackupError",
    "DatabaseFile",
    "PurgeChangedError",
    "PurgeCounts",
    "PurgePlan",
    "RetentionTooShortError",
    "SchoolPurge",
    "backup_sqlite",
    "inspect_database",
    "known_revisions",
    "plan_purge",
    "purge",
    "restore_sqlite",
]
