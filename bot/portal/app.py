"""The activation portal as a Starlette application: its routes, middleware (security headers,
language, signed session), error pages and health endpoint. `create_portal` builds it on the
bot's settings and database; `bot.portal.server` serves it in the bot's event loop."""

from __future__ import annotations

import asyncio
import html
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.config import Settings
from bot.context import ServiceRunner
from bot.i18n import DEFAULT_LANGUAGE, SOURCE_LANGUAGE, SUPPORTED_LANGUAGES, _, catalog_path
from bot.portal import account, activation, language, links, login, phone, recovery, security
from bot.portal.devices import DeviceCookies
from bot.portal.guards import CsrfRefused
from bot.portal.pages import STATIC_DIR, Portal, make_environment, portal_of, render
from bot.portal.webhook import WebhookReceiver, webhook_route
from bot.services.portal import FORGOT_PASSWORD_PATH, database_is_reachable, record_csrf_refusal
from models import utcnow

log = logging.getLogger(__name__)


def available_languages() -> tuple[str, ...]:
    """The languages the portal offers: French, English (the ids), and those with a catalog."""
    return tuple(
        code
        for code in SUPPORTED_LANGUAGES
        if code in (DEFAULT_LANGUAGE, SOURCE_LANGUAGE) or catalog_path(code).exists()
    )


async def home(request: Request) -> Response:
    """Show the two ways in: activate (first time) or log in."""
    return render(request, "home.html")


async def health(request: Request) -> Response:
    """For operators and load balancers: 200 when the database answers, else 503."""
    portal = portal_of(request)
    try:
        reachable = await portal.run(database_is_reachable)
    except Exception:
        log.exception("portal health check: the database does not answer")
        reachable = False
    if reachable:
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)


def _routes() -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        Route("/", home, methods=get),
        Route("/health", health, methods=get),
        Route(login.ACTIVATION_PATH, login.activation_page, methods=get),
        Route(login.ACTIVATION_PATH, login.check_activation_login, methods=post),
        Route(activation.FORM_PATH, activation.activation_form_page, methods=get),
        Route(activation.FORM_PATH, activation.submit_activation_form, methods=post),
        Route(activation.WAITING_PATH, activation.waiting_page, methods=get),
        Route("/activation/renvoyer", activation.resend_link, methods=post),
        Route("/confirmer/{token}", links.confirmation_page, methods=get),
        Route("/confirmer/{token}", links.confirm, methods=post),
        Route("/telephone/{token}", phone.phone_activation_form, methods=get),
        Route("/telephone/{token}", phone.submit_phone_activation, methods=post),
        Route(login.LOGIN_PATH, login.login_page, methods=get),
        Route(login.LOGIN_PATH, login.check_login, methods=post),
        Route("/deconnexion", login.log_out, methods=post),
        Route(account.ACCOUNT_PATH, account.account_page, methods=get),
        Route("/compte/mot-de-passe", account.change_password_form, methods=post),
        Route("/compte/adresse", account.change_email_form, methods=post),
        Route(FORGOT_PASSWORD_PATH, recovery.forgot_password_page, methods=get),
        Route(FORGOT_PASSWORD_PATH, recovery.send_reset_link, methods=post),
        Route("/reinitialiser/{token}", recovery.reset_page, methods=get),
        Route("/reinitialiser/{token}", recovery.reset_password, methods=post),
        Route(recovery.FORGOT_IDENTIFIER_PATH, recovery.forgot_identifier_page, methods=get),
        Route(recovery.FORGOT_IDENTIFIER_PATH, recovery.send_identifiers, methods=post),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def serves_page(path: str) -> bool:
    """Whether one of the portal's pages answers at `path` (whatever the method): the
    webhook's path must not be one of them."""
    scope = {"type": "http", "path": path, "method": "POST", "root_path": ""}
    return any(route.matches(scope)[0] is not Match.NONE for route in _routes())


# --- Error pages ----------------------------------------------------------------------------


def _error_page(request: Request, status_code: int, heading: str, text: str) -> Response:
    context = {"heading": heading, "text": text}
    return render(request, "error.html", context, status_code=status_code, here="/")


async def _csrf_refused(request: Request, _exc: Exception) -> Response:
    held = request.session.get("account")
    page = request.url.path.strip("/").split("/")[0] or "home"
    await portal_of(request).run(
        record_csrf_refusal, page=page, account_id=held if isinstance(held, int) else None
    )
    return _error_page(
        request,
        403,
        _("This form has expired"),
        _(
            "For your security, a form works only for a while and needs cookies. Go back, "
            "reload the page and try again."
        ),
    )


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    # The client left before sending the body it announced: nobody will read this answer,
    # and a traceback per dropped connection would only bury the logs.
    return Response(status_code=400)


async def _has_nul(request: Request, _exc: Exception) -> Response:
    return _error_page(
        request,
        400,
        _("This form contains a character that is not allowed"),
        _(
            "What was sent holds an invisible control character, which no one types. Go back, "
            "type the fields again (rather than pasting them) and send the form again."
        ),
    )


async def _too_large(request: Request, _exc: Exception) -> Response:
    return _error_page(
        request, 413, _("This form is too large"), _("Go back and shorten what you typed.")
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    status_code = exc.status_code if isinstance(exc, HTTPException) else 500
    if status_code == 405:
        return _error_page(
            request,
            405,
            _("This page cannot be used this way"),
            _("Start again from the home page."),
        )
    return _error_page(
        request,
        status_code,
        _("Page not found"),
        _(
            "This address does not exist on the portal. Check it, or start again from the "
            "home page."
        ),
    )


def _server_error_handler(https: bool) -> Callable[[Request, Exception], Any]:
    # Runs outside every other middleware (Starlette's ServerErrorMiddleware): a self-contained
    # page with its own security headers, nothing that could fail in turn.
    headers = dict(security.security_headers(https=https))
    headers["Cache-Control"] = "no-store"

    async def server_error(request: Request, exc: Exception) -> Response:
        heading = html.escape(_("Something went wrong"))
        text = html.escape(_("Try again in a moment. If it goes on, tell the school."))
        body = (
            f'<!DOCTYPE html>\n<html lang="{DEFAULT_LANGUAGE}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{heading}</title>\n"
            '<link rel="stylesheet" href="/static/portal.css">\n</head>\n<body>\n'
            f'<main id="main" class="wrap">\n<h1>{heading}</h1>\n<p>{text}</p>\n'
            '<p><a href="/">EduConnect</a></p>\n</main>\n</body>\n</html>\n'
        )
        return HTMLResponse(body, status_code=500, headers=headers)

    return server_error


# --- The application ------------------------------------------------------------------------


def create_portal(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime] | None = None,
    session_secret: str | None = None,
    webhook: WebhookReceiver | None = None,
) -> Starlette:
    """The portal for `settings` on `engine`. `clock` gives the current time (tests move it);
    the session secret defaults to the one kept in DATA_DIR. With `webhook`, it also receives
    the bot's Telegram updates at the webhook's path (webhook mode)."""
    https = settings.portal_url.lower().startswith("https://")
    languages = available_languages()
    portal = Portal(
        settings=settings,
        db=ServiceRunner(engine),
        env=make_environment(),
        clock=clock or utcnow,
        languages=languages,
        https=https,
        # As many argon2 verifications at once as there are cores: more would only queue.
        password_slots=asyncio.Semaphore(max(1, len(os.sched_getaffinity(0)))),
    )
    secret = session_secret or security.load_session_secret(settings.ensure_data_dir())
    middleware = [
        Middleware(security.SecurityHeadersMiddleware, https=https),
        Middleware(security.LanguageMiddleware, languages=languages, https=https),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie=security.SESSION_COOKIE,
            max_age=security.SESSION_IDLE_SECONDS,
            same_site="lax",
            https_only=https,
        ),
        # Inside the session: a signed-in family's switch is stored on its guardian.
        Middleware(language.RememberLanguageMiddleware),
    ]
    exception_handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        CsrfRefused: _csrf_refused,
        security.FormTooLarge: _too_large,
        security.ClientGone: _client_gone,
        security.FormHasNul: _has_nul,
        HTTPException: _http_error,
        500: _server_error_handler(https),
    }
    routes = _routes()
    if webhook is not None:
        routes.insert(0, webhook_route(webhook.endpoint.path))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=exception_handlers)
    app.state.portal = portal
    app.state.webhook = webhook
    app.state.devices = DeviceCookies(secret, https=https)
    return app
