"""The portal's defences that are not about accounts: the session secret, the session's
content, CSRF tokens, size-limited form parsing, the client's address, the language cookie
and the security headers of every response.

Sessions are Starlette's signed cookies (itsdangerous): HttpOnly, SameSite=Lax, Secure when
PORTAL_URL is https, 30 minutes idle at most and 12 hours in all. They hold an account id, a
fingerprint of its password hash and session version (a changed or reset password, or logging
out, ends every session opened before, copies of the cookie included), a CSRF token and a
notice to show once: never a password, an address or anything else personal.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.i18n import DEFAULT_LANGUAGE, use_language
from bot.services.portal import PortalAccount

SESSION_SECRET_FILE = "portal-session.key"
SESSION_COOKIE = "educonnect_portal"
LANGUAGE_COOKIE = "educonnect_lang"
LANGUAGE_PARAMETER = "lang"
# The session ends after this long without a request…
SESSION_IDLE_SECONDS = 30 * 60
# …and this long after logging in, whatever happens.
SESSION_LIFETIME_SECONDS = 12 * 3600
# Our forms are a few short fields; a bigger body is not one of them.
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 20
CSRF_FIELD = "csrf_token"

_ACCOUNT = "account"
_FINGERPRINT = "fp"
_SINCE = "since"
_SEEN = "seen"
_CSRF = "csrf"
_NOTICE = "notice"


# --- The secret -----------------------------------------------------------------------------


def load_session_secret(data_dir: Path) -> str:
    """The key that signs session cookies, made on first use and kept in `DATA_DIR` (0600),
    so sessions survive a restart and every process of the deployment shares it."""
    path = data_dir / SESSION_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it a moment ago: use theirs
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secret)
            return secret
    return path.read_text(encoding="ascii").strip()


# --- The session ----------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """This session's CSRF token (the synchronizer token every form carries)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def csrf_is_valid(request: Request, form: dict[str, str]) -> bool:
    """Whether the form carries this session's CSRF token."""
    expected = request.session.get(_CSRF)
    given = form.get(CSRF_FIELD, "")
    return (
        isinstance(expected, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
    )


def sign_in(request: Request, account: PortalAccount) -> None:
    """Open a session for `account`: a fresh session (new CSRF token), nothing else kept."""
    notice = request.session.get(_NOTICE)
    request.session.clear()
    now = int(time.time())
    request.session.update(
        {
            _ACCOUNT: account.account_id,
            _FINGERPRINT: account.fingerprint,
            _SINCE: now,
            _SEEN: now,
            _CSRF: secrets.token_urlsafe(32),
        }
    )
    if notice:
        request.session[_NOTICE] = notice


def refresh_fingerprint(request: Request, account: PortalAccount) -> None:
    """Keep this session open after its own password change (the others end)."""
    request.session[_FINGERPRINT] = account.fingerprint


def sign_out(request: Request) -> None:
    """End the session (the cookie is cleared)."""
    request.session.clear()


def session_account(request: Request) -> tuple[int, str] | None:
    """(account id, password fingerprint) of the signed-in session, or None."""
    session = request.session
    account_id, fingerprint, since = (
        session.get(_ACCOUNT),
        session.get(_FINGERPRINT),
        session.get(_SINCE),
    )
    if not isinstance(account_id, int) or not isinstance(fingerprint, str):
        return None
    now = int(time.time())
    if not isinstance(since, int) or now - since > SESSION_LIFETIME_SECONDS:
        sign_out(request)
        return None
    # Re-signing the cookie at each request makes the idle limit slide.
    session[_SEEN] = now
    return account_id, fingerprint


def is_signed_in(request: Request) -> bool:
    """Whether the session holds an account (without checking it is still valid)."""
    return isinstance(request.session.get(_ACCOUNT), int)


def set_notice(request: Request, code: str) -> None:
    """A message to show once on the next page (a code; the page words it)."""
    request.session[_NOTICE] = code


def pop_notice(request: Request) -> str | None:
    """The message to show once, if any."""
    notice = request.session.pop(_NOTICE, None)
    return notice if isinstance(notice, str) else None


# --- Requests -------------------------------------------------------------------------------


class FormTooLarge(Exception):
    """The request body is larger than any of our forms."""


class ClientGone(Exception):
    """The client announced a body and went away before sending it: nobody reads the answer."""


class FormHasNul(Exception):
    """A field holds a NUL character, which no one types (and PostgreSQL refuses in text)."""


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form (the last value of a repeated field), reading at most
    MAX_FORM_BYTES. Any other body is an empty form (so its CSRF check fails). Raises
    `FormTooLarge`, `ClientGone` (the body never came) or `FormHasNul`: every route reads its
    form here, so each is answered once, in `bot.portal.app`."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise FormTooLarge
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise FormTooLarge
    except ClientDisconnect:
        raise ClientGone from None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return {}
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise FormHasNul
    return {name: value for name, value in pairs}


def client_address(connection: HTTPConnection) -> str:
    """The client's IP address (uvicorn takes it from X-Forwarded-For only when the request
    comes through a trusted proxy: FORWARDED_ALLOW_IPS, 127.0.0.1 by default)."""
    client = connection.client
    return client.host if client is not None else "unknown"


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (never another site: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# --- Middleware -----------------------------------------------------------------------------


def content_security_policy() -> str:
    """No script at all, no framing, forms post to the portal only."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(*, https: bool) -> list[tuple[str, str]]:
    """The headers every response carries."""
    headers = [
        ("Content-Security-Policy", content_security_policy()),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        # Links carry tokens (confirmation, reset): never send them to another site.
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return headers


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, and `no-store` to every page (they show
    personal data; only /static may be cached)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers[name] = value
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Where LanguageMiddleware leaves the language a request asked for with `?lang=` (the
# switch), for `bot.portal.language` to store on a signed-in family's guardian.
CHOSEN_LANGUAGE = "chosen_language"


def accepted_language(header: str | None, languages: Iterable[str]) -> str | None:
    """The first of `languages` the browser's Accept-Language accepts, by quality then order
    (« ar-MA,ar;q=0.9,fr;q=0.8 » → « ar »), or None."""
    offered = tuple(languages)
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        code, _sep, parameters = item.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _eq, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        base = code.strip().replace("_", "-").split("-")[0].lower()
        if quality > 0 and base in offered:
            ranked.append((-quality, position, base))
    return min(ranked)[2] if ranked else None


class LanguageMiddleware:
    """Chooses the language of each request: `?lang=` (then remembered in a cookie for a
    year), else the cookie, else the browser's Accept-Language, else French. The choice is in
    `request.state.language` and in the i18n ContextVar for the whole request; a `?lang=` is
    also in `request.state.chosen_language`."""

    def __init__(self, app: ASGIApp, *, languages: Iterable[str], https: bool) -> None:
        self.app = app
        self.languages = tuple(languages)
        self.cookie_flags = "Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly" + (
            "; Secure" if https else ""
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        asked = connection.query_params.get(LANGUAGE_PARAMETER)
        chosen = asked if asked in self.languages else None
        remembered = connection.cookies.get(LANGUAGE_COOKIE)
        language = (
            chosen
            or (remembered if remembered in self.languages else None)
            or accepted_language(connection.headers.get("accept-language"), self.languages)
            or DEFAULT_LANGUAGE
        )
        state = scope.setdefault("state", {})
        state["language"] = language
        state[CHOSEN_LANGUAGE] = chosen

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and chosen and chosen != remembered:
                headers = MutableHeaders(scope=message)
                headers.append("Set-Cookie", f"{LANGUAGE_COOKIE}={chosen}; {self.cookie_flags}")
            await send(message)

        with use_language(language):
            await self.app(scope, receive, send_with_cookie)


def language_url(path: str, query: Iterable[tuple[str, str]], language: str) -> str:
    """The same page in another language: its path and query, with `lang` replaced."""
    kept = [(key, value) for key, value in query if key != LANGUAGE_PARAMETER]
    return f"{path}?{urlencode([*kept, (LANGUAGE_PARAMETER, language)])}"
