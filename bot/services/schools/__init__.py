"""Schools, their directors and inspectors: registering schools, director and inspector
invitations, who directs or inspects what, and finding a school the way a family names it."""

from __future__ import annotations

from bot.services.schools.directors import (
    DirectedSchool,
    DirectorEntry,
    directed_schools,
    director_telegram_ids,
    enrolled_pupil_count,
    list_directors,
    redeem_director_invitation,
    remove_director,
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
    InvitationRevokedError,
    PendingInvitation,
    UnknownInvitationError,
    UnknownSchoolError,
    add_school,
    create_invitation,
    get_school_by_uai,
    list_invitations,
    list_schools,
    normalize_uai,
    revoke_invitation,
)
from bot.services.schools.search import SchoolMatch, find_schools, school_by_uai

__all__ = [
    "DirectedSchool",
    "DirectorEntry",
    "InspectorEntry",
    "InspectorInvite",
    "InvalidUAIError",
    "InvitationAlreadyUsedError",
    "InvitationExpiredError",
    "InvitationRevokedError",
    "PendingInvitation",
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
    "list_directors",
    "list_inspectors",
    "list_invitations",
    "list_schools",
    "normalize_uai",
    "redeem_director_invitation",
    "redeem_inspector_invitation",
    "remove_director",
    "remove_inspector",
    "revoke_invitation",
    "school_by_uai",
]
