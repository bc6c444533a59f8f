"""The one way an e-mail address is checked and normalised, wherever it comes from: an ONDE
file, the activation form, « mon compte » or a « forgotten » page.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# Longer than any address (RFC 5321 allows 254 characters, give or take): beyond it a value is
# refused before the library spends any time on it.
MAX_LENGTH = 320
# A plain ASCII local part email-validator accepts as is (a subset of RFC 5322's dot-atom).
_PLAIN_LOCAL = re.compile(r"^[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*$")
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


@lru_cache(maxsize=65536)
def normalise_email(value: str) -> str | None:
    """`value` as email-validator normalises it (the domain lower-cased, never the local part),
    or None when it is empty, longer than `MAX_LENGTH` or not an address.

    Surrounding spaces are ignored; nothing else is « repaired »: a guess could send
    credentials to a stranger. Offline only (no DNS lookup): an ONDE file is checked on the
    director's machine, and a visitor's typing must not make the portal query anything.
    """
    text = value.strip()
    if not text or len(value) > MAX_LENGTH:
        return None
    local, at, domain = text.rpartition("@")
    if at and _PLAIN_LOCAL.match(local) and len(local) <= _MAX_LOCAL:
        # Most addresses share a few domains (an import has thousands): check each domain once
        # with the library. Its verdict does not depend on the local part: the same result.
        normalised_domain = _normalise_domain(domain)
        if normalised_domain is None:
            return None
        address = f"{local}@{normalised_domain}"
        if len(address) <= _MAX_ADDRESS:
            return address
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@lru_cache(maxsize=4096)
def _normalise_domain(domain: str) -> str | None:
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None
