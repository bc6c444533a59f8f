"""The pages themselves: well-formed, accessible forms (a label for every input, errors tied
to their fields, unique ids, one h1), French first with the language switch remembered, no
JavaScript, the health endpoint."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

import bot.portal.app as portal_app
from tests.portal.conftest import (
    NEW_PASSWORD,
    Browser,
    Family,
    PortalHarness,
    activate,
)

VOID = {"meta", "link", "input", "br", "img", "hr"}


class PageStructure(HTMLParser):
    """What the accessibility checks need from a page, and its nesting errors."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.inputs: list[dict[str, str | None]] = []
        self.h1 = 0
        self.title = ""
        self.html_lang: str | None = None
        self.forms: list[dict[str, str | None]] = []
        self.hidden_csrf = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "id" in attributes and attributes["id"] is not None:
            self.ids.append(attributes["id"])
        if tag == "html":
            self.html_lang = attributes.get("lang")
        elif tag == "label":
            self.label_for.add(attributes.get("for") or "")
        elif tag == "input":
            if attributes.get("type") == "hidden":
                if attributes.get("name") == "csrf_token":
                    self.hidden_csrf += 1
            else:
                self.inputs.append(attributes)
        elif tag == "h1":
            self.h1 += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "form":
            self.forms.append(attributes)
        elif tag == "script":
            self.problems.append("a <script>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def check_page(html: str) -> PageStructure:
    """Parse a page and assert its basic structure and form accessibility."""
    page = PageStructure()
    page.feed(html)
    page.close()
    assert html.startswith("<!DOCTYPE html>")
    assert not page.problems, page.problems
    assert not page.stack, f"not closed: {page.stack}"
    assert page.html_lang in {"fr", "en"}
    assert page.title.strip()
    assert page.h1 == 1
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    for field in page.inputs:
        assert field.get("id") in page.label_for, f"input without a label: {field}"
        for described in (field.get("aria-describedby") or "").split():
            assert described in page.ids, f"aria-describedby points nowhere: {described}"
    for form in page.forms:
        if (form.get("method") or "").lower() == "post":
            assert form.get("action", "").startswith("/")
    posts = sum(1 for form in page.forms if (form.get("method") or "").lower() == "post")
    assert page.hidden_csrf == posts, "a form without its CSRF token"
    return page


async def _pages_of_a_whole_journey(portal: PortalHarness, family: Family) -> list[str]:
    browser = portal.browser()
    pages: list[httpx.Response] = []
    for path in ("/", f"/activation?identifiant={family.identifier}", "/connexion"):
        pages.append(await browser.get(path))
    for path in ("/mot-de-passe-oublie", "/identifiant-oublie", "/nowhere"):
        pages.append(await browser.get(path))
    pages.append(await browser.post("/activation", {"identifier": "", "password": ""}))
    pages.append(
        await browser.post("/activation", {"identifier": family.identifier, "password": "x"})
    )
    portal.clock.advance(seconds=2)  # past the delay a wrong password earns this client
    await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    pages.append(await browser.get("/activation/finaliser"))
    pages.append(
        await browser.post(
            "/activation/finaliser",
            {"new_password": "a", "confirm_password": "b", "email": "@", "birth_date": "x"},
        )
    )
    await activate(portal, family, browser=portal.browser())
    pages.append(await browser.get("/activation/attente"))  # now activated: redirected
    await browser.log_in(family.identifier, NEW_PASSWORD)
    pages.append(await browser.get("/compte"))
    pages.append(
        await browser.post(
            "/compte/mot-de-passe",
            {"current_password": "nope", "new_password": "", "confirm_password": ""},
        )
    )
    pages.append(await browser.get("/confirmer/" + "A" * 43))
    pages.append(await browser.post("/connexion", {"identifier": "x"}, csrf=False))
    return [page.text for page in pages if "text/html" in page.headers.get("content-type", "")]


async def test_every_page_has_a_sound_accessible_structure(
    sqlite_portal: PortalHarness, sqlite_family: Family
) -> None:
    pages = await _pages_of_a_whole_journey(sqlite_portal, sqlite_family)
    assert len(pages) >= 12
    for html in pages:
        check_page(html)


async def test_the_activation_page_prefills_the_identifier_from_the_letter(
    portal: PortalHarness, family: Family
) -> None:
    page = await portal.browser().get(f"/activation?identifiant={family.identifier}")
    structure = check_page(page.text)
    [identifier] = [field for field in structure.inputs if field.get("id") == "identifier"]
    assert identifier.get("value") == family.identifier
    assert identifier.get("autocomplete") == "username"
    [password] = [field for field in structure.inputs if field.get("id") == "password"]
    assert password.get("type") == "password" and password.get("value") is None
    assert "autofocus" in password  # the identifier is there: straight to the password


async def test_the_prefilled_identifier_is_escaped(sqlite_portal: PortalHarness) -> None:
    page = await sqlite_portal.browser().get('/activation?identifiant="><b>x</b>')
    assert "<b>x</b>" not in page.text
    assert "&#34;&gt;&lt;b&gt;" in page.text or "&quot;&gt;&lt;b&gt;" in page.text


async def test_french_first_and_the_language_switch_is_remembered(
    sqlite_portal: PortalHarness,
) -> None:
    browser = sqlite_portal.browser()
    page = await browser.get("/connexion")
    assert '<html lang="fr"' in page.text
    assert 'href="/connexion?lang=en"' in page.text
    english = await browser.get("/connexion?lang=en")
    assert '<html lang="en"' in english.text
    assert "Log in to your EduConnect account" in english.text
    assert "educonnect_lang=en" in english.headers["set-cookie"]
    # Remembered: the next page, without the parameter, is in English too.
    again = await browser.get("/mot-de-passe-oublie")
    assert '<html lang="en"' in again.text
    # The switch keeps the page's own parameters (the letter's identifier).
    page = await browser.get("/activation?identifiant=camille.martin")
    assert 'href="/activation?identifiant=camille.martin&amp;lang=fr"' in page.text
    french = await browser.get("/connexion?lang=fr")
    assert '<html lang="fr"' in french.text
    assert "Log in to your EduConnect account" not in french.text
    # An unknown language is ignored.
    page = await browser.get("/connexion?lang=xx")
    assert '<html lang="fr"' in page.text


async def test_errors_are_linked_from_the_summary_to_their_field(
    sqlite_portal: PortalHarness,
) -> None:
    page = await sqlite_portal.browser().post("/connexion", {"identifier": "", "password": ""})
    assert page.status_code == 400
    assert 'role="alert"' in page.text
    assert 'href="#identifier"' in page.text and 'href="#password"' in page.text


async def test_the_health_endpoint(portal: PortalHarness) -> None:
    reply = await portal.browser().get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "database": "ok"}
    assert reply.headers["x-content-type-options"] == "nosniff"


async def test_the_health_endpoint_reports_a_database_that_does_not_answer(
    sqlite_portal: PortalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kwargs: object) -> bool:
        raise RuntimeError("database down")

    monkeypatch.setattr(portal_app, "database_is_reachable", broken)
    reply = await sqlite_portal.browser().get("/health")
    assert reply.status_code == 503


async def test_unknown_pages_and_methods(sqlite_portal: PortalHarness) -> None:
    browser: Browser = sqlite_portal.browser()
    assert (await browser.get("/nowhere")).status_code == 404
    assert (await browser.get("/compte/adresse")).status_code == 405
    check_page((await browser.get("/compte/adresse")).text)


async def test_an_unexpected_error_shows_a_plain_page_with_the_headers(
    sqlite_portal: PortalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> dict[str, object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr("bot.portal.login._login_page", broken)
    transport = httpx.ASGITransport(app=sqlite_portal.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        reply = await client.get("/connexion")
    assert reply.status_code == 500
    assert "a bug" not in reply.text
    assert reply.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in reply.headers["content-security-policy"]
    check_page(reply.text)
