"""Schools and their directors: registering schools, director invitations, who directs what,
and finding a school the way a family names it."""

from __future__ import annotations

from bot.services.schools.directors import (
    directed_schools,
    director_telegram_ids,
    enrolled_pupil_count,
    redeem_director_invitation,
)
from bot.services.schools.registry import (
    InvitationAlreadyUsedError,
    InvitationExpiredError,
    UnknownInvitationError,
    UnknownSchoolError,
    add_school,
    create_invitation,
    get_school_by_uai,
    list_schools,
)
from bot.services.schools.search import SchoolMatch, find_schools, school_by_uai

__all__ = [
    "InvitationAlreadyUsedError",
    "InvitationExpiredError",
    "SchoolMatch",
    "UnknownInvitationError",
    "UnknownSchoolError",
    "add_school",
    "create_invitation",
    "directed_schools",
    "director_telegram_ids",
    "enrolled_pupil_count",
    "find_schools",
    "get_school_by_uai",
    "list_schools",
    "redeem_director_invitation",
    "school_by_uai",
]
