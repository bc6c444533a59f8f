"""Schools, their directors and inspectors: registering schools, director and inspector
invitations, who directs or inspects what, and finding a school the way a family names it."""

from __future__ import annotations

from bot.services.schools.directors import (
    DirectedSchool,
    directed_schools,
    director_telegram_ids,
    enrolled_pupil_count,
    redeem_director_invitation,
)
from bot.services.schools.inspectors import (
    InspectorEntry,
    InspectorInvite,
    create_inspector_invitation,
    inspected_schools,
    inspector_schools,
    list_inspectors,
    redeem_inspector_invitation,
    remove_inspector,
)
from bot.services.schools.registry import (
    InvalidUAIError,
    InvitationAlreadyUsedError,
    InvitationExpiredError,
    UnknownInvitationError,
    UnknownSchoolError,
    add_school,
    create_invitation,
    get_school_by_uai,
    list_schools,
    normalize_uai,
)
from bot.services.schools.search import SchoolMatch, find_schools, school_by_uai

__all__ = [
    "DirectedSchool",
    "InspectorEntry",
    "InspectorInvite",
    "InvalidUAIError",
    "InvitationAlreadyUsedError",
    "InvitationExpiredError",
    "SchoolMatch",
    "UnknownInvitationError",
    "UnknownSchoolError",
    "add_school",
    "create_inspector_invitation",
    "create_invitation",
    "directed_schools",
    "director_telegram_ids",
    "enrolled_pupil_count",
    "find_schools",
    "get_school_by_uai",
    "inspected_schools",
    "inspector_schools",
    "list_inspectors",
    "list_schools",
    "normalize_uai",
    "redeem_director_invitation",
    "redeem_inspector_invitation",
    "remove_inspector",
    "school_by_uai",
]
