"""The language switch of a signed-in family: its choice is stored on its guardian, so the bot,
the letters and the e-mails follow it too (the cookie alone remembers it for this browser)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.portal import security
from bot.portal.pages import portal_of
from bot.services.portal import remember_language


class RememberLanguageMiddleware:
    """After `security.LanguageMiddleware` and the session: when a request chose a language
    (`?lang=`) and the session holds an account, store the choice on its guardian before the
    page is served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            chosen = scope.get("state", {}).get(security.CHOSEN_LANGUAGE)
            if chosen:
                await _remember(Request(scope, receive), chosen)
        await self.app(scope, receive, send)


async def _remember(request: Request, language: str) -> None:
    held = security.session_account(request)
    if held is None:
        return
    account_id, fingerprint = held
    await portal_of(request).run(
        remember_language, account_id=account_id, fingerprint=fingerprint, language=language
    )
