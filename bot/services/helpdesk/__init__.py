"""The help desk: families' requests to their school (« D-2026-0042 »), matched to a guardian
record when possible, and what the school's directors do about them.

- `filing`: the daily limit, the reference, the match, the first event;
- `matching`: linked chat, then shared phone number, then the names the family typed;
- `views`: a request for its school's directors, a school's queue, a family's own requests;
- `handling`: taking, answering (the standard actions are done by the distribution, portal and
  roster services: this records them), choosing the record, closing, a family's follow-up.
Nothing here speaks Telegram.
"""

from __future__ import annotations

from bot.services.helpdesk.actions import (
    ANSWERS,
    MAX_FAMILY_MESSAGES,
    MAX_NAME_LENGTH,
    MAX_REQUESTS_PER_DAY,
    MAX_TEXT_LENGTH,
    HelpAction,
    HelpDeskError,
    RequestClosedError,
    RequestNotFoundError,
    TooManyRequestsError,
)
from bot.services.helpdesk.filing import (
    FiledRequest,
    HelpDeclaration,
    check_request_limit,
    file_help_request,
    format_reference,
    school_year,
)
from bot.services.helpdesk.handling import (
    FamilyMessage,
    FamilyNotice,
    add_family_message,
    choose_record,
    record_answer,
    take_request,
)
from bot.services.helpdesk.views import (
    EventLine,
    RecordSummary,
    RequestPage,
    RequestView,
    family_requests,
    request_view,
    school_requests,
    unsettled_request_count,
)
from models import HelpStatus, HelpTopic

__all__ = [
    "ANSWERS",
    "MAX_FAMILY_MESSAGES",
    "MAX_NAME_LENGTH",
    "MAX_REQUESTS_PER_DAY",
    "MAX_TEXT_LENGTH",
    "EventLine",
    "FamilyMessage",
    "FamilyNotice",
    "FiledRequest",
    "HelpAction",
    "HelpDeclaration",
    "HelpDeskError",
    "HelpStatus",
    "HelpTopic",
    "RecordSummary",
    "RequestClosedError",
    "RequestNotFoundError",
    "RequestPage",
    "RequestView",
    "TooManyRequestsError",
    "add_family_message",
    "check_request_limit",
    "choose_record",
    "family_requests",
    "file_help_request",
    "format_reference",
    "record_answer",
    "request_view",
    "school_requests",
    "school_year",
    "take_request",
    "unsettled_request_count",
]
