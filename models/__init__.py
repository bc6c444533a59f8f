"""Tables and queries of the account registry."""

from models.tables import (
    Account,
    AccountState,
    AuditEvent,
    BotState,
    Director,
    DistributionChannel,
    Guardian,
    Invitation,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    metadata,
    utcnow,
)

__all__ = [
    "Account",
    "AccountState",
    "AuditEvent",
    "BotState",
    "Director",
    "DistributionChannel",
    "Guardian",
    "Invitation",
    "Pupil",
    "PupilGuardian",
    "School",
    "SchoolClass",
    "metadata",
    "utcnow",
]
