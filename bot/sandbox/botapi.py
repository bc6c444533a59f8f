"""Local emulation of the Telegram Bot API HTTP server, for the offline sandbox and e2e tests."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import mimetypes
import re
import secrets
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import telegram
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "ApiCall",
    "ApiError",
    "BotApiServer",
    "BotIdentity",
    "Button",
    "CallbackAnswer",
    "CallbackRef",
    "ChatEvent",
    "ChatMessage",
    "SandboxUser",
    "StoredFile",
    "ThreadedBotApi",
    "ThreadedUser",
    "parse_formatted_text",
]

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
# Bots may upload up to 50 MB but only download up to 20 MB through getFile.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_POLL_TIMEOUT = 50.0

# Telegram creates these update types only when they are asked for explicitly.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


# --------------------------------------------------------------------------------------------
# Errors and small helpers
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Bot API error answer: HTTP status, ``description`` and optional ``parameters``."""

    def __init__(
        self, status: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends with this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _now() -> int:
    return int(time.time())


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _random_file_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(48)[:60]


# --------------------------------------------------------------------------------------------
# Text formatting: Telegram's HTML / MarkdownV2 / Markdown parsers, faithful in their errors
# --------------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


class _TextBuilder:
    """Plain text being produced, with its length in UTF-16 units (the unit of entity offsets)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.utf16 = 0

    def add(self, chunk: str) -> None:
        self._parts.append(chunk)
        self.utf16 += _utf16_len(chunk)

    def text(self) -> str:
        return "".join(self._parts)


@dataclass
class _OpenTag:
    name: str
    argument: str
    start: int
    byte_offset: int
    expandable: bool = False
    language: str = ""


# Telegram's own notion of blank, used both inside tags and when trimming messages.
_SPACES = " \t\r\n\v\f\0"
_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler",
        "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_HTML_ENTITY_TYPES = {
    "a": "text_link",
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "pre": "pre",
    "code": "code",
    "blockquote": "blockquote",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|lt|gt|amp|quot);")
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(match: re.Match[str]) -> str | None:
    name = match.group(1)
    if not name.startswith("#"):
        return _NAMED_HTML_ENTITIES[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _decode_html_entities(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        decoded = _decode_html_entity(match)
        return match.group(0) if decoded is None else decoded

    return _HTML_ENTITY_RE.sub(replace, text)


def _close_html_tag(
    tag: _OpenTag, end: int, stack: list[_OpenTag], out: list[dict[str, Any]]
) -> None:
    if tag.name == "code" and stack and stack[-1].name == "pre":
        # Telegram folds <pre><code class="language-x"> into one pre entity with a language.
        if tag.argument:
            stack[-1].language = tag.argument
        return
    length = end - tag.start
    if length <= 0:
        return
    entity: dict[str, Any] = {
        "type": _HTML_ENTITY_TYPES[tag.name],
        "offset": tag.start,
        "length": length,
    }
    if tag.name == "a":
        if not tag.argument:
            return
        entity["url"] = tag.argument
    elif tag.name == "tg-emoji":
        if not tag.argument:
            return
        entity["custom_emoji_id"] = tag.argument
    elif tag.name == "pre" and tag.language:
        entity["language"] = tag.language
    elif tag.name == "blockquote" and tag.expandable:
        entity["type"] = "expandable_blockquote"
    out.append(entity)


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of tdlib's HTML parser: same accepted tags, same error messages."""
    built = _TextBuilder()
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0
    while i < n:
        char = text[i]
        if char == "&":
            match = _HTML_ENTITY_RE.match(text, i)
            decoded = _decode_html_entity(match) if match else None
            if match and decoded is not None:
                built.add(decoded)
                i = match.end()
                continue
        if char != "<":
            built.add(char)
            i += 1
            continue

        begin = i
        offset = _byte_offset(text, begin)
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise _ParseError(f"Unexpected end tag at byte offset {offset}")
            j = i + 1
            while j < n and text[j] not in _SPACES and text[j] != ">":
                j += 1
            end_name = text[i + 1 : j].lower()
            while j < n and text[j] in _SPACES:
                j += 1
            if j >= n or text[j] != ">":
                raise _ParseError(f"Unclosed end tag at byte offset {offset}")
            tag = stack.pop()
            if end_name and end_name != tag.name:
                raise _ParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", '
                    f'found "</{end_name}>"'
                )
            _close_html_tag(tag, built.utf16, stack, entities)
            i = j + 1
            continue

        j = i
        while j < n and text[j] not in _SPACES and text[j] != ">":
            j += 1
        if j >= n:
            raise _ParseError(f"Unclosed start tag at byte offset {offset}")
        name = text[i:j].lower()
        if name not in _HTML_TAGS:
            raise _ParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
        i = j
        argument = ""
        expandable = False
        while True:
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise _ParseError(f'Unclosed start tag "{name}" at byte offset {offset}')
            if text[i] == ">":
                break
            attr_begin = i
            while i < n and text[i] not in _SPACES and text[i] not in "=>":
                i += 1
            attribute = text[attr_begin:i].lower()
            if not attribute:
                raise _ParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {offset}'
                )
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != "=":
                if name == "blockquote" and attribute == "expandable":
                    expandable = True
                    continue
                raise _ParseError(
                    "Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {offset}'
                )
            i += 1
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise _ParseError(f'Unclosed start tag "{name}" at byte offset {offset}')
            if text[i] in "'\"":
                quote = text[i]
                value_end = text.find(quote, i + 1)
                if value_end == -1:
                    raise _ParseError(
                        f'Unclosed attribute value in the tag "{name}" at byte offset {offset}'
                    )
                value = _decode_html_entities(text[i + 1 : value_end])
                i = value_end + 1
            else:
                token_begin = i
                while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                    i += 1
                value = text[token_begin:i].lower()
                if i >= n or (text[i] not in _SPACES and text[i] != ">"):
                    raise _ParseError(
                        "Unexpected end of name token at byte offset "
                        f"{_byte_offset(text, token_begin)}"
                    )
            if name == "a" and attribute == "href":
                argument = value
            elif name == "code" and attribute == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif name == "span" and attribute == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif name == "tg-emoji" and attribute == "emoji-id":
                argument = value
        i += 1
        if name == "span" and argument != "spoiler":
            raise _ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        stack.append(_OpenTag(name, argument, built.utf16, offset, expandable=expandable))

    if stack:
        raise _ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return built.text(), entities


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _mdv2_closes(tag: _OpenTag, text: str, i: int) -> int:
    """Width of the closing marker of ``tag`` at ``i``, or 0 if there is none."""
    markers = {
        "bold": "*",
        "strikethrough": "~",
        "spoiler": "||",
        "code": "`",
        "pre": "```",
        "text_link": "]",
        "underline": "__",
    }
    if tag.name == "italic":
        return 1 if text[i] == "_" and not text.startswith("__", i) else 0
    marker = markers[tag.name]
    return len(marker) if text.startswith(marker, i) else 0


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A reduced port of tdlib's MarkdownV2 parser that keeps its escaping rules and errors."""
    built = _TextBuilder()
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            built.add(text[i + 1])
            i += 2
            continue
        top = stack[-1] if stack else None
        in_code = top is not None and top.name in ("code", "pre")
        if (in_code and char != "`") or (not in_code and char not in _MDV2_RESERVED):
            built.add(char)
            i += 1
            continue
        offset = _byte_offset(text, i)
        width = _mdv2_closes(top, text, i) if top else 0
        if top and width:
            stack.pop()
            i += width
            url = ""
            if top.name == "text_link":
                if i < n and text[i] == "(":
                    url_chars: list[str] = []
                    j = i + 1
                    while j < n and text[j] != ")":
                        if text[j] == "\\" and j + 1 < n:
                            j += 1
                        url_chars.append(text[j])
                        j += 1
                    if j >= n:
                        raise _ParseError(f"Can't find end of a URL at byte offset {offset}")
                    url = "".join(url_chars)
                    i = j + 1
                if not url:
                    continue
            length = built.utf16 - top.start
            if length > 0:
                entity: dict[str, Any] = {"type": top.name, "offset": top.start, "length": length}
                if url:
                    entity["url"] = url
                if top.name == "pre" and top.language:
                    entity["language"] = top.language
                entities.append(entity)
            continue

        language = ""
        if char == "*":
            name, width = "bold", 1
        elif char == "_":
            name, width = ("underline", 2) if text.startswith("__", i) else ("italic", 1)
        elif char == "~":
            name, width = "strikethrough", 1
        elif char == "|" and text.startswith("||", i):
            name, width = "spoiler", 2
        elif char == "[":
            name, width = "text_link", 1
        elif char == "`" and text.startswith("```", i):
            name, width = "pre", 3
            line_end = text.find("\n", i + 3)
            if line_end != -1 and not any(c in _SPACES for c in text[i + 3 : line_end]):
                language = text[i + 3 : line_end]
                width = line_end + 1 - i
        elif char == "`":
            name, width = "code", 1
        elif char == ">" and (i == 0 or text[i - 1] == "\n"):
            # A quoted line: the marker disappears, the quote itself is not modelled.
            i += 1
            continue
        else:
            raise _ParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        stack.append(_OpenTag(name, "", built.utf16, offset, language=language))
        i += width
    if stack:
        tag = stack[-1]
        raise _ParseError(
            f"Can't find end of {_MDV2_NAMES[tag.name]} entity at byte offset {tag.byte_offset}"
        )
    return built.text(), entities


def _parse_markdown_legacy(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's legacy Markdown: flat entities, backslash escapes only for _ * ` [."""
    built = _TextBuilder()
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0
    types = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            built.add(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            built.add(char)
            i += 1
            continue
        offset = _byte_offset(text, i)
        unclosed = _ParseError(f"Can't find end of the entity starting at byte offset {offset}")
        start = built.utf16
        if char == "`" and text.startswith("```", i):
            end = text.find("```", i + 3)
            if end == -1:
                raise unclosed
            body = text[i + 3 : end]
            language, newline, rest = body.partition("\n")
            if newline and language and not any(c in _SPACES for c in language):
                body = rest
            else:
                language = ""
            built.add(body)
            entity: dict[str, Any] = {"type": "pre"}
            if language:
                entity["language"] = language
            i = end + 3
        elif char == "[":
            end = text.find("]", i + 1)
            if end == -1:
                raise unclosed
            if not text.startswith("(", end + 1):
                built.add(text[i : end + 1])
                i = end + 1
                continue
            url_end = text.find(")", end + 2)
            if url_end == -1:
                raise unclosed
            built.add(text[i + 1 : end])
            entity = {"type": "text_link", "url": text[end + 2 : url_end]}
            i = url_end + 1
        else:
            end = text.find(char, i + 1)
            if end == -1:
                raise unclosed
            built.add(text[i + 1 : end])
            entity = {"type": types[char]}
            i = end + 1
        length = built.utf16 - start
        if length > 0:
            entity.update(offset=start, length=length)
            entities.append(entity)
    return built.text(), entities


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram strips blanks around a message; entities are shifted and clipped to match."""
    stripped = text.strip(_SPACES)
    if stripped == text:
        return text, entities
    shift = _utf16_len(text[: len(text) - len(text.lstrip(_SPACES))])
    limit = _utf16_len(stripped)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(int(entity["offset"]) - shift, 0)
        end = min(int(entity["offset"]) + int(entity["length"]) - shift, limit)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def parse_formatted_text(
    text: str, parse_mode: str | None = None, entities: Sequence[Mapping[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Turn what a bot sends into what Telegram stores: plain text plus entities.

    Raises :class:`ApiError` with Telegram's "can't parse entities" description on bad markup.
    """
    mode = (parse_mode or "").lower()
    try:
        if mode == "html":
            plain, found = _parse_html(text)
        elif mode == "markdownv2":
            plain, found = _parse_markdown_v2(text)
        elif mode == "markdown":
            plain, found = _parse_markdown_legacy(text)
        elif mode:
            raise _bad_request("unsupported parse_mode")
        else:
            plain, found = text, [dict(e) for e in entities or () if isinstance(e, Mapping)]
    except _ParseError as exc:
        raise _bad_request(f"can't parse entities: {exc}") from None
    found.sort(key=lambda e: (int(e["offset"]), -int(e["length"])))
    return _trim(plain, found)


# Entities Telegram adds on its own to what users type.
_USER_ENTITY_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<url>\bhttps?://[^\s<>\"]+)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{4,32})"
)


def _detect_entities(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for match in _USER_ENTITY_RE.finditer(text):
        kind = match.lastgroup
        assert kind is not None
        found.append(
            {
                "type": kind,
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group(0)),
            }
        )
    return found


# --------------------------------------------------------------------------------------------
# The observable model: files, buttons, messages, events
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A file known to the server: uploaded by the bot or sent by a sandbox user."""

    file_id: str
    file_unique_id: str
    data: bytes = field(repr=False)
    filename: str | None
    mime_type: str | None
    file_path: str
    kind: Literal["document", "photo"]
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def to_api(self) -> dict[str, Any]:
        """The Document / PhotoSize object as Telegram describes this file."""
        if self.kind == "photo":
            return {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "width": self.width,
                "height": self.height,
                "file_size": self.size,
            }
        api: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.filename:
            api["file_name"] = self.filename
        if self.mime_type:
            api["mime_type"] = self.mime_type
        return api


@dataclass(frozen=True)
class Button:
    """One inline keyboard button; exactly one of the action fields is normally set."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def value(self) -> str | None:
        """The callback data, else the URL: what a test usually wants to check."""
        return self.callback_data if self.callback_data is not None else self.url


@dataclass(frozen=True)
class ChatMessage:
    """A message in a sandbox chat, as it stands at one moment (edits make new snapshots)."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    sender: Mapping[str, Any] = field(repr=False)
    chat: Mapping[str, Any] = field(repr=False)
    text: str | None = None
    entities: tuple[Mapping[str, Any], ...] = ()
    caption: str | None = None
    caption_entities: tuple[Mapping[str, Any], ...] = ()
    source: str | None = None
    """What the bot sent before entity parsing (the HTML markup, say)."""
    parse_mode: str | None = None
    document: StoredFile | None = None
    photo: StoredFile | None = None
    inline_keyboard: tuple[tuple[Button, ...], ...] = ()
    reply_keyboard: tuple[tuple[str, ...], ...] | None = None
    remove_keyboard: bool = False
    force_reply: bool = False
    reply_to: ChatMessage | None = field(default=None, repr=False)
    edit_date: int | None = None
    version: int = 0
    deleted: bool = False

    @property
    def content(self) -> str:
        """The text, or the caption of a file, or an empty string."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as ``(label, callback_data or url)`` pairs."""
        return [[(b.text, b.value) for b in row] for row in self.inline_keyboard]

    @property
    def button_labels(self) -> list[str]:
        """Every inline button label, row after row."""
        return [b.text for row in self.inline_keyboard for b in row]

    @property
    def reply_to_message_id(self) -> int | None:
        """The message this one answers, if any."""
        return self.reply_to.message_id if self.reply_to else None

    def button(self, label: str) -> Button:
        """The inline button with this label (else with this callback data)."""
        flat = [b for row in self.inline_keyboard for b in row]
        for candidate in flat:
            if candidate.text == label:
                return candidate
        for candidate in flat:
            if candidate.callback_data == label:
                return candidate
        labels = ", ".join(repr(b.text) for b in flat) or "none"
        raise LookupError(f"no button {label!r} on message {self.message_id} (buttons: {labels})")

    def to_api(self, *, with_reply: bool = True) -> dict[str, Any]:
        """The Message object Telegram would send for this snapshot."""
        api: dict[str, Any] = {
            "message_id": self.message_id,
            "from": dict(self.sender),
            "chat": dict(self.chat),
            "date": self.date,
        }
        if self.edit_date is not None:
            api["edit_date"] = self.edit_date
        if self.text is not None:
            api["text"] = self.text
            if self.entities:
                api["entities"] = [dict(e) for e in self.entities]
        if self.document is not None:
            api["document"] = self.document.to_api()
        if self.photo is not None:
            api["photo"] = [self.photo.to_api()]
        if self.caption is not None:
            api["caption"] = self.caption
            if self.caption_entities:
                api["caption_entities"] = [dict(e) for e in self.caption_entities]
        if self.inline_keyboard:
            api["reply_markup"] = {
                "inline_keyboard": [[dict(b.raw) for b in row] for row in self.inline_keyboard]
            }
        if with_reply and self.reply_to is not None:
            # Telegram nests replied-to messages one level deep only.
            api["reply_to_message"] = self.reply_to.to_api(with_reply=False)
        return api


EventKind = Literal["sent", "edited", "deleted"]


@dataclass(frozen=True)
class ChatEvent:
    """Something the bot did to a chat; ``message`` is the snapshot right after it."""

    seq: int
    kind: EventKind
    message: ChatMessage


@dataclass(frozen=True)
class CallbackRef:
    """A button press made by a sandbox user, to be matched with the bot's answer."""

    id: str
    data: str
    chat_id: int
    message_id: int


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot passed to answerCallbackQuery."""

    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int


@dataclass
class ApiCall:
    """One request the bot made; ``status`` and ``result`` are filled when it has been answered."""

    seq: int
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str | None, bytes]] = field(repr=False)
    time: float
    status: int | None = None
    result: Any = field(default=None, repr=False)
    description: str | None = None


@dataclass
class BotIdentity:
    """The bot account that ``getMe`` describes."""

    id: int
    username: str
    first_name: str
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    supports_inline_queries: bool = False

    def to_api(self) -> dict[str, Any]:
        """The User object of the bot, as getMe returns it."""
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": self.supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    remaining: int
    delay: float


@dataclass
class _PendingCallback:
    ref: CallbackRef
    answered: asyncio.Event
    answer: CallbackAnswer | None = None


@dataclass
class _Upload:
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


# --------------------------------------------------------------------------------------------
# Request parameters
# --------------------------------------------------------------------------------------------

# Values PTB sends as plain strings; everything else arrives JSON-encoded.
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "file_id", "url", "action",
        "inline_message_id", "language_code", "description", "short_description", "name",
        "title", "secret_token", "ip_address", "emoji", "message_effect_id",
        "business_connection_id", "document", "photo", "thumbnail", "query",
    }
)  # fmt: skip


class _Params:
    """A request's parameters, decoded on demand because their encoding depends on the name."""

    def __init__(self, raw: dict[str, str], files: dict[str, _Upload]) -> None:
        self.raw = raw
        self.files = files

    def has(self, name: str) -> bool:
        return name in self.raw or name in self.files

    def str_opt(self, name: str) -> str | None:
        return self.raw.get(name)

    def int_opt(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return int(float(value))
        except ValueError:
            raise _bad_request(f"invalid {name} specified") from None

    def int_req(self, name: str) -> int:
        value = self.int_opt(name)
        if value is None:
            raise _bad_request(f"{name} is empty")
        return value

    def float_opt(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise _bad_request(f"invalid {name} specified") from None

    def bool_opt(self, name: str, default: bool = False) -> bool:
        value = self.raw.get(name)
        if value is None:
            return default
        return value.strip().lower() in ("true", "1")

    def json_opt(self, name: str, error: str | None = None) -> Any:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(error or f"can't parse {name} JSON object") from None

    def for_log(self) -> dict[str, Any]:
        decoded: dict[str, Any] = {}
        for name, value in self.raw.items():
            if name in _STRING_PARAMS:
                decoded[name] = value
                continue
            try:
                decoded[name] = json.loads(value)
            except ValueError:
                decoded[name] = value
        for name, upload in self.files.items():
            decoded.setdefault(name, f"<upload {upload.filename or name}>")
        return decoded


async def _read_params(request: Request) -> _Params:
    raw: dict[str, str] = dict(request.query_params)
    files: dict[str, _Upload] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise _bad_request("can't parse JSON object") from None
        if isinstance(body, dict):
            for name, value in body.items():
                raw[name] = value if isinstance(value, str) else json.dumps(value)
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form(max_part_size=16 * 1024 * 1024) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = _Upload(value.filename, value.content_type, await value.read())
                else:
                    raw[name] = value
    return _Params(raw, files)


# --------------------------------------------------------------------------------------------
# Reply markup
# --------------------------------------------------------------------------------------------

_INLINE_ACTIONS = (
    "callback_data", "url", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip


@dataclass(frozen=True)
class _Markup:
    inline: tuple[tuple[Button, ...], ...] = ()
    reply: tuple[tuple[str, ...], ...] | None = None
    remove: bool = False
    force_reply: bool = False


def _check_button_url(url: str) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return
    if scheme not in ("http", "https"):
        raise _bad_request(
            f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
        )
    host = parts.hostname or ""
    # Telegram refuses hosts that cannot be public, such as "localhost"; IP addresses pass.
    is_ip = bool(re.fullmatch(r"[0-9.]+|\[?[0-9a-fA-F:]+\]?", host))
    if not host or ("." not in host and not is_ip) or host.endswith("."):
        raise _bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _parse_inline_button(button: Any) -> Button:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    text = button["text"]
    if not text.strip():
        raise _bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if not actions:
        raise _bad_request("text buttons are unallowed in the inline keyboard")
    data = button.get("callback_data")
    if data is not None:
        encoded = str(data).encode("utf-8")
        if not 1 <= len(encoded) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if url is not None:
        _check_button_url(str(url))
    return Button(
        text=text,
        callback_data=None if data is None else str(data),
        url=None if url is None else str(url),
        raw=dict(button),
    )


def _parse_markup(value: Any) -> _Markup | None:
    if value is None:
        return None
    invalid = _bad_request("can't parse reply keyboard markup JSON object")
    if not isinstance(value, dict):
        raise invalid
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
            )
        inline = tuple(tuple(_parse_inline_button(b) for b in row) for row in rows)
        return _Markup(inline=tuple(row for row in inline if row))
    if "keyboard" in value:
        rows = value["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise invalid
        labels: list[tuple[str, ...]] = []
        for row in rows:
            texts = [b if isinstance(b, str) else b.get("text") for b in row]
            if not all(isinstance(t, str) and t for t in texts):
                raise _bad_request("keyboard button text is empty")
            labels.append(tuple(str(t) for t in texts))
        return _Markup(reply=tuple(labels))
    if value.get("remove_keyboard"):
        return _Markup(remove=True)
    if value.get("force_reply"):
        return _Markup(force_reply=True)
    raise invalid


# --------------------------------------------------------------------------------------------
# Users and their private chats with the bot
# --------------------------------------------------------------------------------------------


class SandboxUser:
    """A Telegram user in a private chat with the bot; every method runs on the server's loop."""

    def __init__(
        self,
        server: BotApiServer,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        started: bool,
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.started = started
        self.blocked = False
        self.chat_instance = str(secrets.randbits(62))
        self.chat_actions: list[str] = []
        self.callbacks: list[CallbackRef] = []
        self._messages: dict[int, ChatMessage] = {}
        self._events: list[ChatEvent] = []
        self._changed = asyncio.Event()
        self._message_ids = itertools.count(1)
        self._cursor_any = 0
        self._cursor_sent = 0
        self._cursor_edited = 0
        self._mark = 0
        self._reply_keyboard: tuple[tuple[str, ...], ...] | None = None

    # -- identity ------------------------------------------------------------------------

    @property
    def chat_id(self) -> int:
        """A private chat's id is the user's id."""
        return self.id

    def to_api(self) -> dict[str, Any]:
        """The User object."""
        api: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            api["last_name"] = self.last_name
        if self.username:
            api["username"] = self.username
        if self.language_code:
            api["language_code"] = self.language_code
        return api

    def chat_to_api(self) -> dict[str, Any]:
        """The Chat object of the private chat."""
        api: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            api["last_name"] = self.last_name
        if self.username:
            api["username"] = self.username
        return api

    def __repr__(self) -> str:
        return f"SandboxUser(id={self.id}, first_name={self.first_name!r})"

    # -- what the chat holds -------------------------------------------------------------

    @property
    def history(self) -> list[ChatMessage]:
        """Every message of the chat in order, in its latest state (deleted ones flagged)."""
        return [self._messages[k] for k in sorted(self._messages)]

    @property
    def events(self) -> list[ChatEvent]:
        """Everything the bot did in this chat: sends, edits and deletions, in order."""
        return list(self._events)

    @property
    def bot_messages(self) -> list[ChatMessage]:
        """The bot's messages still in the chat, latest state."""
        return [m for m in self.history if m.from_bot and not m.deleted]

    @property
    def last_bot_message(self) -> ChatMessage | None:
        """The bot's most recent message still in the chat."""
        messages = self.bot_messages
        return messages[-1] if messages else None

    @property
    def reply_keyboard(self) -> tuple[tuple[str, ...], ...] | None:
        """The reply keyboard currently shown under the input field, if any."""
        return self._reply_keyboard

    def message(self, message_id: int) -> ChatMessage:
        """Latest state of one message of this chat."""
        try:
            return self._messages[message_id]
        except KeyError:
            raise LookupError(f"no message {message_id} in chat {self.id}") from None

    # -- acting as the user ---------------------------------------------------------------

    async def send_text(
        self, text: str, *, reply_to: ChatMessage | int | None = None
    ) -> ChatMessage:
        """Type ``text``; commands get their ``bot_command`` entity as Telegram adds it."""
        return self._user_message(
            text=text, entities=tuple(_detect_entities(text)), reply_to=reply_to
        )

    async def tap(self, label: str) -> ChatMessage:
        """Press a reply keyboard button, which sends its label as text."""
        keyboard = self._reply_keyboard or ()
        if not any(label in row for row in keyboard):
            raise LookupError(f"no reply keyboard button {label!r} (keyboard: {keyboard!r})")
        return await self.send_text(label)

    async def send_document(
        self,
        data: bytes,
        *,
        filename: str = "document.bin",
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> ChatMessage:
        """Send a file as a document; the server keeps it so that getFile and downloads work."""
        stored = self.server.store_file(
            data, filename=filename, mime_type=mime_type, kind="document"
        )
        return self._user_message(document=stored, caption=caption)

    async def send_photo(self, data: bytes, *, caption: str | None = None) -> ChatMessage:
        """Send a picture (PNG or JPEG bytes)."""
        stored = self.server.store_file(data, filename=None, mime_type=None, kind="photo")
        return self._user_message(photo=stored, caption=caption)

    async def press(self, message: ChatMessage | int, button: str) -> CallbackRef:
        """Press an inline button (by label, else by callback data) of the message as it is now."""
        message_id = message if isinstance(message, int) else message.message_id
        current = self.message(message_id)
        if current.deleted:
            raise LookupError(f"message {message_id} was deleted")
        target = current.button(button)
        if target.callback_data is None:
            raise ValueError(f"button {button!r} is not a callback button ({target.raw})")
        self.started = True
        ref = CallbackRef(
            id=str(secrets.randbits(63)),
            data=target.callback_data,
            chat_id=self.id,
            message_id=message_id,
        )
        self.callbacks.append(ref)
        self.server._callbacks[ref.id] = _PendingCallback(ref, asyncio.Event())
        self._mark = len(self._events)
        self.server._push_update(
            "callback_query",
            {
                "id": ref.id,
                "from": self.to_api(),
                "message": current.to_api(),
                "chat_instance": self.chat_instance,
                "data": ref.data,
            },
        )
        return ref

    async def answer_for(self, callback: CallbackRef, timeout: float = 10.0) -> CallbackAnswer:
        """Wait until the bot answers this button press, and return its answer."""
        pending = self.server._callbacks[callback.id]
        try:
            await asyncio.wait_for(pending.answered.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the bot did not answer callback query {callback.data!r} within {timeout}s"
            ) from None
        assert pending.answer is not None
        return pending.answer

    async def block(self) -> None:
        """Block the bot: further sends get 403, and the bot gets a my_chat_member update."""
        self._member_update("member", "kicked")
        self.blocked = True

    async def unblock(self) -> None:
        """Unblock the bot (Telegram then also sends a my_chat_member update)."""
        self.blocked = False
        self._member_update("kicked", "member")

    # -- observing the bot ----------------------------------------------------------------

    async def next_event(self, timeout: float = 10.0) -> ChatEvent:
        """The next thing the bot did in this chat (send, edit or delete), in order."""
        return await self._next(lambda e: True, "_cursor_any", timeout, "event")

    async def next_message(self, timeout: float = 10.0) -> ChatMessage:
        """The next new message the bot sent here (edits have their own cursor)."""
        event = await self._next(lambda e: e.kind == "sent", "_cursor_sent", timeout, "message")
        return event.message

    async def next_edit(self, timeout: float = 10.0) -> ChatMessage:
        """The next edit the bot made here, as the message looks after it."""
        event = await self._next(lambda e: e.kind == "edited", "_cursor_edited", timeout, "edit")
        return event.message

    async def wait_for(
        self,
        predicate: Callable[[ChatMessage], bool],
        timeout: float = 10.0,
        *,
        kinds: Iterable[EventKind] = ("sent", "edited"),
        since: int | None = None,
    ) -> ChatMessage:
        """First bot message (sent or edited) satisfying ``predicate``.

        The search starts at the user's last action unless ``since`` gives an event index, so
        a reply that came before this call is still found. Cursors are left untouched.
        """
        wanted = frozenset(kinds)
        start = self._mark if since is None else since
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self._events[start:]:
                if event.kind in wanted and predicate(event.message):
                    return event.message
            start = len(self._events)
            if not await self._wait_change(deadline):
                recent = [e.message.content[:80] for e in self._events[-5:]]
                raise TimeoutError(
                    f"no matching bot message in chat {self.id} within {timeout}s; "
                    f"latest: {recent!r}"
                )

    async def expect_no_message(self, within: float = 0.3) -> None:
        """Fail if the bot sends a new message within ``within`` seconds."""
        seen = sum(1 for e in self._events if e.kind == "sent")
        await asyncio.sleep(within)
        fresh = [e.message for e in self._events if e.kind == "sent"][seen:]
        if fresh:
            raise AssertionError(f"unexpected bot message: {fresh[0].content!r}")

    def drain(self) -> list[ChatEvent]:
        """Move every cursor to the end; returns the events skipped by ``next_event``."""
        skipped = self._events[self._cursor_any :]
        end = len(self._events)
        self._cursor_any = self._cursor_sent = self._cursor_edited = self._mark = end
        return list(skipped)

    # -- internals ------------------------------------------------------------------------

    async def _next(
        self, accept: Callable[[ChatEvent], bool], cursor: str, timeout: float, what: str
    ) -> ChatEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            position = getattr(self, cursor)
            for index in range(position, len(self._events)):
                if accept(self._events[index]):
                    setattr(self, cursor, index + 1)
                    return self._events[index]
            setattr(self, cursor, len(self._events))
            if not await self._wait_change(deadline):
                raise TimeoutError(f"no {what} from the bot in chat {self.id} within {timeout}s")

    async def _wait_change(self, deadline: float) -> bool:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            return False
        return True

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _record(self, kind: EventKind, message: ChatMessage) -> None:
        self._messages[message.message_id] = message
        if message.from_bot or kind == "deleted":
            self._events.append(ChatEvent(len(self._events), kind, message))
            self._notify()

    def _resolve_reply(self, reply_to: ChatMessage | int | None) -> ChatMessage | None:
        if reply_to is None:
            return None
        message_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
        return self.message(message_id)

    def _user_message(
        self,
        *,
        text: str | None = None,
        entities: tuple[Mapping[str, Any], ...] = (),
        document: StoredFile | None = None,
        photo: StoredFile | None = None,
        caption: str | None = None,
        reply_to: ChatMessage | int | None = None,
    ) -> ChatMessage:
        if self.blocked:
            raise RuntimeError("unblock the bot before writing to it")
        self.started = True
        message = ChatMessage(
            message_id=next(self._message_ids),
            chat_id=self.id,
            from_bot=False,
            date=_now(),
            sender=self.to_api(),
            chat=self.chat_to_api(),
            text=text,
            entities=entities,
            caption=caption,
            caption_entities=tuple(_detect_entities(caption)) if caption else (),
            document=document,
            photo=photo,
            reply_to=self._resolve_reply(reply_to),
        )
        self._record("sent", message)
        self._mark = len(self._events)
        self.server._push_update("message", message.to_api())
        return message

    def _bot_message(self, **fields: Any) -> ChatMessage:
        message = ChatMessage(
            message_id=next(self._message_ids),
            chat_id=self.id,
            from_bot=True,
            date=_now(),
            sender=self.server.bot.to_api(),
            chat=self.chat_to_api(),
            **fields,
        )
        if message.reply_keyboard is not None:
            self._reply_keyboard = message.reply_keyboard
        elif message.remove_keyboard:
            self._reply_keyboard = None
        self._record("sent", message)
        return message

    def _member_update(self, old: str, new: str) -> None:
        bot = self.server.bot.to_api()
        now = _now()
        new_member: dict[str, Any] = {"status": new, "user": bot}
        if new == "kicked":
            new_member["until_date"] = 0
        old_member: dict[str, Any] = {"status": old, "user": bot}
        if old == "kicked":
            old_member["until_date"] = 0
        self.server._push_update(
            "my_chat_member",
            {
                "chat": self.chat_to_api(),
                "from": self.to_api(),
                "date": now,
                "old_chat_member": old_member,
                "new_chat_member": new_member,
            },
        )


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _QuietUvicorn(uvicorn.Server):
    """Uvicorn without its signal handlers, which belong to whoever embeds the emulator."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind_socket(host: str, port: int) -> socket.socket:
    # Protocol IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections;
    # without it every long-poll answer waits ~45 ms for Nagle's algorithm.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
        return (0, 0)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return (0, 0)
    return None


Handler = Callable[[_Params], Awaitable[Any]]


class BotApiServer:
    """The emulated Bot API server; all state lives on the event loop that runs it.

    A real python-telegram-bot ``Application`` runs against it unchanged::

        async with BotApiServer() as server:
            app = (
                ApplicationBuilder().token(server.token)
                .base_url(server.base_url).base_file_url(server.base_file_url).build()
            )
            ...  # start the app and its polling
            claire = server.new_user("Claire")
            await claire.send_text("/start")
            reply = await claire.next_message()

    With the bot in another process, run the server in a thread instead:
    ``api = ThreadedBotApi().start()``, pass ``api.env()`` to the process, and drive users with
    the blocking :class:`ThreadedUser` returned by ``api.new_user(...)``.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "educonnect_test_bot",
        bot_first_name: str = "EduConnect (test)",
        bot_id: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if token is not None:
            bot_id = int(token.split(":", 1)[0])
        bot_id = bot_id or 7_000_000_000 + secrets.randbelow(10**8)
        self.token = token or f"{bot_id}:AA{secrets.token_urlsafe(32)[:33]}"
        self.bot = BotIdentity(id=bot_id, username=bot_username, first_name=bot_first_name)
        self.host = host
        self._requested_port = port
        self.port = 0

        self.calls: list[ApiCall] = []
        self.updates: list[dict[str, Any]] = []
        """Every update ever produced, delivered or not: a debugging aid."""
        self.files: dict[str, StoredFile] = {}
        self.deleted: list[tuple[int, int]] = []
        self.commands_by_scope: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook_url = ""
        self.unsupported_methods: set[str] = set()
        """Real Bot API methods the bot called that this emulator does not implement."""

        self._users: dict[int, SandboxUser] = {}
        self._user_ids = itertools.count(700_000_001)
        self._file_counter = itertools.count(1)
        self._files_by_path: dict[str, StoredFile] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(secrets.randbelow(10**6) + 100_000)
        self._allowed_updates: frozenset[str] | None = None
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        self._poll_generation = 0
        self._faults: dict[str, deque[_Fault]] = {}
        self._callbacks: dict[str, _PendingCallback] = {}
        self._stopping = False
        self._uvicorn: _QuietUvicorn | None = None
        self._serve_task: asyncio.Task[None] | None = None

        self._methods: dict[str, tuple[str, Handler]] = {}
        for name, handler in self._method_table().items():
            self._methods[name.lower()] = (name, handler)
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._handle_method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._handle_file, methods=["GET"]),
            ]
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Pass to ``ApplicationBuilder().base_url``; PTB appends the token."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Pass to ``ApplicationBuilder().base_file_url``."""
        return f"http://{self.host}:{self.port}/file/bot"

    def env(self) -> dict[str, str]:
        """Environment variables pointing the EduConnect bot process at this server."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_BASE_URL": self.base_url,
            "TELEGRAM_BASE_FILE_URL": self.base_file_url,
        }

    async def start(self) -> None:
        """Listen on a free port (or the one asked for) in the running event loop."""
        if self._serve_task is not None:
            raise RuntimeError("server already started")
        self._stopping = False
        # Events bind to the first loop that waits on them; a restart may use another loop.
        self._updates_changed = asyncio.Event()
        self._calls_changed = asyncio.Event()
        for user in self._users.values():
            user._changed = asyncio.Event()
        sock = _bind_socket(self.host, self._requested_port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = _QuietUvicorn(config)
        self._serve_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise RuntimeError("the Bot API emulator stopped while starting")
            await asyncio.sleep(0.01)
        _LOGGER.info("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Answer pending long polls, then shut the HTTP server down."""
        if self._serve_task is None or self._uvicorn is None:
            return
        self._stopping = True
        self._wake_pollers()
        self._uvicorn.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._serve_task), 5)
        except TimeoutError:
            self._uvicorn.force_exit = True
            await self._serve_task
        self._serve_task = None
        self._uvicorn = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start_in_thread(self) -> ThreadedBotApi:
        """Run this server on its own loop in a daemon thread; returns the blocking facade."""
        threaded = ThreadedBotApi(server=self)
        threaded.start()
        return threaded

    # -- users ----------------------------------------------------------------------------

    def new_user(
        self,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "fr",
        user_id: int | None = None,
        started: bool = True,
    ) -> SandboxUser:
        """A new user with a private chat with the bot.

        ``started=False`` models someone who never opened the bot: the bot cannot write first.
        """
        uid = user_id if user_id is not None else next(self._user_ids)
        if uid in self._users:
            raise ValueError(f"user {uid} already exists")
        user = SandboxUser(self, uid, first_name, last_name, username, language_code, started)
        self._users[uid] = user
        return user

    def user(self, user_id: int) -> SandboxUser:
        """The sandbox user with this id."""
        return self._users[user_id]

    @property
    def users(self) -> list[SandboxUser]:
        """All sandbox users, oldest first."""
        return list(self._users.values())

    # -- what tests inspect ---------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        """Calls made to one method (case-insensitive), oldest first."""
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def clear_calls(self) -> None:
        """Forget the call log (long runs with tight polling grow it)."""
        self.calls.clear()

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """First call to ``method`` (from ``since`` in :attr:`calls`) matching ``predicate``."""
        wanted = method.lower()
        deadline = asyncio.get_running_loop().time() + timeout
        index = since
        while True:
            while index < len(self.calls):
                call = self.calls[index]
                index += 1
                if call.method.lower() == wanted and (predicate is None or predicate(call)):
                    return call
            remaining = deadline - asyncio.get_running_loop().time()
            changed = self._calls_changed
            try:
                await asyncio.wait_for(changed.wait(), max(remaining, 0))
            except TimeoutError:
                raise TimeoutError(f"the bot did not call {method} within {timeout}s") from None

    async def wait_until_polling(self, timeout: float = 10.0) -> None:
        """Return once the bot has started its getUpdates loop."""
        await self.wait_for_call("getUpdates", timeout=timeout)

    def commands(
        self, scope: Mapping[str, Any] | str | None = None, language_code: str = ""
    ) -> list[tuple[str, str]]:
        """The command list set for a scope, as ``(command, description)`` pairs.

        ``scope`` is a BotCommandScope dict, or just its type name such as ``"all_private_chats"``.
        """
        key = (_scope_key(scope), language_code or "")
        return list(self.commands_by_scope.get(key, []))

    @property
    def pending_update_count(self) -> int:
        """Updates not yet confirmed by the bot."""
        return len(self._pending)

    def file(self, file_id: str) -> StoredFile:
        """A stored file by id."""
        return self.files[file_id]

    def inject_fault(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        description: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with ``status``.

        A 429 carries ``parameters.retry_after``; ``delay`` holds the answer back first, which
        is how a slow or hanging server is imitated. Faults queue up in order.
        """
        default = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden: bot was blocked by the user",
            404: "Not Found",
            409: "Conflict: terminated by other getUpdates request; make sure that only one "
            "bot instance is running",
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Error")
        fault = _Fault(
            status=status,
            description=description or default,
            retry_after=retry_after if status == 429 else None,
            remaining=times,
            delay=delay,
        )
        self._faults.setdefault(method.lower(), deque()).append(fault)

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        self._faults.clear()

    def store_file(
        self,
        data: bytes,
        *,
        filename: str | None,
        mime_type: str | None,
        kind: Literal["document", "photo"] = "document",
    ) -> StoredFile:
        """Keep bytes as a Telegram file, with a file_id and a download path."""
        number = next(self._file_counter)
        if kind == "photo":
            size = _image_size(data) or (0, 0)
            path = f"photos/file_{number}.jpg"
            prefix = "AgACAgQAAxkBAAI"
        else:
            size = (0, 0)
            suffix = PurePosixPath(filename).suffix if filename else ""
            path = f"documents/file_{number}{suffix}"
            prefix = "BQACAgQAAxkBAAI"
            if mime_type is None and filename:
                mime_type = mimetypes.guess_type(filename)[0]
        stored = StoredFile(
            file_id=_random_file_id(prefix),
            file_unique_id="AgAD" + secrets.token_urlsafe(9)[:12],
            data=bytes(data),
            filename=filename,
            mime_type=mime_type if kind == "document" else None,
            file_path=path,
            kind=kind,
            width=size[0],
            height=size[1],
        )
        self.files[stored.file_id] = stored
        self._files_by_path[path] = stored
        return stored

    # -- updates --------------------------------------------------------------------------

    def _push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self._pending.append(update)
        self._wake_pollers()
        return update

    def _wake_pollers(self) -> None:
        changed, self._updates_changed = self._updates_changed, asyncio.Event()
        changed.set()

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            # A negative offset keeps only the last -offset updates.
            while len(self._pending) > -offset:
                self._pending.popleft()
            return
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()

    def _collect(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        batch: list[dict[str, Any]] = []
        kept: deque[dict[str, Any]] = deque()
        for update in self._pending:
            kind = next(k for k in update if k != "update_id")
            wanted = kind in allowed if allowed else kind not in _DEFAULT_EXCLUDED_UPDATES
            if not wanted:
                # Telegram never creates updates of unwanted types; dropping matches that.
                continue
            kept.append(update)
            if len(batch) < limit:
                batch.append(update)
        self._pending = kept
        return batch

    # -- HTTP -----------------------------------------------------------------------------

    async def _handle_method(self, request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if ":" not in token:
            return JSONResponse(ApiError(404, "Not Found").payload(), status_code=404)
        if token != self.token:
            return JSONResponse(ApiError(401, "Unauthorized").payload(), status_code=401)
        try:
            params = await _read_params(request)
        except ApiError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        known = self._methods.get(method.lower())
        call = ApiCall(
            seq=len(self.calls),
            method=known[0] if known else method,
            params=params.for_log(),
            files={k: (u.filename, u.data) for k, u in params.files.items()},
            time=time.time(),
        )
        self.calls.append(call)
        changed, self._calls_changed = self._calls_changed, asyncio.Event()
        changed.set()

        try:
            fault = self._take_fault(method)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
                raise ApiError(fault.status, fault.description, parameters)
            if known is None:
                raise self._unknown_method(method)
            result = await known[1](params)
        except ApiError as exc:
            call.status = exc.status
            call.description = exc.description
            _LOGGER.debug("%s -> %s %s", method, exc.status, exc.description)
            return JSONResponse(exc.payload(), status_code=exc.status)
        call.status = 200
        call.result = result
        return JSONResponse({"ok": True, "result": result})

    def _unknown_method(self, method: str) -> ApiError:
        if method[:1].islower() and callable(getattr(telegram.Bot, method, None)):
            # A real method the emulator lacks: say so, where Telegram's 404 would surface in
            # PTB as a baffling InvalidToken.
            self.unsupported_methods.add(method)
            _LOGGER.warning("Bot API method %s is not emulated by the sandbox", method)
            return _bad_request(f"method {method} is not emulated by the sandbox Bot API server")
        return ApiError(404, "Not Found")

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method.lower())
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    async def _handle_file(self, request: Request) -> Response:
        token = request.path_params["token"]
        stored = self._files_by_path.get(request.path_params["file_path"])
        if token != self.token or stored is None:
            return JSONResponse(ApiError(404, "Not Found").payload(), status_code=404)
        return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")

    # -- method implementations -----------------------------------------------------------

    def _method_table(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._set_description("description"),
            "getMyDescription": self._get_description("description"),
            "setMyShortDescription": self._set_description("short_description"),
            "getMyShortDescription": self._get_description("short_description"),
            "setMyName": self._set_description("name"),
            "getMyName": self._get_description("name"),
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
            "setMyDefaultAdministratorRights": self._true,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "pinChatMessage": self._pin_chat_message,
            "unpinChatMessage": self._pin_chat_message,
        }

    async def _true(self, params: _Params) -> bool:
        return True

    async def _get_me(self, params: _Params) -> dict[str, Any]:
        return self.bot.to_api()

    async def _get_updates(self, params: _Params) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        offset = params.int_opt("offset")
        limit = min(max(params.int_opt("limit") or 100, 1), 100)
        timeout = min(max(params.float_opt("timeout") or 0.0, 0.0), MAX_POLL_TIMEOUT)
        allowed = params.json_opt("allowed_updates")
        if isinstance(allowed, list):
            # Telegram remembers the last list it was given; an empty list means the default.
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        self._confirm(offset)

        # A newer getUpdates ends the older one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            batch = self._collect(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._stopping:
                return batch
            changed = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _set_webhook(self, params: _Params) -> bool:
        url = params.str_opt("url") or ""
        if url and not url.startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.bool_opt("drop_pending_updates"):
            self._pending.clear()
        self.webhook_url = url
        self._wake_pollers()
        return True

    async def _delete_webhook(self, params: _Params) -> bool:
        if params.bool_opt("drop_pending_updates"):
            self._pending.clear()
        self.webhook_url = ""
        return True

    async def _get_webhook_info(self, params: _Params) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._allowed_updates:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    def _scope_from(self, params: _Params) -> tuple[str, str]:
        scope = params.json_opt("scope")
        if scope is not None:
            if not isinstance(scope, dict) or "type" not in scope:
                raise _bad_request("can't parse BotCommandScope JSON object")
            if "chat_id" in scope:
                self._chat_by_id(scope["chat_id"])
        language = params.str_opt("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad_request("invalid language code specified")
        return _scope_key(scope), language

    async def _set_my_commands(self, params: _Params) -> bool:
        commands = params.json_opt("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        pairs: list[tuple[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad_request("can't parse BotCommand JSON object")
            command = str(item.get("command", ""))
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            pairs.append((command, description))
        key = self._scope_from(params)
        if pairs:
            self.commands_by_scope[key] = pairs
        else:
            self.commands_by_scope.pop(key, None)
        return True

    async def _get_my_commands(self, params: _Params) -> list[dict[str, str]]:
        key = self._scope_from(params)
        return [{"command": c, "description": d} for c, d in self.commands_by_scope.get(key, [])]

    async def _delete_my_commands(self, params: _Params) -> bool:
        self.commands_by_scope.pop(self._scope_from(params), None)
        return True

    def _set_description(self, field_name: str) -> Handler:
        async def handler(params: _Params) -> bool:
            language = params.str_opt("language_code") or ""
            value = params.str_opt(field_name) or ""
            if value:
                self.descriptions[(field_name, language)] = value
            else:
                self.descriptions.pop((field_name, language), None)
            return True

        return handler

    def _get_description(self, field_name: str) -> Handler:
        async def handler(params: _Params) -> dict[str, str]:
            language = params.str_opt("language_code") or ""
            value = self.descriptions.get((field_name, language))
            if value is None:
                value = self.descriptions.get((field_name, ""), "")
            if field_name == "name" and not value:
                value = self.bot.first_name
            return {field_name: value}

        return handler

    async def _set_chat_menu_button(self, params: _Params) -> bool:
        chat_id = params.int_opt("chat_id")
        if chat_id is not None:
            self._chat_by_id(chat_id)
        button = params.json_opt("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or "type" not in button:
            raise _bad_request("can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    async def _get_chat_menu_button(self, params: _Params) -> dict[str, Any]:
        chat_id = params.int_opt("chat_id")
        button = self.menu_buttons.get(chat_id) or self.menu_buttons.get(None)
        return button or {"type": "default"}

    def _chat_by_id(self, raw: Any) -> SandboxUser:
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None
        user = self._users.get(chat_id)
        if user is None:
            raise _bad_request("chat not found")
        return user

    def _chat(self, params: _Params) -> SandboxUser:
        raw = params.str_opt("chat_id")
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        return self._chat_by_id(raw.strip('"'))

    def _writable_chat(self, params: _Params) -> SandboxUser:
        chat = self._chat(params)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not chat.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _reply_target(self, chat: SandboxUser, params: _Params) -> ChatMessage | None:
        reply = params.json_opt("reply_parameters")
        if reply is None:
            legacy = params.int_opt("reply_to_message_id")
            reply = {"message_id": legacy} if legacy else None
        if not isinstance(reply, dict) or "message_id" not in reply:
            return None
        target = chat._messages.get(int(reply["message_id"]))
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply"):
                return None
            raise _bad_request("message to be replied not found")
        return target

    @staticmethod
    def _markup_fields(markup: _Markup | None) -> dict[str, Any]:
        if markup is None:
            return {}
        return {
            "inline_keyboard": markup.inline,
            "reply_keyboard": markup.reply,
            "remove_keyboard": markup.remove,
            "force_reply": markup.force_reply,
        }

    def _formatted(
        self, params: _Params, name: str, *, limit: int, required: bool
    ) -> tuple[str | None, tuple[Mapping[str, Any], ...]]:
        raw = params.str_opt(name)
        if raw is None or (not required and raw == ""):
            if required:
                raise _bad_request("message text is empty")
            return None, ()
        entities_name = "entities" if name == "text" else f"{name}_entities"
        explicit = params.json_opt(entities_name)
        text, entities = parse_formatted_text(
            raw, params.str_opt("parse_mode"), explicit if isinstance(explicit, list) else None
        )
        if not text:
            if required:
                raise _bad_request("message text is empty")
            return None, ()
        if len(text) > limit:
            raise _bad_request(
                "message is too long" if name == "text" else "message caption is too long"
            )
        return text, tuple(entities)

    async def _send_message(self, params: _Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        text, entities = self._formatted(params, "text", limit=MAX_TEXT_LENGTH, required=True)
        markup = _parse_markup(params.json_opt("reply_markup"))
        reply_to = self._reply_target(chat, params)
        message = chat._bot_message(
            text=text,
            entities=entities,
            source=params.str_opt("text"),
            parse_mode=params.str_opt("parse_mode"),
            reply_to=reply_to,
            **self._markup_fields(markup),
        )
        return message.to_api()

    def _editable(
        self, params: _Params, *, action: str = "edit"
    ) -> tuple[SandboxUser, ChatMessage]:
        if params.has("inline_message_id"):
            raise _bad_request(f"message to {action} not found")
        chat = self._chat(params)
        message_id = params.int_req("message_id")
        message = chat._messages.get(message_id)
        if message is None or message.deleted:
            raise _bad_request(f"message to {action} not found")
        if not message.from_bot:
            raise _bad_request("message can't be edited")
        return chat, message

    def _apply_edit(self, chat: SandboxUser, old: ChatMessage, new: ChatMessage) -> dict[str, Any]:
        if new.to_api() == old.to_api():
            raise ApiError(400, _NOT_MODIFIED)
        edited = dataclasses.replace(new, edit_date=_now(), version=old.version + 1)
        chat._record("edited", edited)
        return edited.to_api()

    def _new_inline(self, params: _Params) -> tuple[tuple[Button, ...], ...]:
        markup = _parse_markup(params.json_opt("reply_markup"))
        if markup is not None and (markup.reply is not None or markup.remove or markup.force_reply):
            raise _bad_request("inline keyboard expected")
        # Telegram drops the inline keyboard of a message edited without one.
        return markup.inline if markup else ()

    async def _edit_message_text(self, params: _Params) -> dict[str, Any]:
        chat, old = self._editable(params)
        if old.text is None:
            raise _bad_request("there is no text in the message to edit")
        text, entities = self._formatted(params, "text", limit=MAX_TEXT_LENGTH, required=True)
        new = dataclasses.replace(
            old,
            text=text,
            entities=entities,
            source=params.str_opt("text"),
            parse_mode=params.str_opt("parse_mode"),
            inline_keyboard=self._new_inline(params),
        )
        return self._apply_edit(chat, old, new)

    async def _edit_message_caption(self, params: _Params) -> dict[str, Any]:
        chat, old = self._editable(params)
        if old.document is None and old.photo is None:
            raise _bad_request("there is no caption in the message to edit")
        caption, entities = self._formatted(
            params, "caption", limit=MAX_CAPTION_LENGTH, required=False
        )
        new = dataclasses.replace(
            old,
            caption=caption,
            caption_entities=entities,
            source=params.str_opt("caption"),
            parse_mode=params.str_opt("parse_mode"),
            inline_keyboard=self._new_inline(params),
        )
        return self._apply_edit(chat, old, new)

    async def _edit_message_reply_markup(self, params: _Params) -> dict[str, Any]:
        chat, old = self._editable(params)
        new = dataclasses.replace(old, inline_keyboard=self._new_inline(params))
        return self._apply_edit(chat, old, new)

    def _delete(self, chat: SandboxUser, message_id: int) -> bool:
        message = chat._messages.get(message_id)
        if message is None or message.deleted:
            return False
        gone = dataclasses.replace(message, deleted=True)
        chat._record("deleted", gone)
        self.deleted.append((chat.id, message_id))
        return True

    async def _delete_message(self, params: _Params) -> bool:
        chat = self._chat(params)
        if not self._delete(chat, params.int_req("message_id")):
            raise _bad_request("message to delete not found")
        return True

    async def _delete_messages(self, params: _Params) -> bool:
        chat = self._chat(params)
        ids = params.json_opt("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad_request("message identifiers are not specified")
        for message_id in ids:
            self._delete(chat, int(message_id))
        return True

    async def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.str_opt("callback_query_id") or ""
        pending = self._callbacks.get(query_id)
        if pending is None or pending.answer is not None:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.str_opt("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        pending.answer = CallbackAnswer(
            text=text,
            show_alert=params.bool_opt("show_alert"),
            url=params.str_opt("url"),
            cache_time=params.int_opt("cache_time") or 0,
        )
        pending.answered.set()
        return True

    def _incoming_file(
        self, params: _Params, name: str, kind: Literal["document", "photo"]
    ) -> StoredFile:
        upload = params.files.get(name)
        reference = params.str_opt(name)
        if upload is None and reference and reference.startswith("attach://"):
            upload = params.files.get(reference[len("attach://") :])
        if upload is not None:
            if not upload.data:
                raise _bad_request("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo" and _image_size(upload.data) is None:
                raise _bad_request("IMAGE_PROCESS_FAILED")
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(upload.filename or "")[0] or mime
            return self.store_file(upload.data, filename=upload.filename, mime_type=mime, kind=kind)
        if reference and reference.startswith(("http://", "https://")):
            # The sandbox is offline: Telegram would fetch the URL, here it cannot.
            raise _bad_request("failed to get HTTP URL content")
        if reference:
            known = self.files.get(reference)
            if known is not None:
                if known.kind != kind:
                    raise _bad_request("wrong file identifier/HTTP URL specified")
                return known
            raise _bad_request("wrong file identifier/HTTP URL specified")
        raise _bad_request(f"there is no {name} in the request")

    async def _send_file(
        self, params: _Params, kind: Literal["document", "photo"]
    ) -> dict[str, Any]:
        chat = self._writable_chat(params)
        stored = self._incoming_file(params, kind, kind)
        caption, entities = self._formatted(
            params, "caption", limit=MAX_CAPTION_LENGTH, required=False
        )
        markup = _parse_markup(params.json_opt("reply_markup"))
        reply_to = self._reply_target(chat, params)
        message = chat._bot_message(
            document=stored if kind == "document" else None,
            photo=stored if kind == "photo" else None,
            caption=caption,
            caption_entities=entities,
            source=params.str_opt("caption"),
            parse_mode=params.str_opt("parse_mode"),
            reply_to=reply_to,
            **self._markup_fields(markup),
        )
        return message.to_api()

    async def _send_document(self, params: _Params) -> dict[str, Any]:
        return await self._send_file(params, "document")

    async def _send_photo(self, params: _Params) -> dict[str, Any]:
        return await self._send_file(params, "photo")

    async def _send_chat_action(self, params: _Params) -> bool:
        chat = self._writable_chat(params)
        action = params.str_opt("action")
        if not action:
            raise _bad_request("action is empty")
        chat.chat_actions.append(action)
        return True

    async def _get_file(self, params: _Params) -> dict[str, Any]:
        file_id = params.str_opt("file_id") or ""
        stored = self.files.get(file_id)
        if stored is None:
            raise _bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _get_chat(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        info = chat.chat_to_api()
        info.update(
            accent_color_id=chat.id % 7,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        )
        return info

    async def _get_chat_member(self, params: _Params) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = params.int_req("user_id")
        if user_id == self.bot.id:
            return {"status": "member", "user": self.bot.to_api()}
        if user_id != chat.id:
            raise _bad_request("user not found")
        return {"status": "member", "user": chat.to_api()}

    async def _pin_chat_message(self, params: _Params) -> bool:
        chat = self._chat(params)
        message_id = params.int_opt("message_id")
        if message_id is not None and message_id not in chat._messages:
            raise _bad_request("message to pin not found")
        return True


def _scope_key(scope: Mapping[str, Any] | str | None) -> str:
    if scope is None:
        return _canonical({"type": "default"})
    if isinstance(scope, str):
        return _canonical({"type": scope})
    return _canonical(dict(scope))


# --------------------------------------------------------------------------------------------
# Blocking facade for a server running in its own thread
# --------------------------------------------------------------------------------------------


class ThreadedBotApi:
    """A :class:`BotApiServer` on a private event loop in a daemon thread, driven synchronously.

    Every method hops onto the server's loop with ``run_coroutine_threadsafe``, so it is safe
    from any other thread; calling it from the server's own thread would deadlock and raises.
    """

    def __init__(self, server: BotApiServer | None = None, **server_options: Any) -> None:
        if server is not None and server_options:
            raise TypeError("pass either a server or options to build one, not both")
        self._server_options = server_options
        self._server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> BotApiServer:
        """The underlying server; touch its state only through :meth:`call`."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server

    def start(self, timeout: float = 10.0) -> ThreadedBotApi:
        """Start the loop thread and the server in it."""
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                if self._server is None:
                    self._server = BotApiServer(**self._server_options)
                loop.run_until_complete(self._server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="bot-api-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the Bot API emulator did not start")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, then its loop and thread."""
        if self._thread is None or self._loop is None:
            return
        try:
            self.run(self.server.stop(), timeout=timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._thread = None
            self._loop = None

    def __enter__(self) -> ThreadedBotApi:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run a coroutine on the server's loop and wait for its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("server not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("ThreadedBotApi used from the server's own thread")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def call(self, function: Callable[[], _T], timeout: float | None = 10.0) -> _T:
        """Run a plain function on the server's loop (to read or change its state safely)."""

        async def wrapper() -> _T:
            return function()

        return self.run(wrapper(), timeout)

    # -- the server's test-facing API, blocking --------------------------------------------

    @property
    def token(self) -> str:
        """The bot token the server accepts."""
        return self.server.token

    @property
    def base_url(self) -> str:
        """Pass to ``ApplicationBuilder().base_url``."""
        return self.server.base_url

    @property
    def base_file_url(self) -> str:
        """Pass to ``ApplicationBuilder().base_file_url``."""
        return self.server.base_file_url

    @property
    def port(self) -> int:
        """The TCP port listened on."""
        return self.server.port

    @property
    def bot(self) -> BotIdentity:
        """The bot's identity."""
        return self.server.bot

    def env(self) -> dict[str, str]:
        """Environment variables pointing the bot process at this server."""
        return self.server.env()

    def new_user(self, first_name: str = "Test", **options: Any) -> ThreadedUser:
        """See :meth:`BotApiServer.new_user`."""
        user = self.call(lambda: self.server.new_user(first_name, **options))
        return ThreadedUser(self, user)

    def user(self, user_id: int) -> ThreadedUser:
        """An existing user."""
        return ThreadedUser(self, self.call(lambda: self.server.user(user_id)))

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """A copy of the call log, optionally for one method."""
        if method is None:
            return self.call(lambda: list(self.server.calls))
        return self.call(lambda: self.server.calls_to(method))

    def clear_calls(self) -> None:
        """Forget the call log."""
        self.call(self.server.clear_calls)

    def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> ApiCall:
        """See :meth:`BotApiServer.wait_for_call`."""
        return self.run(
            self.server.wait_for_call(method, predicate, timeout, since=since), timeout + 5
        )

    def wait_until_polling(self, timeout: float = 10.0) -> None:
        """Block until the bot has started polling."""
        self.run(self.server.wait_until_polling(timeout), timeout + 5)

    def commands(
        self, scope: Mapping[str, Any] | str | None = None, language_code: str = ""
    ) -> list[tuple[str, str]]:
        """See :meth:`BotApiServer.commands`."""
        return self.call(lambda: self.server.commands(scope, language_code))

    def inject_fault(self, method: str, **options: Any) -> None:
        """See :meth:`BotApiServer.inject_fault`."""
        self.call(lambda: self.server.inject_fault(method, **options))

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        self.call(self.server.clear_faults)

    @property
    def deleted(self) -> list[tuple[int, int]]:
        """``(chat_id, message_id)`` of every message the bot deleted."""
        return self.call(lambda: list(self.server.deleted))

    @property
    def pending_update_count(self) -> int:
        """Updates not yet confirmed by the bot."""
        return self.call(lambda: self.server.pending_update_count)

    def file(self, file_id: str) -> StoredFile:
        """A stored file by id."""
        return self.call(lambda: self.server.file(file_id))


class ThreadedUser:
    """Blocking twin of :class:`SandboxUser` for a server run by :class:`ThreadedBotApi`."""

    def __init__(self, api: ThreadedBotApi, user: SandboxUser) -> None:
        self.api = api
        self.user = user
        self.id = user.id
        self.chat_id = user.chat_id
        self.first_name = user.first_name

    def __repr__(self) -> str:
        return f"ThreadedUser(id={self.id}, first_name={self.first_name!r})"

    def send_text(self, text: str, *, reply_to: ChatMessage | int | None = None) -> ChatMessage:
        """See :meth:`SandboxUser.send_text`."""
        return self.api.run(self.user.send_text(text, reply_to=reply_to), 10)

    def tap(self, label: str) -> ChatMessage:
        """See :meth:`SandboxUser.tap`."""
        return self.api.run(self.user.tap(label), 10)

    def send_document(
        self,
        data: bytes,
        *,
        filename: str = "document.bin",
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> ChatMessage:
        """See :meth:`SandboxUser.send_document`."""
        coro = self.user.send_document(
            data, filename=filename, mime_type=mime_type, caption=caption
        )
        return self.api.run(coro, 10)

    def send_photo(self, data: bytes, *, caption: str | None = None) -> ChatMessage:
        """See :meth:`SandboxUser.send_photo`."""
        return self.api.run(self.user.send_photo(data, caption=caption), 10)

    def press(self, message: ChatMessage | int, button: str) -> CallbackRef:
        """See :meth:`SandboxUser.press`."""
        return self.api.run(self.user.press(message, button), 10)

    def answer_for(self, callback: CallbackRef, timeout: float = 10.0) -> CallbackAnswer:
        """See :meth:`SandboxUser.answer_for`."""
        return self.api.run(self.user.answer_for(callback, timeout), timeout + 5)

    def block(self) -> None:
        """See :meth:`SandboxUser.block`."""
        self.api.run(self.user.block(), 10)

    def unblock(self) -> None:
        """See :meth:`SandboxUser.unblock`."""
        self.api.run(self.user.unblock(), 10)

    def next_message(self, timeout: float = 10.0) -> ChatMessage:
        """See :meth:`SandboxUser.next_message`."""
        return self.api.run(self.user.next_message(timeout), timeout + 5)

    def next_edit(self, timeout: float = 10.0) -> ChatMessage:
        """See :meth:`SandboxUser.next_edit`."""
        return self.api.run(self.user.next_edit(timeout), timeout + 5)

    def next_event(self, timeout: float = 10.0) -> ChatEvent:
        """See :meth:`SandboxUser.next_event`."""
        return self.api.run(self.user.next_event(timeout), timeout + 5)

    def wait_for(
        self,
        predicate: Callable[[ChatMessage], bool],
        timeout: float = 10.0,
        *,
        kinds: Iterable[EventKind] = ("sent", "edited"),
        since: int | None = None,
    ) -> ChatMessage:
        """See :meth:`SandboxUser.wait_for`; ``predicate`` runs on the server's thread."""
        coro = self.user.wait_for(predicate, timeout, kinds=tuple(kinds), since=since)
        return self.api.run(coro, timeout + 5)

    def expect_no_message(self, within: float = 0.3) -> None:
        """See :meth:`SandboxUser.expect_no_message`."""
        self.api.run(self.user.expect_no_message(within), within + 5)

    def drain(self) -> list[ChatEvent]:
        """See :meth:`SandboxUser.drain`."""
        return self.api.call(self.user.drain)

    def message(self, message_id: int) -> ChatMessage:
        """Latest state of one message."""
        return self.api.call(lambda: self.user.message(message_id))

    @property
    def history(self) -> list[ChatMessage]:
        """See :attr:`SandboxUser.history`."""
        return self.api.call(lambda: self.user.history)

    @property
    def events(self) -> list[ChatEvent]:
        """See :attr:`SandboxUser.events`."""
        return self.api.call(lambda: self.user.events)

    @property
    def bot_messages(self) -> list[ChatMessage]:
        """See :attr:`SandboxUser.bot_messages`."""
        return self.api.call(lambda: self.user.bot_messages)

    @property
    def reply_keyboard(self) -> tuple[tuple[str, ...], ...] | None:
        """See :attr:`SandboxUser.reply_keyboard`."""
        return self.api.call(lambda: self.user.reply_keyboard)

    @property
    def chat_actions(self) -> list[str]:
        """Chat actions (``typing``, ``upload_document``…) the bot sent here."""
        return self.api.call(lambda: list(self.user.chat_actions))


# --------------------------------------------------------------------------------------------
# Stand-alone use: python -m bot.sandbox.botapi
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the emulator until interrupted, printing the settings a bot process needs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=None)
    parser.add_argument("--username", default="educonnect_test_bot")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = BotApiServer(
            token=args.token, bot_username=args.username, host=args.host, port=args.port
        )
        async with server:
            for name, value in server.env().items():
                print(f"{name}={value}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
