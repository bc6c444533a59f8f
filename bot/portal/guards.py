"""What every flow checks first: the CSRF token of a POST, and the signed-in account and the
state it must be in (each state has its page)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from bot.portal import security
from bot.portal.pages import portal_of, redirect
from bot.services.accounts import known_bot_username
from bot.services.portal import PortalAccount, current_account
from models import AccountState

# The page of each state a signed-in account can be in.
STATE_PAGES = {
    AccountState.NOTIFIED: "/activation/finaliser",
    AccountState.ACTIVATING: "/activation/attente",
    AccountState.ACTIVATED: "/compte",
}


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


async def posted_form(request: Request) -> dict[str, str]:
    """The fields of a POST, once its CSRF token is checked (raises `CsrfRefused`)."""
    form = await security.read_form(request)
    if not security.csrf_is_valid(request, form):
        raise CsrfRefused
    return form


def page_of(state: AccountState) -> str:
    """Where an account in `state` goes after logging in."""
    return STATE_PAGES.get(state, "/connexion")


def session_ended(request: Request) -> Response:
    """Back to the login page: the session no longer opens its account."""
    security.sign_out(request)
    security.set_notice(request, "session_ended")
    return redirect("/connexion")


async def signed_in(request: Request, state: AccountState) -> PortalAccount | Response:
    """The session's account if it is in `state`; else where to go instead."""
    held = security.session_account(request)
    if held is None:
        return redirect("/connexion")
    portal = portal_of(request)
    account_id, fingerprint = held
    account = await portal.run(
        current_account, account_id=account_id, fingerprint=fingerprint, now=portal.clock()
    )
    if account is None:
        return session_ended(request)
    if account.state != state:
        return redirect(page_of(account.state))
    return account


async def bot_help_url(request: Request) -> str | None:
    """The Telegram link to the bot, when the bot has ever started and told its username."""
    username = await portal_of(request).run(known_bot_username)
    return f"https://t.me/{username.lstrip('@')}" if username else None
