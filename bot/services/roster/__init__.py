"""The roster: the ONDE import, classes and levels, the scopes directors name (a class, a
level, the school), guardian lists, the accounts export and the statistics.
"""

from __future__ import annotations

from bot.services.roster.cards import (
    EmailCorrection,
    EmailCorrectionError,
    GuardianCard,
    GuardianNotFoundError,
    correct_guardian_email,
    guardian_card,
    mask_email,
)
from bot.services.roster.export import (
    export_accounts,
)
from bot.services.roster.guardians import (
    GuardianFilters,
    GuardianLine,
    GuardianPage,
    list_guardians,
    parse_guardian_query,
)
from bot.services.roster.onde.importer import (
    import_roster,
)
from bot.services.roster.onde.messages import (
    CATEGORY_NAMES,
    category_name,
)
from bot.services.roster.onde.normalise import (
    normalise_email,
)
from bot.services.roster.onde.reader import (
    MAX_FILE_BYTES,
)
from bot.services.roster.onde.report import (
    ImportReport,
    LineIssue,
    RecordCounts,
    RosterFileError,
)
from bot.services.roster.scopes import (
    SCHOOL_SCOPE,
    ClassInfo,
    ResolvedScope,
    Scope,
    ScopeKind,
    UnknownClassError,
    known_classes,
    known_classes_by_school,
    known_levels,
    resolve_scope,
    scope_from_token,
)
from bot.services.roster.states import (
    STATE_LIGHTS,
    StateCounts,
    lights_and_percentages,
    state_label,
)
from bot.services.roster.statistics import (
    Counts,
    GroupCounts,
    enrolled_links,
    school_statistics,
)
from bot.services.roster.status import (
    NextStep,
    NextStepKind,
    StatusReport,
    status_report,
)
from bot.services.roster.uploads import (
    UPLOAD_LIFETIME,
    discard_stale_uploads,
    discard_uploads,
    identify_roster_file,
    import_uploads,
    save_upload,
)

__all__ = [
    "CATEGORY_NAMES",
    "MAX_FILE_BYTES",
    "SCHOOL_SCOPE",
    "STATE_LIGHTS",
    "UPLOAD_LIFETIME",
    "ClassInfo",
    "Counts",
    "EmailCorrection",
    "EmailCorrectionError",
    "GroupCounts",
    "GuardianCard",
    "GuardianFilters",
    "GuardianLine",
    "GuardianNotFoundError",
    "GuardianPage",
    "ImportReport",
    "LineIssue",
    "NextStep",
    "NextStepKind",
    "RecordCounts",
    "ResolvedScope",
    "RosterFileError",
    "Scope",
    "ScopeKind",
    "StateCounts",
    "StatusReport",
    "UnknownClassError",
    "category_name",
    "correct_guardian_email",
    "discard_stale_uploads",
    "discard_uploads",
    "enrolled_links",
    "export_accounts",
    "guardian_card",
    "identify_roster_file",
    "import_roster",
    "import_uploads",
    "known_classes",
    "known_classes_by_school",
    "known_levels",
    "lights_and_percentages",
    "list_guardians",
    "mask_email",
    "normalise_email",
    "parse_guardian_query",
    "resolve_scope",
    "save_upload",
    "school_statistics",
    "scope_from_token",
    "state_label",
    "status_report",
]
