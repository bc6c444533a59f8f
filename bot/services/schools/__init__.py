"""Schools and their directors: registering schools, director invitations, who directs what."""

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

__all__ = [
    "InvitationAlreadyUsedError",
    "InvitationExpiredError",
    "UnknownInvitationError",
    "UnknownSchoolError",
    "add_school",
    "create_invitation",
    "directed_schools",
    "director_telegram_ids",
    "enrolled_pupil_count",
    "get_school_by_uai",
    "list_schools",
    "redeem_director_invitation",
]
