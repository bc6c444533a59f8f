"""Activating with a verified mobile number: the link the bot gives a family whose shared number
matched opens the activation form without the provisional password; sending it makes the account
`activating`, e-mails the confirmation link and signs the family in, as after the letter."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, current_language
from bot.portal import security
from bot.portal.activation import WAITING_PATH, form_problems_page
from bot.portal.guards import bot_help_url, posted_form
from bot.portal.links import bad_link_page
from bot.portal.pages import portal_of, redirect, render
from bot.services.portal import (
    LinkStatus,
    LinkView,
    finish_phone_activation,
    phone_activation_page,
)


def _token(request: Request) -> str:
    return str(request.path_params.get("token", ""))[:100]


async def _bad_link(request: Request, view: LinkView) -> Response:
    # A new link comes from the bot, where the family shared its number.
    url = await bot_help_url(request)
    ask_again = {"url": url, "text": _("Ask the bot for a new link")} if url else None
    return bad_link_page(request, view, ask_again=ask_again)


async def phone_activation_form(request: Request) -> Response:
    """Show the activation form of a phone link (the link is used only on success)."""
    portal = portal_of(request)
    page = await portal.run(
        phone_activation_page,
        token=_token(request),
        client=security.client_address(request),
        now=portal.clock(),
    )
    if page.view.status != LinkStatus.VALID or page.form is None:
        return await _bad_link(request, page.view)
    context = {
        "form": page.form,
        "values": {"email": page.form.email or ""},
        "message": None,
        "action": request.url.path,
    }
    return render(request, "activation_form.html", context)


async def submit_phone_activation(request: Request) -> Response:
    """Check the form; activate, e-mail the confirmation link and sign in, or say what to
    correct."""
    form_fields = await posted_form(request)
    portal = portal_of(request)
    email = form_fields.get("email", "").strip()
    birth_date = form_fields.get("birth_date", "").strip()
    page = await portal.run_checking_password(
        finish_phone_activation,
        token=_token(request),
        client=security.client_address(request),
        new_password=form_fields.get("new_password", ""),
        confirmation=form_fields.get("confirm_password", ""),
        email=email,
        birth_date=birth_date,
        portal_url=portal.portal_url,
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    result = page.result
    if page.view.status != LinkStatus.VALID or result is None:
        return await _bad_link(request, page.view)
    if result.ok and result.account is not None:
        security.sign_in(request, result.account)
        return redirect(WAITING_PATH)
    if page.form is None or result.refusal is not None:
        # Activated or deactivated meanwhile: the link has nothing left to do.
        return await _bad_link(request, LinkView(LinkStatus.REVOKED, purpose=page.view.purpose))
    return form_problems_page(
        request, page.form, result, email=email, birth_date=birth_date, action=request.url.path
    )
