"""The sandbox's terminal chat: the person types as the school's director (or as a family, or
as the district's inspector),
the bot's messages appear as they arrive, inline buttons as numbered choices, documents saved
to the data folder.

`ChatView` renders what the bot does in the sandbox chats (the scripted demo prints its
transcript with it too); `chat` is the interactive prompt loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.text import Text

from bot.i18n import N_, _, format_number, ngettext
from bot.sandbox.botapi import Button, CallbackRef, ChatEvent, ChatMessage, ReplyButton
from bot.sandbox.session import Persona, Sandbox

# Styles for the entities Telegram derives from the bot's HTML.
_ENTITY_STYLES = {
    "bold": "bold",
    "italic": "italic",
    "underline": "underline",
    "strikethrough": "strike",
    "spoiler": "reverse",
    "code": "cyan",
    "pre": "cyan",
    "blockquote": "italic",
    "expandable_blockquote": "italic",
    "text_link": "underline",
    "url": "underline",
    "email": "underline",
}
# How long the bot may take to handle one message before the terminal says so.
REPLY_TIMEOUT = 60.0
# After an update is handled, replies sent from background tasks get this long to show.
QUIET_PERIOD = 0.3
_UNSAFE_FILENAME = re.compile(r"[^\w.,()+@=-]+")

# Translated when shown: `_(HELP)`.
HELP = N_(
    "Type a message or a command as in Telegram (/aide, /classes, /etat…).\n"
    "A digit presses the numbered button of the last message: [1] Importer → type 1.\n"
    "Terminal commands:\n"
    "  :directeur                 speak as the director of the demo school\n"
    "  :famille                   speak as a family (another Telegram account)\n"
    "  :inspecteur                speak as the district's inspector (the demo school and\n"
    "                             three others, read-only)\n"
    "  :envoyer-fichier PATH      send a file to the bot (alias: :upload)\n"
    "  :exemples                  send the two sample ONDE extractions\n"
    "  :aide                      this help\n"
    "  :quitter                   quit (or Ctrl-D, Ctrl-C)"
)


def make_console(file: TextIO | None = None) -> Console:
    """A console for the chat: colours on a terminal, plain 100-column text otherwise."""
    stream = file or sys.stdout
    width = None if stream.isatty() else 100
    return Console(
        file=stream, width=width, highlight=False, markup=False, emoji=False, soft_wrap=False
    )


def _utf16_boundaries(text: str) -> list[int]:
    """Python string index of every UTF-16 offset (entity offsets are in UTF-16 units)."""
    boundaries = [0]
    for index, char in enumerate(text):
        if ord(char) > 0xFFFF:
            boundaries.append(index)  # the second unit of a surrogate pair
        boundaries.append(index + 1)
    return boundaries


def render_formatted(text: str, entities: Sequence[Any]) -> Text:
    """Telegram's plain text plus entities as rich text: bold, italic, code…; links spelled out."""
    rendered = Text(text)
    boundaries = _utf16_boundaries(text)
    last = len(boundaries) - 1
    links: list[tuple[int, str]] = []
    for entity in entities:
        start = boundaries[min(int(entity["offset"]), last)]
        end = boundaries[min(int(entity["offset"]) + int(entity["length"]), last)]
        style = _ENTITY_STYLES.get(str(entity["type"]))
        if style:
            rendered.stylize(style, start, end)
        url = entity.get("url")
        if entity["type"] == "text_link" and url and url != text[start:end]:
            links.append((end, str(url)))
    # From the end, so that earlier positions stay valid.
    for end, url in sorted(links, reverse=True):
        rendered = Text.assemble(rendered[:end], Text(f" <{url}>", style="dim"), rendered[end:])
    return rendered


def _size(size: int) -> str:
    if size < 1024:
        return ngettext("{size} byte", "{size} bytes", size).format(size=format_number(size))
    return _("{size} KB").format(size=format_number(round(size / 1024)))


@dataclass
class _Keyboard:
    """What a persona can press: the inline buttons of its latest message that has some
    (numbered first), and the reply keyboard under the input field (numbered after them), which
    stays until the bot removes or replaces it, as in Telegram."""

    message_id: int | None = None
    buttons: list[Button] = field(default_factory=list)
    reply: list[ReplyButton] = field(default_factory=list)


class ChatView:
    """Prints what the bot does in the sandbox chats, and acts for the personas."""

    def __init__(self, sandbox: Sandbox, console: Console, downloads: Path) -> None:
        self.sandbox = sandbox
        self.console = console
        self.downloads = downloads
        self.active: Persona = sandbox.director
        self._printed: dict[int, int] = {p.user.id: 0 for p in sandbox.personas}
        self._keyboards: dict[int, _Keyboard] = {}
        self._saved: dict[str, Path] = {}
        self._contents: dict[tuple[int, int], str] = {}
        self.prompt_shown: str | None = None

    # -- showing -----------------------------------------------------------------------

    def note(self, message: str, style: str = "dim") -> None:
        """A line from the sandbox itself (not from the bot)."""
        self._print(Text(message, style=style))

    def flush(self) -> int:
        """Print every bot action not shown yet; returns how many there were."""
        shown = 0
        for persona in self.sandbox.personas:
            events = persona.user.events
            start = self._printed[persona.user.id]
            for event in events[start:]:
                self._show(persona, event)
                shown += 1
            self._printed[persona.user.id] = len(events)
        return shown

    def _print(self, renderable: RenderableType, *, wrapped: bool = False) -> None:
        if self.prompt_shown is not None:
            # A message arrived while the prompt waits: print it on its own lines, then the
            # prompt again (what was typed so far is still in the input buffer).
            self.console.file.write("\n")
        # Wrapped already: rich must not fold it again (a file path must stay whole).
        self.console.print(renderable, soft_wrap=wrapped)
        if self.prompt_shown is not None:
            self.console.file.write(self.prompt_shown)
            self.console.file.flush()

    def _show(self, persona: Persona, event: ChatEvent) -> None:
        message = event.message
        who = f"EduConnect → {persona.label}"
        if event.kind == "deleted":
            deleted = _("✂ {who}: message {message_id} deleted")
            self._print(Text(deleted.format(who=who, message_id=message.message_id), style="dim"))
            keyboard = self._keyboards.get(persona.user.id)
            if keyboard is not None and keyboard.message_id == message.message_id:
                keyboard.message_id, keyboard.buttons = None, []
            return
        key = (persona.user.id, message.message_id)
        same_text = event.kind == "edited" and self._contents.get(key) == message.content
        self._contents[key] = message.content
        if same_text:
            # Only the buttons changed (often: removed once pressed); the text is on screen.
            buttons = self._number_buttons(persona, message)
            if buttons is None:
                removed = _("✎ {who}: buttons removed from the message").format(who=who)
                self._print(Text(removed, style="dim"))
            else:
                header = Text(_("✎ {who}: new buttons").format(who=who), style="bold magenta")
                self._print(Text("\n").join([header, self._indent(buttons)]), wrapped=True)
            return
        title = _("✎ edited message {who}") if event.kind == "edited" else "🤖 {who}"
        header = Text(title.format(who=who), style="bold magenta")
        body = render_formatted(
            message.text if message.text is not None else message.caption or "",
            message.entities if message.text is not None else message.caption_entities,
        )
        parts: list[Text] = [header]
        if body.plain:
            parts.append(self._indent(body))
        if message.document is not None:
            saved = self._save_document(message)
            parts.append(self._indent(Text(f"📎 {saved}", style="green"), wrap=False))
        if message.photo is not None:
            saved = self._save_document(message)
            parts.append(self._indent(Text(f"🖼 {saved}", style="green"), wrap=False))
        buttons = self._number_buttons(persona, message)
        if buttons is not None:
            parts.append(self._indent(buttons))
        if message.reply_buttons:
            parts.append(self._indent(self._number_reply_keys(persona, message)))
        elif message.remove_keyboard:
            keyboard = self._keyboards.get(persona.user.id)
            if keyboard is not None:
                keyboard.reply = []
        self._print(Text("\n").join(parts), wrapped=True)

    def _indent(self, text: Text, margin: int = 2, *, wrap: bool = True) -> Text:
        """`text` wrapped to the console's width and indented under the message header."""
        if not wrap:
            return Text(" " * margin) + text
        width = max(self.console.width - margin, 20)
        lines = list(text.wrap(self.console, width))
        for line in lines:
            line.rstrip()
        return Text("\n").join(Text(" " * margin) + line if line.plain else line for line in lines)

    def _number_buttons(self, persona: Persona, message: ChatMessage) -> Text | None:
        flat = [button for row in message.inline_keyboard for button in row]
        keyboard = self._keyboards.setdefault(persona.user.id, _Keyboard())
        if not flat:
            if keyboard.message_id == message.message_id:
                keyboard.message_id, keyboard.buttons = None, []
            return None
        keyboard.message_id, keyboard.buttons = message.message_id, flat
        number = 0
        rows: list[Text] = []
        for row in message.inline_keyboard:
            cells: list[Text] = []
            for button in row:
                number += 1
                cell = Text.assemble((f"[{number}]", "bold cyan"), f" {button.text}")
                if button.callback_data is None and button.url:
                    cell.append(f" <{button.url}>", style="dim")
                cells.append(cell)
            rows.append(Text("   ").join(cells))
        if keyboard.reply and not message.reply_buttons:
            # Their numbers moved: show them again under the new ones.
            rows.append(self._reply_keys_line(keyboard))
        return Text("\n").join(rows)

    def _number_reply_keys(self, persona: Persona, message: ChatMessage) -> Text:
        """A reply keyboard's buttons, numbered after the inline ones (typed labels work too)."""
        keyboard = self._keyboards.setdefault(persona.user.id, _Keyboard())
        keyboard.reply = [button for row in message.reply_buttons or () for button in row]
        return self._reply_keys_line(keyboard)

    def _reply_keys_line(self, keyboard: _Keyboard) -> Text:
        cells: list[Text] = []
        for number, button in enumerate(keyboard.reply, start=len(keyboard.buttons) + 1):
            cell = Text.assemble((f"[{number}]", "bold cyan"), f" {button.text}")
            if button.request_contact:
                cell.append(" " + _("(shares your phone number)"), style="dim")
            cells.append(cell)
        title = Text(_("keyboard under the input field:"), style="dim")
        return Text("\n").join([title, Text("   ").join(cells)])

    def _save_document(self, message: ChatMessage) -> str:
        stored = message.document or message.photo
        assert stored is not None
        path = self._saved.get(stored.file_unique_id)
        if path is None:
            self.downloads.mkdir(parents=True, exist_ok=True)
            name = stored.filename or f"photo-{message.message_id}.jpg"
            path = _unused_path(self.downloads, _UNSAFE_FILENAME.sub("_", name).strip("._") or "x")
            path.write_bytes(stored.data)
            self._saved[stored.file_unique_id] = path
        if stored.filename:
            saved = _("{filename} ({size}) saved in {path}")
        else:
            saved = _("photo ({size}) saved in {path}")
        return saved.format(filename=stored.filename, size=_size(stored.size), path=path)

    # -- acting --------------------------------------------------------------------------

    def buttons(self, persona: Persona | None = None) -> list[Button]:
        """The numbered buttons a persona can press now (those of its latest keyboard)."""
        keyboard = self._keyboards.get((persona or self.active).user.id)
        return list(keyboard.buttons) if keyboard else []

    def reply_keys(self, persona: Persona | None = None) -> list[ReplyButton]:
        """The numbered reply keyboard buttons a persona can press now (if its latest keyboard
        is a reply keyboard)."""
        keyboard = self._keyboards.get((persona or self.active).user.id)
        return list(keyboard.reply) if keyboard else []

    async def tap(self, button: ReplyButton, persona: Persona | None = None) -> bool:
        """Press a reply keyboard button: its label is sent, or for a contact button the
        persona's own phone number, as Telegram would after asking the user to confirm."""
        who = persona or self.active
        if not button.request_contact:
            return await self.say(button.text, who)
        number = who.user.phone_number
        if number is None:
            self.note(_("{persona} has no phone number to share.").format(persona=who.label))
            return True
        shares = _("📱 shares their phone number: +{number}").format(number=number)
        if who.phone_owner:
            owner = _("(the number the school has for {guardian})")
            shares = f"{shares} {owner.format(guardian=who.phone_owner)}"
        self._print(Text.assemble((_speaker(who), "bold"), shares))
        before = self._shown_before(who)
        await who.user.tap(button.text)
        return await self.settle(who, before)

    async def say(self, text: str, persona: Persona | None = None) -> bool:
        """Send `text` as the persona and show the bot's answer; False if none came."""
        who = persona or self.active
        self._print(Text.assemble((_speaker(who), "bold"), text))
        before = self._shown_before(who)
        await who.user.send_text(text)
        return await self.settle(who, before)

    async def upload(self, path: Path, persona: Persona | None = None) -> bool:
        """Send a file as the persona and show the bot's answer; False if none came."""
        who = persona or self.active
        data = path.read_bytes()
        mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        sends = _("📎 sends {filename} ({size})").format(filename=path.name, size=_size(len(data)))
        self._print(Text.assemble((_speaker(who), "bold"), sends))
        before = self._shown_before(who)
        await who.user.send_document(data, filename=path.name, mime_type=mime_type)
        return await self.settle(who, before)

    async def press(self, button: Button, persona: Persona | None = None) -> bool:
        """Press an inline button as the persona and show the bot's answer."""
        who = persona or self.active
        presses = _("presses [{button}]").format(button=button.text)
        self._print(Text.assemble((_speaker(who), "bold"), presses))
        if button.callback_data is None:
            self.note(_("(link button: {url})").format(url=button.url))
            return True
        keyboard = self._keyboards.get(who.user.id)
        message_id = keyboard.message_id if keyboard and keyboard.message_id else 0
        before = self._shown_before(who)
        # Pressed by its callback data: two buttons may share a label, never their data.
        ref = await who.user.press(message_id, button.callback_data)
        answered = await self.settle(who, before)
        await self._show_callback_answer(who, ref)
        return answered

    async def _show_callback_answer(self, persona: Persona, ref: CallbackRef) -> None:
        answer = await self.sandbox.callback_answer(persona, ref)
        if answer is None:
            self.note(_("(the bot did not acknowledge the button)"), style="yellow")
        elif answer.text:
            mark = "⚠" if answer.show_alert else "ⓘ"
            self._print(Text(f"  {mark} {answer.text}", style="yellow"))

    def _shown_before(self, persona: Persona) -> int:
        """Print what is pending, and count what the persona's chat showed so far."""
        self.flush()
        return self._printed[persona.user.id]

    async def settle(self, persona: Persona, before: int, timeout: float = REPLY_TIMEOUT) -> bool:
        """Wait until the bot has handled the persona's last action, print what it did, and
        tell whether it did anything visible in that chat since `before` (a count of events)."""
        if not await self.sandbox.wait_handled(timeout):
            self.flush()
            return False
        await asyncio.sleep(QUIET_PERIOD)
        self.flush()
        return self._printed[persona.user.id] > before

    async def follow(self, interval: float = 0.2) -> None:
        """Keep printing what the bot does between the person's actions (a background task)."""
        while True:
            await asyncio.sleep(interval)
            self.flush()


def _speaker(persona: Persona) -> str:
    """« 👤 Claire Martin (directrice) : », before what the persona says or does."""
    return _("👤 {persona}:").format(persona=persona.label) + " "


def _unused_path(folder: Path, name: str) -> Path:
    candidate = folder / name
    stem, suffix = candidate.stem, candidate.suffix
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    return candidate


# --------------------------------------------------------------------------------------------
# The prompt loop
# --------------------------------------------------------------------------------------------

Welcome = Callable[[ChatView], Awaitable[object]]
"""What makes a persona who they are through the chat (an invitation redeemed), run the first
time the person at the terminal speaks as them."""


class _LineReader:
    """Reads lines from stdin in a daemon thread, so that Ctrl-C never waits on `input()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._wanted = threading.Event()
        self._prompt = ""
        self._thread = threading.Thread(target=self._run, name="sandbox-stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                line: str | None = input(self._prompt)
            except (EOFError, OSError, ValueError):
                line = None
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            if line is None:
                return

    async def read(self, prompt: str) -> str | None:
        """The next line typed after `prompt`, or None at the end of input."""
        self._prompt = prompt
        self._wanted.set()
        return await self._lines.get()


async def chat(
    view: ChatView,
    *,
    samples: Path | None,
    echo_input: bool,
    welcomes: Mapping[str, Welcome] | None = None,
) -> int:
    """The interactive loop: one line at a time until :quitter, Ctrl-D or Ctrl-C. `welcomes`
    (by persona key) run the first time the person switches to that persona."""
    sandbox = view.sandbox
    pending = dict(welcomes or {})
    reader = _LineReader(asyncio.get_running_loop())
    follower = asyncio.create_task(view.follow())
    try:
        while True:
            prompt = f"{view.active.key}> "
            view.prompt_shown = prompt
            line = await reader.read(prompt)
            view.prompt_shown = None
            if line is None:
                view.console.print()
                return 0
            if echo_input:
                # Lines from a pipe are not echoed by a terminal: show them in the transcript.
                view.console.print(line, highlight=False)
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                if not await _terminal_command(view, line, samples=samples, pending=pending):
                    return 0
                continue
            if line.isdigit():
                await _press_number(view, int(line))
                continue
            if not await view.say(line):
                _no_answer(view, sandbox)
    finally:
        view.prompt_shown = None
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


def _no_answer(view: ChatView, sandbox: Sandbox) -> None:
    if sandbox.busy:
        view.note(_("(the bot is still working: its answer will show as soon as it arrives)"))
    else:
        view.note(_("(no visible answer from the bot)"))


async def _press_number(view: ChatView, number: int) -> None:
    buttons, keys = view.buttons(), view.reply_keys()
    if not buttons and not keys:
        view.note(_("No button to press: the bot's last message has none."), "yellow")
        return
    if not 1 <= number <= len(buttons) + len(keys):
        count = len(buttons) + len(keys)
        choose = _("Choose a button between 1 and {count}.").format(count=count)
        view.note(choose, "yellow")
        return
    if number <= len(buttons):
        await view.press(buttons[number - 1])
    elif not await view.tap(keys[number - len(buttons) - 1]):
        _no_answer(view, view.sandbox)


async def _speak_as(view: ChatView, persona: Persona, pending: dict[str, Welcome]) -> None:
    """Switch to `persona`, welcomed through the chat first if this is their first time."""
    view.active = persona
    view.note(_("You are {persona}.").format(persona=persona.label), "bold")
    welcome = pending.pop(persona.key, None)
    if welcome is not None:
        await welcome(view)


async def _terminal_command(
    view: ChatView, line: str, *, samples: Path | None, pending: dict[str, Welcome]
) -> bool:
    """Run a `:commande`; False means quit."""
    name, _space, argument = line[1:].partition(" ")
    name, argument = name.strip().lower(), argument.strip()
    sandbox = view.sandbox
    if name in ("quitter", "q", "quit", "exit"):
        return False
    if name in ("aide", "help", "?"):
        view.console.print(_(HELP))
    elif name in ("directeur", "directrice", "d"):
        await _speak_as(view, sandbox.director, pending)
    elif name in ("inspecteur", "inspectrice", "ien", "i"):
        await _speak_as(view, sandbox.inspector, pending)
    elif name in ("famille", "parent", "f"):
        await _speak_as(view, sandbox.family, pending)
        family = sandbox.family
        if family.user.phone_number and family.phone_owner:
            phone = _(
                "Your Telegram account's number is +{number}, the one the demo school has for "
                "{guardian} (its « Share my number » button sends it)."
            )
            view.note(phone.format(number=family.user.phone_number, guardian=family.phone_owner))
    elif name in ("envoyer-fichier", "envoyer", "upload", "fichier"):
        await _upload(view, argument)
    elif name in ("exemples", "exemple", "samples"):
        if samples is None:
            missing = _("The sample extractions cannot be found (option --samples).")
            view.note(missing, "yellow")
        else:
            for filename in ("eleves.csv", "responsables.csv"):
                await _upload(view, str(samples / filename))
    else:
        unknown = _("Unknown terminal command: « :{name} ». Type :aide.").format(name=name)
        view.note(unknown, "yellow")
    return True


async def _upload(view: ChatView, argument: str) -> None:
    if not argument:
        view.note(_("Say which file: :envoyer-fichier PATH"), "yellow")
        return
    path = Path(argument.strip("'\"")).expanduser()
    if not path.is_file():
        view.note(_("File not found: {path}").format(path=path), "yellow")
        return
    if not await view.upload(path):
        _no_answer(view, view.sandbox)
