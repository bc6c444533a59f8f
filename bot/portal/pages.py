"""Rendering the portal's pages: the Jinja2 environment, what every page receives, and the
words for each problem a form can have (one sentence per situation, in the request's
language)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from bot.config import Settings
from bot.context import ServiceRunner
from bot.i18n import (
    LANGUAGE_NAMES,
    RTL_LANGUAGES,
    _,
    current_language,
    format_date,
    format_time,
    ngettext,
    use_language,
)
from bot.portal import security
from bot.services.portal import Problem
from bot.services.roster import state_label

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
T = TypeVar("T")


@dataclass
class Portal:
    """What every request handler of the portal reaches: settings, services, pages, clock."""

    settings: Settings
    db: ServiceRunner
    env: jinja2.Environment
    clock: Callable[[], datetime]
    languages: tuple[str, ...]
    https: bool
    # argon2 verifications at once: each holds a worker thread (and 64 MiB) for ~125 ms;
    # bounded so that a flood of logins never takes every thread the bot's handlers use.
    password_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # « The same words whether or not an account matched » holds for the time too: a request
    # that e-mails a link or identifiers does more work than one that does not (≈ 12 ms more
    # here: the link, the message composed and queued), enough for a guesser to tell, so
    # those answers go out no sooner than this after the request arrived.
    same_answer_seconds: float = 0.5

    async def run(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a service function in a transaction, in a worker thread."""
        return await self.db.run(function, **kwargs)

    async def run_checking_password(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Like `run`, for a service that verifies a password (argon2: slow on purpose)."""
        async with self.password_slots:
            return await self.db.run(function, **kwargs)

    async def answer_no_sooner(self, started: float) -> None:
        """Wait until `same_answer_seconds` after `started` (a `time.monotonic()` reading)."""
        await asyncio.sleep(max(0.0, started + self.same_answer_seconds - time.monotonic()))

    @property
    def portal_url(self) -> str:
        return self.settings.portal_url.rstrip("/")

    @property
    def mail_from(self) -> str:
        return self.settings.mail_from


def portal_of(request: Request) -> Portal:
    portal = request.app.state.portal
    assert isinstance(portal, Portal)
    return portal


def make_environment() -> jinja2.Environment:
    """The templates, autoescaped, with `_()` and `ngettext()` reading the request's language
    (bot.i18n keeps it in a ContextVar, so one installation serves concurrent requests)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext=_, ngettext=ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.globals["format_date"] = format_date
    env.globals["format_time"] = format_time
    env.globals["state_label"] = state_label
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    here: str | None = None,
) -> HTMLResponse:
    """The page `template` in the request's language. `here` is the page's GET address (for
    the language links) when the request was a POST to another one."""
    portal = portal_of(request)
    language = getattr(request.state, "language", None) or current_language()
    path = here or request.url.path
    query = list(request.query_params.multi_items()) if here is None else []
    with use_language(language):
        values: dict[str, Any] = {
            "lang": language,
            "dir": "rtl" if language in RTL_LANGUAGES else "ltr",
            "languages": [
                {
                    "code": code,
                    "name": LANGUAGE_NAMES.get(code, code),
                    "url": security.language_url(path, query, code),
                    "current": code == language,
                }
                for code in portal.languages
            ],
            "csrf_token": security.csrf_token(request),
            "csrf_field": security.CSRF_FIELD,
            "notice": notice_text(security.pop_notice(request)),
            "tz": portal.settings.tz,
            "signed_in": security.is_signed_in(request),
            "errors": {},
            "message": None,
            "summary": [],
            "values": {},
        }
        values.update(context or {})
        body = portal.env.get_template(template).render(values)
    return HTMLResponse(body, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    """After a POST, go to a page with GET (303), so a reload never posts again."""
    return RedirectResponse(path, status_code=303)


# --- Words ----------------------------------------------------------------------------------

_REQUIRED = {
    "identifier": lambda: _("Enter your identifier."),
    "password": lambda: _("Enter your password."),
    "new_password": lambda: _("Choose a password."),
    "confirm_password": lambda: _("Type the same password a second time."),
    "email": lambda: _("Enter your e-mail address."),
    "new_email": lambda: _("Enter the new e-mail address."),
    "birth_date": lambda: _("Enter the date of birth of one of your children."),
    "current_password": lambda: _("Enter your current password."),
    "email_password": lambda: _("Enter your current password."),
}


def problem_text(field_name: str, problem: Problem) -> str:
    """What to tell about `problem` next to the field `field_name`."""
    if problem == Problem.REQUIRED:
        return _REQUIRED.get(field_name, lambda: _("Fill in this field."))()
    texts: dict[Problem, Callable[[], str]] = {
        Problem.PASSWORD_WEAK: lambda: _(
            "Choose a password of at least 12 characters mixing upper-case letters, "
            "lower-case letters, digits and special characters (or at least 14 characters "
            "mixing upper-case letters, lower-case letters and digits)."
        ),
        Problem.PASSWORD_COMMON: lambda: _(
            "This password is one of the most common ones (a common word or name with digits "
            "or symbols added), which anyone guessing tries first: choose a less predictable "
            "one, for example three unrelated words with a digit and a symbol."
        ),
        Problem.PASSWORD_MISMATCH: lambda: _(
            "The two passwords are different: type the same password twice."
        ),
        Problem.PASSWORD_HAS_IDENTIFIER: lambda: _(
            "Your password must not contain your identifier: choose another one."
        ),
        Problem.PASSWORD_IS_PROVISIONAL: lambda: _(
            "Choose a new password of your own, not the provisional one from the letter."
        ),
        Problem.PASSWORD_WRONG: lambda: _("This is not your current password."),
        Problem.PASSWORD_UNCHANGED: lambda: _(
            "The new password must be different from the current one."
        ),
        Problem.EMAIL_INVALID: lambda: _(
            "Enter a valid e-mail address, for example prenom.nom@example.fr."
        ),
        Problem.EMAIL_UNCHANGED: lambda: _("This is already the e-mail address of your account."),
        Problem.BIRTH_DATE_INVALID: lambda: _(
            "Enter the date as day/month/year, for example 14/03/2018."
        ),
        Problem.BIRTH_DATE_WRONG: lambda: _(
            "This date of birth matches none of your children as the school knows them. "
            "Check it; if it is right, ask the school to correct its records."
        ),
        Problem.BIRTH_DATE_UNKNOWN: lambda: _(
            "The school has no date of birth on file for your children: ask the school to "
            "complete its records, then try again."
        ),
    }
    return texts[problem]()


def field_errors(
    problems: dict[str, Problem], labels: dict[str, str]
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The message next to each field, and the error summary's entries (in form order:
    `labels` lists the fields as the form shows them)."""
    errors = {name: problem_text(name, problem) for name, problem in problems.items()}
    summary = [
        {"field": labels[name], "text": errors[name], "target": name}
        for name in labels
        if name in errors
    ]
    return errors, summary


def retry_text(moment: datetime, portal: Portal) -> str:
    """« Try again after 14:35. »"""
    return _("For your security, try again after {time}.").format(
        time=format_time(moment, tz=portal.settings.tz)
    )


def notice_text(code: str | None) -> str | None:
    """The once-shown message of a notice code."""
    if code is None:
        return None
    texts: dict[str, Callable[[], str]] = {
        "signed_out": lambda: _("You are logged out."),
        "session_ended": lambda: _(
            "Your session has ended (your password changed, or it was open too long): log in again."
        ),
        "password_changed": lambda: _("Your password is changed."),
        "email_change_sent": lambda: _(
            "A confirmation link was sent to the new address: the change is made when you open it."
        ),
        "link_resent": lambda: _(
            "A new confirmation link was sent. The previous ones no longer work."
        ),
        "already_activated": lambda: _("Your account is already activated: you are logged in."),
        "password_reset": lambda: _("Your new password is saved: log in with it."),
    }
    text = texts.get(code)
    return text() if text is not None else None
