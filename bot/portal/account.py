"""« Mon compte », for activated accounts: the children linked, the address on file, changing
the password (the current one first) and the e-mail address (confirmed by a link)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, current_language
from bot.portal import security
from bot.portal.guards import page_of, posted_form, session_ended, signed_in
from bot.portal.pages import field_errors, portal_of, redirect, render, retry_text
from bot.services.accounts import RefusalReason
from bot.services.portal import (
    FormResult,
    PortalAccount,
    account_overview,
    change_own_password,
    current_account,
    request_email_change,
)
from models import AccountState

ACCOUNT_PATH = "/compte"


def _labels() -> dict[str, str]:
    return {
        "current_password": _("Current password"),
        "new_password": _("New password"),
        "confirm_password": _("New password again"),
        "new_email": _("New e-mail address"),
        "email_password": _("Current password"),
    }


async def account_page(request: Request) -> Response:
    """Show the account: who, which children, which address; the forms to change them."""
    account = await signed_in(request, AccountState.ACTIVATED)
    if not isinstance(account, PortalAccount):
        return account
    return await _render(request, account)


async def _render(
    request: Request,
    account: PortalAccount,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    portal = portal_of(request)
    overview = await portal.run(account_overview, account_id=account.account_id, now=portal.clock())
    context: dict[str, Any] = {"overview": overview, "message": None}
    context.update(extra or {})
    return render(request, "account.html", context, status_code=status_code, here=ACCOUNT_PATH)


async def _after(
    request: Request,
    account: PortalAccount,
    result: FormResult,
    *,
    notice: str,
    values: dict[str, str],
) -> Response:
    """Where a « mon compte » form leads: back to the page with a notice, or its errors."""
    if result.ok and result.account is not None:
        security.refresh_fingerprint(request, result.account)
        security.set_notice(request, notice)
        return redirect(ACCOUNT_PATH)
    if result.refusal == RefusalReason.UNKNOWN_ACCOUNT:
        return session_ended(request)
    if result.refusal is not None:
        portal = portal_of(request)
        now_account = await portal.run(
            current_account,
            account_id=account.account_id,
            fingerprint=account.fingerprint,
            now=portal.clock(),
        )
        return redirect(page_of(now_account.state)) if now_account else session_ended(request)
    errors, summary = field_errors(result.problems, _labels())
    message = None
    status_code = 400
    if result.locked_until is not None:
        status_code = 429
        message = " ".join(
            (_("Too many failed attempts."), retry_text(result.locked_until, portal_of(request)))
        )
    extra = {"errors": errors, "summary": summary, "message": message, "values": values}
    return await _render(request, account, extra=extra, status_code=status_code)


async def change_password_form(request: Request) -> Response:
    """Change the password: the current one, then the new one twice."""
    form = await posted_form(request)
    account = await signed_in(request, AccountState.ACTIVATED)
    if not isinstance(account, PortalAccount):
        return account
    portal = portal_of(request)
    result = await portal.run_checking_password(
        change_own_password,
        account_id=account.account_id,
        fingerprint=account.fingerprint,
        current_password=form.get("current_password", ""),
        new_password=form.get("new_password", ""),
        confirmation=form.get("confirm_password", ""),
        now=portal.clock(),
    )
    return await _after(request, account, result, notice="password_changed", values={})


async def change_email_form(request: Request) -> Response:
    """Ask for a new address: a link confirms it before it replaces the current one."""
    form = await posted_form(request)
    account = await signed_in(request, AccountState.ACTIVATED)
    if not isinstance(account, PortalAccount):
        return account
    portal = portal_of(request)
    new_email = form.get("new_email", "").strip()
    result = await portal.run_checking_password(
        request_email_change,
        account_id=account.account_id,
        fingerprint=account.fingerprint,
        current_password=form.get("email_password", ""),
        new_email=new_email,
        client=security.client_address(request),
        portal_url=portal.portal_url,
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    return await _after(
        request, account, result, notice="email_change_sent", values={"new_email": new_email[:320]}
    )
