"""« Mot de passe oublié » (identifier + address on file → a link valid 30 minutes → a new
password) and « identifiant oublié » (address → the identifiers linked to it, by e-mail).
Both say the same words whether or not an account matched, after the same time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _, current_language
from bot.portal import security
from bot.portal.guards import posted_form
from bot.portal.links import bad_link_page
from bot.portal.pages import field_errors, portal_of, redirect, render, retry_text
from bot.services.accounts import normalise_email
from bot.services.portal import (
    LinkStatus,
    LinkView,
    PortalTokenPurpose,
    Problem,
    RequestResult,
    RequestStatus,
    inspect_link,
    request_password_reset,
    reset_password_with_link,
    send_identifier_reminder,
)

FORGOT_IDENTIFIER_PATH = "/identifiant-oublie"


async def forgot_password_page(request: Request) -> Response:
    """Show the form: identifier and e-mail address of the account."""
    return render(request, "forgot_password.html", {"sent": False, "message": None})


def _email_problem(email: str) -> Problem | None:
    if not email:
        return Problem.REQUIRED
    return Problem.EMAIL_INVALID if normalise_email(email) is None else None


async def _send_and_answer(
    request: Request,
    template: str,
    *,
    values: dict[str, str],
    problems: dict[str, Problem],
    labels: dict[str, str],
    service: Callable[..., RequestResult],
    **fields: str,
) -> Response:
    """Refuse an incomplete form (400) or a client asking too often (429); else run `service`
    (which e-mails what it found, if anything) and give the same answer, after the same time,
    whatever it found."""
    portal = portal_of(request)
    if problems:
        errors, summary = field_errors(problems, labels)
        context = {
            "sent": False,
            "values": values,
            "errors": errors,
            "summary": summary,
            "message": None,
        }
        return render(request, template, context, status_code=400)
    started = time.monotonic()
    result = await portal.run(
        service,
        **fields,
        client=security.client_address(request),
        portal_url=portal.portal_url,
        mail_from=portal.mail_from,
        language=current_language(),
        now=portal.clock(),
    )
    if result.status == RequestStatus.RATE_LIMITED and result.retry_at is not None:
        message = " ".join((_("Too many requests."), retry_text(result.retry_at, portal)))
        context = {"sent": False, "values": values, "message": message}
        return render(request, template, context, status_code=429)
    await portal.answer_no_sooner(started)
    return render(request, template, {"sent": True, "message": None})


async def send_reset_link(request: Request) -> Response:
    """E-mail a reset link if an activated account matches; say the same words either way."""
    form = await posted_form(request)
    identifier = form.get("identifier", "").strip()
    email = form.get("email", "").strip()
    problems = {"identifier": Problem.REQUIRED} if not identifier else {}
    if (problem := _email_problem(email)) is not None:
        problems["email"] = problem
    return await _send_and_answer(
        request,
        "forgot_password.html",
        values={"identifier": identifier[:64], "email": email[:320]},
        problems=problems,
        labels={"identifier": _("Identifier"), "email": _("E-mail address")},
        service=request_password_reset,
        identifier=identifier,
        email=email,
    )


async def forgot_identifier_page(request: Request) -> Response:
    """Show the form: the e-mail address."""
    return render(request, "forgot_identifier.html", {"sent": False, "message": None})


async def send_identifiers(request: Request) -> Response:
    """E-mail the identifiers linked to the address; say the same words either way."""
    form = await posted_form(request)
    email = form.get("email", "").strip()
    problem = _email_problem(email)
    return await _send_and_answer(
        request,
        "forgot_identifier.html",
        values={"email": email[:320]},
        problems={"email": problem} if problem is not None else {},
        labels={"email": _("E-mail address")},
        service=send_identifier_reminder,
        email=email,
    )


def _token(request: Request) -> str:
    return str(request.path_params.get("token", ""))[:100]


def _reset_labels() -> dict[str, str]:
    return {"new_password": _("New password"), "confirm_password": _("New password again")}


async def reset_page(request: Request) -> Response:
    """Show the new-password form of a reset link (the link is used only on success)."""
    portal = portal_of(request)
    view = await portal.run(
        inspect_link,
        token=_token(request),
        purposes=(PortalTokenPurpose.PASSWORD_RESET,),
        client=security.client_address(request),
        now=portal.clock(),
    )
    if view.status != LinkStatus.VALID:
        return bad_link_page(request, _as_reset(view))
    context = {"identifier": view.identifier, "action": request.url.path, "message": None}
    return render(request, "reset.html", context)


async def reset_password(request: Request) -> Response:
    """Save the new password, end every session of the account, go to the login page."""
    form = await posted_form(request)
    portal = portal_of(request)
    view, result = await portal.run_checking_password(
        reset_password_with_link,
        token=_token(request),
        new_password=form.get("new_password", ""),
        confirmation=form.get("confirm_password", ""),
        client=security.client_address(request),
        now=portal.clock(),
    )
    if view.status != LinkStatus.VALID:
        return bad_link_page(request, _as_reset(view))
    if result.ok:
        security.sign_out(request)
        security.set_notice(request, "password_reset")
        return redirect("/connexion")
    errors, summary = field_errors(result.problems, _reset_labels())
    context = {
        "identifier": view.identifier,
        "action": request.url.path,
        "errors": errors,
        "summary": summary,
        "message": None,
    }
    return render(request, "reset.html", context, status_code=400)


def _as_reset(view: LinkView) -> LinkView:
    # A bad link on the reset page offers a new reset link, whatever it was.
    return replace(view, purpose=PortalTokenPurpose.PASSWORD_RESET)
