"""Activation, after the letter's credentials: one form (a new password twice, the e-mail
address, one child's birth date) makes the account `activating` and e-mails the confirmation
link; then a page says where it went and sends a new one on request."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, current_language
from bot.portal import security
from bot.portal.guards import page_of, posted_form, session_ended, signed_in
from bot.portal.login import refused_page
from bot.portal.pages import field_errors, portal_of, redirect, render, retry_text
from bot.services.accounts import RefusalReason
from bot.services.portal import (
    ActivationForm,
    FormResult,
    LoginStatus,
    PortalAccount,
    RequestStatus,
    activation_form,
    awaiting_confirmation,
    current_account,
    finish_activation,
    resend_activation_link,
)
from models import AccountState

FORM_PATH = "/activation/finaliser"
WAITING_PATH = "/activation/attente"


def _awaiting_school_text() -> str:
    return _(
        "Too many wrong dates of birth: activation is paused for your safety. Your school has "
        "been told; it will contact you, or allow activation again so that you can try once more."
    )


def _labels() -> dict[str, str]:
    return {
        "new_password": _("New password"),
        "confirm_password": _("New password again"),
        "email": _("E-mail address"),
        "birth_date": _("Date of birth"),
    }


async def activation_form_page(request: Request) -> Response:
    """Show the form: new password, e-mail address, one child's birth date."""
    account = await signed_in(request, AccountState.NOTIFIED)
    if not isinstance(account, PortalAccount):
        return account
    if account.provisional_expired:
        return await refused_page(request, LoginStatus.PROVISIONAL_EXPIRED)
    form = await portal_of(request).run(activation_form, account_id=account.account_id)
    message = _awaiting_school_text() if form.awaiting_school else None
    return render(
        request,
        "activation_form.html",
        {"form": form, "values": {"email": form.email or ""}, "message": message},
    )


async def submit_activation_form(request: Request) -> Response:
    """Check the form; activate and e-mail the confirmation link, or say what to correct."""
    form_fields = await posted_form(request)
    account = await signed_in(request, AccountState.NOTIFIED)
    if not isinstance(account, PortalAccount):
        return account
    portal = portal_of(request)
    email = form_fields.get("email", "").strip()
    birth_date = form_fields.get("birth_date", "").strip()
    result = await portal.run_checking_password(
        finish_activation,
        account_id=account.account_id,
        fingerprint=account.fingerprint,
        new_password=form_fields.get("new_password", ""),
        confirmation=form_fields.get("confirm_password", ""),
        email=email,
        birth_date=birth_date,
        portal_url=portal.portal_url,
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    if result.ok and result.account is not None:
        security.refresh_fingerprint(request, result.account)
        return redirect(WAITING_PATH)
    if result.refusal == RefusalReason.UNKNOWN_ACCOUNT:
        return session_ended(request)
    if result.refusal == RefusalReason.PROVISIONAL_PASSWORD_EXPIRED:
        return await refused_page(request, LoginStatus.PROVISIONAL_EXPIRED)
    if result.refusal is not None:
        return await _page_of_current_state(request, account)
    prefill: ActivationForm = await portal.run(activation_form, account_id=account.account_id)
    return form_problems_page(request, prefill, result, email=email, birth_date=birth_date)


def form_problems_page(
    request: Request,
    prefill: ActivationForm,
    result: FormResult,
    *,
    email: str,
    birth_date: str,
    action: str = FORM_PATH,
) -> Response:
    """The activation form again, saying what to correct (or that it is locked for a while, or
    waits for the school)."""
    errors, summary = field_errors(result.problems, _labels())
    message = None
    status_code = 400
    if result.awaiting_school:
        status_code = 403
        message = _awaiting_school_text()
    elif result.locked_until is not None:
        status_code = 429
        message = " ".join(
            (
                _("Too many wrong dates of birth."),
                retry_text(result.locked_until, portal_of(request)),
            )
        )
    context = {
        "form": prefill,
        "values": {"email": email[:320], "birth_date": birth_date[:32]},
        "errors": errors,
        "summary": summary,
        "message": message,
        "action": action,
    }
    return render(request, "activation_form.html", context, status_code=status_code)


async def _page_of_current_state(request: Request, account: PortalAccount) -> Response:
    portal = portal_of(request)
    now_account = await portal.run(
        current_account,
        account_id=account.account_id,
        fingerprint=account.fingerprint,
        now=portal.clock(),
    )
    if now_account is None:
        return session_ended(request)
    return redirect(page_of(now_account.state))


async def waiting_page(request: Request) -> Response:
    """Say where the confirmation link went; offer to send a new one."""
    account = await signed_in(request, AccountState.ACTIVATING)
    if not isinstance(account, PortalAccount):
        return account
    waiting = await portal_of(request).run(awaiting_confirmation, account_id=account.account_id)
    return render(request, "activation_sent.html", {"waiting": waiting, "message": None})


async def resend_link(request: Request) -> Response:
    """E-mail a new confirmation link (the older ones stop working)."""
    await posted_form(request)
    account = await signed_in(request, AccountState.ACTIVATING)
    if not isinstance(account, PortalAccount):
        return account
    portal = portal_of(request)
    result = await portal.run(
        resend_activation_link,
        account_id=account.account_id,
        fingerprint=account.fingerprint,
        client=security.client_address(request),
        portal_url=portal.portal_url,
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    if result.status == RequestStatus.ACCEPTED:
        security.set_notice(request, "link_resent")
        return redirect(WAITING_PATH)
    if result.status == RequestStatus.RATE_LIMITED and result.retry_at is not None:
        waiting = await portal.run(awaiting_confirmation, account_id=account.account_id)
        message = " ".join(
            (_("Several links were sent already."), retry_text(result.retry_at, portal))
        )
        context = {"waiting": waiting, "message": message}
        return render(request, "activation_sent.html", context, status_code=429, here=WAITING_PATH)
    return await _page_of_current_state(request, account)
