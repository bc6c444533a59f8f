"""The activation portal's work, without HTTP: logging in with throttling and lockout,
activation, « mon compte », forgotten password and identifier, and the e-mails they send.

One module per flow, as `bot/portal/` has one per page: `login.py`, `activation.py`, `links.py`
(the e-mailed single-use links), `phone.py` (the link the bot gives after a verified mobile
number), `account.py`, `recovery.py`, `language.py` (the switch's choice stored on the
guardian), plus `throttling.py`, `mail.py` and `operations.py`. State changes go through the
account service (`bot.services.accounts`), which audits them; the portal adds its own refusals
to the audit log. Every function takes `session=` and leaves committing to the caller.
"""

from __future__ import annotations

from bot.services.portal.account import account_overview, change_own_password, request_email_change
from bot.services.portal.activation import (
    ActivationForm,
    activation_form,
    awaiting_confirmation,
    finish_activation,
    resend_activation_link,
    send_confirmation_link_again,
)
from bot.services.portal.activation_locks import (
    MAX_WRONG_BIRTH_DATES,
    LockNotice,
    UnlockStatus,
    activation_lock_notices,
    allow_activation_again,
    record_lock_notice,
)
from bot.services.portal.forms import FormResult, Problem, RequestResult, RequestStatus
from bot.services.portal.language import remember_language
from bot.services.portal.links import LinkStatus, LinkView, follow_confirmation_link, inspect_link
from bot.services.portal.login import LoginStatus, log_in
from bot.services.portal.operations import database_is_reachable, purge_stale, record_csrf_refusal
from bot.services.portal.phone import (
    PHONE_ACTIVATION_VALIDITY,
    PhoneActivationLink,
    PhoneActivationPage,
    finish_phone_activation,
    issue_phone_activation_link,
    phone_activation_page,
)
from bot.services.portal.recovery import (
    FORGOT_PASSWORD_PATH,
    forgotten_password_url,
    request_password_reset,
    reset_password_with_link,
    send_identifier_reminder,
)
from bot.services.portal.sessions import PortalAccount, current_account, end_sessions
from models import PortalTokenPurpose

__all__ = [
    "FORGOT_PASSWORD_PATH",
    "MAX_WRONG_BIRTH_DATES",
    "PHONE_ACTIVATION_VALIDITY",
    "ActivationForm",
    "FormResult",
    "LinkStatus",
    "LinkView",
    "LockNotice",
    "LoginStatus",
    "PhoneActivationLink",
    "PhoneActivationPage",
    "PortalAccount",
    "PortalTokenPurpose",
    "Problem",
    "RequestResult",
    "RequestStatus",
    "UnlockStatus",
    "account_overview",
    "activation_form",
    "activation_lock_notices",
    "allow_activation_again",
    "awaiting_confirmation",
    "change_own_password",
    "current_account",
    "database_is_reachable",
    "end_sessions",
    "finish_activation",
    "finish_phone_activation",
    "follow_confirmation_link",
    "forgotten_password_url",
    "inspect_link",
    "issue_phone_activation_link",
    "log_in",
    "phone_activation_page",
    "purge_stale",
    "record_csrf_refusal",
    "record_lock_notice",
    "remember_language",
    "request_email_change",
    "request_password_reset",
    "resend_activation_link",
    "reset_password_with_link",
    "send_confirmation_link_again",
    "send_identifier_reminder",
]
