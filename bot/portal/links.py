"""The links the portal e-mails. Opening one shows a page with a button; only pressing it
(a POST with the session's CSRF token) uses the link, because mail scanners open links too.
Also the pages that say why a link does not work (used, expired, replaced, unknown)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, current_language
from bot.portal import security
from bot.portal.guards import posted_form
from bot.portal.pages import portal_of, render, retry_text
from bot.services.portal import (
    FORGOT_PASSWORD_PATH,
    LinkStatus,
    LinkView,
    PortalTokenPurpose,
    follow_confirmation_link,
    inspect_link,
)
from models import AccountState

CONFIRMATION_PURPOSES = (PortalTokenPurpose.ACTIVATION, PortalTokenPurpose.EMAIL_CHANGE)
# Gone for links that existed, not found for the others, 429 while the client is throttled.
_STATUS_CODES = {
    LinkStatus.UNKNOWN: 404,
    LinkStatus.USED: 410,
    LinkStatus.EXPIRED: 410,
    LinkStatus.REVOKED: 410,
    LinkStatus.RATE_LIMITED: 429,
}


def bad_link_page(
    request: Request, view: LinkView, *, ask_again: dict[str, str] | None = None
) -> Response:
    """Why this link does not work, and what to do instead (`ask_again`: where to get a new
    one, when not from the portal)."""
    portal = portal_of(request)
    reset = view.purpose == PortalTokenPurpose.PASSWORD_RESET
    login = {"url": "/connexion", "text": _("Log in")}
    if ask_again is None:
        ask_again = (
            {"url": FORGOT_PASSWORD_PATH, "text": _("Ask for a new link")}
            if reset
            else {"url": "/connexion", "text": _("Log in to get a new link")}
        )
    if view.status == LinkStatus.USED:
        heading = _("This link was already used")
        if view.state == AccountState.ACTIVATED and not reset:
            paragraphs = [_("Each link works once. Your account is activated: log in.")]
        else:
            paragraphs = [_("Each link works once. Log in, or ask for a new link.")]
        links = [login]
    elif view.status == LinkStatus.EXPIRED:
        heading = _("This link has expired")
        paragraphs = [_("Links work for a limited time. Ask for a new one.")]
        links = [ask_again]
    elif view.status == LinkStatus.REVOKED:
        heading = _("This link was replaced")
        paragraphs = [
            _(
                "A newer link was sent since, or the account changed: use the most recent "
                "e-mail, or ask for a new link."
            )
        ]
        links = [ask_again]
    elif view.status == LinkStatus.RATE_LIMITED and view.retry_at is not None:
        heading = _("Too many invalid links")
        paragraphs = [retry_text(view.retry_at, portal)]
        links = []
    else:
        heading = _("This link does not work")
        paragraphs = [
            _(
                "Check that you opened the whole link from the e-mail: some mail programs cut "
                "long links in two."
            )
        ]
        links = [login]
    context = {"heading": heading, "paragraphs": paragraphs, "links": links, "confirm": None}
    return render(request, "link.html", context, status_code=_STATUS_CODES.get(view.status, 404))


def _token(request: Request) -> str:
    return str(request.path_params.get("token", ""))[:100]


async def confirmation_page(request: Request) -> Response:
    """Show what the link confirms, with the button that confirms it."""
    portal = portal_of(request)
    view = await portal.run(
        inspect_link,
        token=_token(request),
        purposes=CONFIRMATION_PURPOSES,
        client=security.client_address(request),
        now=portal.clock(),
    )
    if view.status != LinkStatus.VALID:
        return bad_link_page(request, view)
    if view.purpose == PortalTokenPurpose.ACTIVATION:
        heading = _("Activate your account")
        paragraphs = [
            _(
                "Last step: press the button to confirm your e-mail address and activate the "
                "account {identifier}."
            ).format(identifier=view.identifier)
        ]
        confirm = _("Activate my account")
    else:
        heading = _("Confirm your new e-mail address")
        paragraphs = [
            _(
                "Press the button to make {email} the e-mail address of the account {identifier}."
            ).format(email=view.email, identifier=view.identifier)
        ]
        confirm = _("Confirm this address")
    context = {
        "heading": heading,
        "paragraphs": paragraphs,
        "confirm": confirm,
        "action": request.url.path,
        "links": [],
    }
    return render(request, "link.html", context)


async def confirm(request: Request) -> Response:
    """Use the link: activate the account, or change its e-mail address."""
    await posted_form(request)
    portal = portal_of(request)
    view = await portal.run(
        follow_confirmation_link,
        token=_token(request),
        client=security.client_address(request),
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    if view.status != LinkStatus.VALID:
        return bad_link_page(request, view)
    if view.purpose == PortalTokenPurpose.ACTIVATION:
        heading = _("Your account is activated")
        paragraphs = [
            _(
                "Thank you: the EduConnect account {identifier} is activated. From now on, log "
                "in with your identifier and the password you chose."
            ).format(identifier=view.identifier)
        ]
    else:
        heading = _("Your e-mail address is changed")
        paragraphs = [
            _("{email} is now the e-mail address of the account {identifier}.").format(
                email=view.email, identifier=view.identifier
            )
        ]
    context = {
        "heading": heading,
        "paragraphs": paragraphs,
        "confirm": None,
        "links": [{"url": "/connexion", "text": _("Log in")}],
    }
    return render(request, "link.html", context)
