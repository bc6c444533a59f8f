"""The scripted demo the sandbox plays when nobody is at the terminal: the director redeems an
invitation, sends the demo school's two ONDE extractions, imports them, then asks for
`/classes`, `/responsables CP A sans` and `/etat`; a parent then links the chat by sharing the
number the school has and asks a question, which the director answers from the help request's
buttons; last, the district's inspector redeems her invitation and asks for `/etat`. The
transcript is printed as it goes. Also how the director persona becomes the demo school's
director, and the inspector persona the district's inspector, in the terminal chat.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bot.i18n import _, format_number
from bot.sandbox.botapi import Button
from bot.sandbox.district import ensure_district, inspected_uais, invite_inspector
from bot.sandbox.onde_generator import DEMO_CITY, DEMO_UAI
from bot.sandbox.school import (
    DIRECTOR,
    INSPECTOR,
    SAMPLE_FILES,
    directs_school,
    invite_director,
    school_summary,
)
from bot.sandbox.terminal import ChatView

DEMO_COMMANDS = ("/classes", "/responsables CP A sans", "/etat")
# What the parent asks and the director answers, in the demo (French: the demo is French).
DEMO_QUESTION = "Bonjour, mon fils Rayan n'apparaît pas sur mon compte. Merci !"
DEMO_ANSWER = "Bonjour, c'est corrigé dans ONDE : il apparaîtra dès demain."


async def welcome_director(view: ChatView) -> None:
    """Make the director persona a director of the demo school, through the chat itself."""
    sandbox = view.sandbox
    director = sandbox.director
    already = await sandbox.run_service(
        directs_school, telegram_user_id=director.user.id, school_id=sandbox.school_id
    )
    if already:
        view.note(
            _("{persona} already runs {school}.").format(
                persona=director.label, school=sandbox.school_title
            )
        )
        return
    if not await _redeem_invitation(view):
        view.note(_("(the bot did not answer the invitation)"), "yellow")


async def _redeem_invitation(view: ChatView) -> bool:
    """The operator invites the director persona, who sends `/start <code>` to the bot."""
    sandbox = view.sandbox
    code = await sandbox.run_service(invite_director, school_id=sandbox.school_id)
    view.note(
        _(
            "The operator invites {name} to run {school} ({command}); she sends the code to "
            "the bot."
        ).format(
            name=f"{DIRECTOR.first_name} {DIRECTOR.last_name}",
            school=sandbox.school_title,
            command=f"educonnect-bot director invite {DEMO_UAI}",
        )
    )
    return await view.say(f"/start {code}", sandbox.director)


async def welcome_inspector(view: ChatView) -> bool:
    """Make the inspector persona the inspector of the demo school's district (registered
    first), through the chat itself; False if the bot did not answer her invitation."""
    sandbox = view.sandbox
    inspector = sandbox.inspector
    uais = await sandbox.run_service(ensure_district)
    followed = await sandbox.run_service(inspected_uais, telegram_user_id=inspector.user.id)
    if followed >= set(uais):
        already = _("{persona} already follows the {count} schools of the district.")
        view.note(already.format(persona=inspector.label, count=len(uais)))
        return True
    code = await sandbox.run_service(invite_inspector, uais=uais)
    view.note(
        _(
            "The operator invites {name} to follow the {count} schools of the district "
            "({command}); she sends the code to the bot."
        ).format(
            name=f"{INSPECTOR.first_name} {INSPECTOR.last_name}",
            count=len(uais),
            command=f"educonnect-bot inspector invite {' '.join(uais)}",
        )
    )
    answered = await view.say(f"/start {code}", inspector)
    if not answered:
        view.note(_("(the bot did not answer the invitation)"), "yellow")
    return answered


class _DemoFailed(Exception):
    pass


async def play_demo(view: ChatView, *, samples: Path, database: Path) -> int:
    """Play the scripted demo and print its transcript; 0 if every step got its answer."""
    try:
        await _play(view, samples=samples, database=database)
    except _DemoFailed as failure:
        view.console.file.flush()
        print(_("Error: {message}").format(message=failure), file=sys.stderr)
        return 1
    return 0


async def _play(view: ChatView, *, samples: Path, database: Path) -> None:
    sandbox = view.sandbox
    director = sandbox.director
    view.note(
        _(
            "EduConnect sandbox demonstration (offline: no TELEGRAM_BOT_TOKEN). School: "
            "{school}, {city}. Demonstration database: {database}."
        ).format(school=sandbox.school_title, city=DEMO_CITY, database=database),
        "bold",
    )

    await _step(
        _redeem_invitation(view),
        _("the bot did not answer the invitation « /start » (see sandbox.log)."),
    )

    for name in SAMPLE_FILES:
        await _step(
            view.upload(samples / name, director),
            _("the bot did not answer the sending of {filename} (see sandbox.log).").format(
                filename=name
            ),
        )

    button = _import_button(view)
    if button is None:
        labels = ", ".join(f"« {b.text} »" for b in view.buttons(director))
        if labels:
            no_import = _(
                "after the two extractions were sent, the bot does not offer to import "
                "(buttons: {labels})."
            )
        else:
            no_import = _(
                "after the two extractions were sent, the bot does not offer to import "
                "(buttons: none)."
            )
        raise _DemoFailed(no_import.format(labels=labels))
    await _step(
        view.press(button, director),
        _("the bot did not answer the import confirmation (see sandbox.log)."),
    )

    summary = await sandbox.run_service(school_summary, school_id=sandbox.school_id)
    if summary.pupils == 0:
        raise _DemoFailed(_("the import recorded no pupil in the demonstration database."))

    for command in DEMO_COMMANDS:
        await _step(
            view.say(command, director),
            _("the bot did not answer « {command} » (see sandbox.log).").format(command=command),
        )
    await _family_asks_and_director_answers(view)
    await _step(
        welcome_inspector(view),
        _("the bot did not answer the inspector's invitation (see sandbox.log)."),
    )
    await _step(
        view.say("/etat", sandbox.inspector),
        _("the bot did not answer « {command} » (see sandbox.log).").format(command="/etat"),
    )

    view.note(
        _(
            "In the database: {classes} classes, {pupils} pupils, {accounts} guardian accounts "
            "for {school}. End of the demonstration; « make run » in a terminal opens the "
            "conversation."
        ).format(
            classes=format_number(summary.classes),
            pupils=format_number(summary.pupils),
            accounts=format_number(summary.accounts),
            school=sandbox.school_title,
        ),
        "bold",
    )


async def _family_asks_and_director_answers(view: ChatView) -> None:
    """A parent links the chat with the number the school has, asks the school a question;
    the director answers it from the request's buttons."""
    family, director = view.sandbox.family, view.sandbox.director
    await _step(view.say("/start", family), _("the bot did not welcome the family."))
    contact = next((key for key in view.reply_keys(family) if key.request_contact), None)
    if contact is None:
        raise _DemoFailed(_("the family's welcome offers no « share my number » button."))
    await _step(view.tap(contact, family), _("the bot did not answer the shared number."))
    for text in ("/identifiant", "/question", DEMO_QUESTION):
        await _step(
            view.say(text, family),
            _("the bot did not answer « {command} » (see sandbox.log).").format(command=text),
        )
    reply = next((b for b in view.buttons(director) if b.callback_data == "hd:rep:1"), None)
    if reply is None:
        raise _DemoFailed(_("the director got no help request with its buttons."))
    await _step(view.press(reply, director), _("the bot did not answer « Reply »."))
    await _step(view.say(DEMO_ANSWER, director), _("the bot did not send the answer."))


async def _step(action: Coroutine[Any, Any, bool], failure: str) -> None:
    """Run one step of the demo; `failure` is what to say if the bot does not answer."""
    if not await action:
        raise _DemoFailed(failure)


def _is_cancel(button: Button) -> bool:
    words = f"{button.text} {button.callback_data or ''}".casefold()
    return any(word in words for word in ("annul", "cancel"))


def _import_button(view: ChatView) -> Button | None:
    """The button that confirms the import: by its label, else by its callback data."""
    buttons = [b for b in view.buttons(view.sandbox.director) if not _is_cancel(b)]
    for button in buttons:
        if "import" in button.text.casefold():
            return button
    for button in buttons:
        data = (button.callback_data or "").casefold()
        if any(word in data for word in ("confirm", "import", "apply", "yes", "ok")):
            return button
    return None
