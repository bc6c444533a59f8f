"""Logging in and out: the activation page (the letter's identifier and provisional password,
the address its QR code opens) and the login page (a chosen password) check credentials the
same way, then send each account to the page of its state. A successful login leaves the device
cookie (`bot.portal.devices`) that keeps strangers' failures from locking this browser out."""

from __future__ import annotations

import math
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, ngettext
from bot.portal import security
from bot.portal.devices import devices_of
from bot.portal.guards import bot_help_url, page_of, posted_form
from bot.portal.pages import Portal, field_errors, portal_of, redirect, render, retry_text
from bot.services.portal import LoginStatus, Problem, end_sessions, log_in
from models import AccountState

ACTIVATION_PATH = "/activation"
LOGIN_PATH = "/connexion"


def _login_page(request: Request, *, activation: bool) -> dict[str, object]:
    if activation:
        return {
            "step": _("Step 1 of 3"),
            "heading": _("Activate your EduConnect account"),
            "intro": _(
                "Type the identifier and the provisional password printed on the letter or "
                "the e-mail the school sent you."
            ),
            "password_label": _("Provisional password"),
            "password_hint": _("8 characters, capital letters and digits, for example BUNZ57DM."),
            "submit": _("Continue"),
            "action": ACTIVATION_PATH,
        }
    return {
        "step": None,
        "heading": _("Log in to your EduConnect account"),
        "intro": _("Type your identifier and the password you chose when you activated it."),
        "password_label": _("Password"),
        "password_hint": None,
        "submit": _("Log in"),
        "action": LOGIN_PATH,
    }


def _labels() -> dict[str, str]:
    return {"identifier": _("Identifier"), "password": _("Password")}


async def activation_page(request: Request) -> Response:
    """Show the activation login form, the identifier prefilled from the letter's QR code."""
    identifier = request.query_params.get("identifiant", "")[:64]
    context = _login_page(request, activation=True) | {"values": {"identifier": identifier}}
    return render(request, "login.html", context)


async def login_page(request: Request) -> Response:
    """Show the login form."""
    return render(request, "login.html", _login_page(request, activation=False))


async def check_activation_login(request: Request) -> Response:
    """Check the letter's credentials, then go to the next activation step."""
    return await _check(request, activation=True)


async def check_login(request: Request) -> Response:
    """Check the credentials, then go to the page of the account's state."""
    return await _check(request, activation=False)


def _wait_text(until: datetime, portal: Portal) -> tuple[str, int]:
    """What to tell a client that must wait (in seconds for a short delay, else until when),
    and the seconds to wait (the Retry-After header)."""
    seconds = max(1, math.ceil((until - portal.clock()).total_seconds()))
    if seconds < 60:
        text = ngettext(
            "For your security, wait {count} second before trying again.",
            "For your security, wait {count} seconds before trying again.",
            seconds,
        ).format(count=seconds)
    else:
        text = retry_text(until, portal)
    return " ".join((_("Too many failed attempts."), text)), seconds


async def _check(request: Request, *, activation: bool) -> Response:
    form = await posted_form(request)
    portal = portal_of(request)
    identifier = form.get("identifier", "").strip()
    password = form.get("password", "")
    page = _login_page(request, activation=activation)
    here = ACTIVATION_PATH if activation else LOGIN_PATH
    values = {"identifier": identifier[:64]}
    problems = {
        name: Problem.REQUIRED
        for name, value in (("identifier", identifier), ("password", password))
        if not value
    }
    if problems:
        errors, summary = field_errors(problems, _labels())
        context = page | {"values": values, "errors": errors, "summary": summary}
        return render(request, "login.html", context, status_code=400, here=here)
    devices = devices_of(request)
    result = await portal.run_checking_password(
        log_in,
        identifier=identifier,
        password=password,
        client=security.client_address(request),
        device=devices.device_token(request, identifier),
        now=portal.clock(),
    )
    if result.status == LoginStatus.OK and result.account is not None:
        security.sign_in(request, result.account)
        if result.account.state == AccountState.ACTIVATED and activation:
            security.set_notice(request, "already_activated")
        response = redirect(page_of(result.account.state))
        devices.remember(request, response, identifier)
        return response
    if result.status == LoginStatus.WRONG_CREDENTIALS:
        wrong = _(
            "The identifier or the password is wrong. Check them on the letter or the e-mail "
            "from the school; type the password exactly as it is written."
        )
        context = page | {
            "values": values,
            "errors": {"password": wrong},
            "summary": [{"target": "password", "text": wrong, "field": _("Password")}],
        }
        return render(request, "login.html", context, status_code=401, here=here)
    if result.status == LoginStatus.LOCKED and result.locked_until is not None:
        message, seconds = _wait_text(result.locked_until, portal)
        context = page | {"values": values, "message": message}
        refused = render(request, "login.html", context, status_code=429, here=here)
        refused.headers["Retry-After"] = str(seconds)
        return refused
    return await refused_page(request, result.status)


async def refused_page(request: Request, status: LoginStatus) -> Response:
    """The right password, but the account cannot be used: say why and what to do."""
    bot_url = await bot_help_url(request)
    if status == LoginStatus.PROVISIONAL_EXPIRED:
        heading = _("Your provisional password has expired")
        paragraphs = [
            _(
                "A provisional password is valid for 3 months. Ask the school for a new letter: "
                "it will give you a new provisional password, and you will activate your "
                "account with it."
            )
        ]
    elif status == LoginStatus.DEACTIVATED:
        heading = _("This account is closed")
        paragraphs = [
            _(
                "The school no longer lists a child of yours, so this account was closed. If "
                "this is a mistake, contact the school."
            )
        ]
    else:
        heading = _("Your account is not ready yet")
        paragraphs = [
            _(
                "Your credentials are being sent to you. Try again in a few minutes; if it "
                "still does not work, ask the school."
            )
        ]
    context = {"heading": heading, "paragraphs": paragraphs, "bot_url": bot_url}
    return render(request, "login_refused.html", context, status_code=403)


async def log_out(request: Request) -> Response:
    """End the session on the server (the account's session version moves on, so a copy of
    the cookie opens nothing either), then in the browser."""
    await posted_form(request)
    held = security.session_account(request)
    if held is not None:
        account_id, fingerprint = held
        await portal_of(request).run(end_sessions, account_id=account_id, fingerprint=fingerprint)
    security.sign_out(request)
    security.set_notice(request, "signed_out")
    return redirect(LOGIN_PATH)
