"""The device cookie (OWASP's « slow down online guessing attacks with device cookies »): set in
a browser at each successful login, it lets that browser log in to that identifier even while
strangers' failures lock the identifier for everyone else.

One cookie per browser, signed with the portal's session secret (itsdangerous, its own salt, so
it is never mistaken for a session): a few entries, each the hash of an identifier (never the
identifier in clear) and a random token naming this device for it. A forged, altered or
expired cookie is no cookie.
"""

from __future__ import annotations

import hashlib
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

DEVICE_COOKIE = "educonnect_device"
DEVICE_MAX_AGE_SECONDS = 180 * 24 * 3600
# Identifiers one browser remembers (two parents sharing a tablet, a few children's schools).
MAX_ENTRIES = 5
_SALT = "educonnect.device-cookie"


def _identifier_hash(identifier: str) -> str:
    return hashlib.sha256(identifier.strip().lower().encode("utf-8")).hexdigest()[:32]


class DeviceCookies:
    """Reads and writes the device cookie with the portal's secret."""

    def __init__(self, secret: str, *, https: bool) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.https = https

    def _entries(self, request: Request) -> list[list[str]]:
        raw = request.cookies.get(DEVICE_COOKIE)
        if not raw:
            return []
        try:
            loaded = self.serializer.loads(raw, max_age=DEVICE_MAX_AGE_SECONDS)
        except BadSignature:
            return []
        if not isinstance(loaded, list):
            return []
        return [
            entry
            for entry in loaded
            if isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(x, str) for x in entry)
        ][:MAX_ENTRIES]

    def device_token(self, request: Request, identifier: str) -> str | None:
        """This browser's token for `identifier`, when it holds a valid device cookie for it."""
        wanted = _identifier_hash(identifier)
        return next((token for hashed, token in self._entries(request) if hashed == wanted), None)

    def remember(self, request: Request, response: Response, identifier: str) -> None:
        """After a successful login: the cookie names this browser for `identifier` (its token
        kept if it had one), signed afresh so it lasts another 180 days."""
        wanted = _identifier_hash(identifier)
        entries = self._entries(request)
        token = next((token for hashed, token in entries if hashed == wanted), None)
        kept = [entry for entry in entries if entry[0] != wanted]
        entries = [[wanted, token or secrets.token_urlsafe(16)], *kept][:MAX_ENTRIES]
        response.set_cookie(
            DEVICE_COOKIE,
            self.serializer.dumps(entries),
            max_age=DEVICE_MAX_AGE_SECONDS,
            path="/",
            httponly=True,
            secure=self.https,
            samesite="lax",
        )


def devices_of(request: Request) -> DeviceCookies:
    """The application's device cookies (`bot.portal.app` makes them with the session secret)."""
    devices = request.app.state.devices
    assert isinstance(devices, DeviceCookies)
    return devices
