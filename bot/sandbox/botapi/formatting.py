"""Telegram's message formatting: HTML / MarkdownV2 / Markdown parsing into text and entities.

The parsers are faithful in their error messages; entity offsets count UTF-16 code units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.sandbox.botapi.errors import bad_request


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


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


class _HtmlParser:
    """Port of tdlib's HTML parser: same accepted tags, same error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self.built = _TextBuilder()
        self.stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        text = self.text
        while self.i < self.n:
            char = text[self.i]
            if char == "&" and self._entity():
                continue
            if char != "<":
                self.built.add(char)
                self.i += 1
                continue
            offset = _byte_offset(text, self.i)
            self.i += 1
            if self.i < self.n and text[self.i] == "/":
                self._end_tag(offset)
            else:
                self._start_tag(offset)
        if self.stack:
            raise _ParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        return self.built.text(), self.entities

    def _skip_spaces(self) -> None:
        while self.i < self.n and self.text[self.i] in _SPACES:
            self.i += 1

    def _skip_name(self) -> None:
        while self.i < self.n and self.text[self.i] not in _SPACES and self.text[self.i] != ">":
            self.i += 1

    def _entity(self) -> bool:
        """Decode the character reference at the cursor; False leaves a bare "&" as text."""
        match = _HTML_ENTITY_RE.match(self.text, self.i)
        decoded = _decode_html_entity(match) if match else None
        if match is None or decoded is None:
            return False
        self.built.add(decoded)
        self.i = match.end()
        return True

    def _end_tag(self, offset: int) -> None:
        """``</name>``, the cursor on its slash: closes the innermost open tag."""
        if not self.stack:
            raise _ParseError(f"Unexpected end tag at byte offset {offset}")
        self.i += 1
        name_start = self.i
        self._skip_name()
        end_name = self.text[name_start : self.i].lower()
        self._skip_spaces()
        if self.i >= self.n or self.text[self.i] != ">":
            raise _ParseError(f"Unclosed end tag at byte offset {offset}")
        tag = self.stack.pop()
        if end_name and end_name != tag.name:
            raise _ParseError(
                f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", '
                f'found "</{end_name}>"'
            )
        _close_html_tag(tag, self.built.utf16, self.stack, self.entities)
        self.i += 1

    def _start_tag(self, offset: int) -> None:
        """``<name attributes>``, the cursor just after the "<": opens a tag."""
        name_start = self.i
        self._skip_name()
        if self.i >= self.n:
            raise _ParseError(f"Unclosed start tag at byte offset {offset}")
        name = self.text[name_start : self.i].lower()
        if name not in _HTML_TAGS:
            raise _ParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
        argument, expandable = self._attributes(name, offset)
        self.i += 1
        if name == "span" and argument != "spoiler":
            raise _ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        self.stack.append(_OpenTag(name, argument, self.built.utf16, offset, expandable=expandable))

    def _attributes(self, name: str, offset: int) -> tuple[str, bool]:
        """Read attributes up to the tag's ">": the tag's argument and its expandable flag."""
        text = self.text
        argument = ""
        expandable = False
        while True:
            self._skip_spaces()
            if self.i >= self.n:
                raise _ParseError(f'Unclosed start tag "{name}" at byte offset {offset}')
            if text[self.i] == ">":
                return argument, expandable
            attr_begin = self.i
            while self.i < self.n and text[self.i] not in _SPACES and text[self.i] not in "=>":
                self.i += 1
            attribute = text[attr_begin : self.i].lower()
            if not attribute:
                raise _ParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {offset}'
                )
            self._skip_spaces()
            if self.i >= self.n or text[self.i] != "=":
                if name == "blockquote" and attribute == "expandable":
                    expandable = True
                    continue
                raise _ParseError(
                    "Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {offset}'
                )
            self.i += 1
            value = self._attribute_value(name, offset)
            meaning = _tag_argument(name, attribute, value)
            if meaning is not None:
                argument = meaning

    def _attribute_value(self, name: str, offset: int) -> str:
        """A quoted value (entities decoded) or a bare name token (lower-cased)."""
        text = self.text
        self._skip_spaces()
        if self.i >= self.n:
            raise _ParseError(f'Unclosed start tag "{name}" at byte offset {offset}')
        if text[self.i] in "'\"":
            quote = text[self.i]
            value_end = text.find(quote, self.i + 1)
            if value_end == -1:
                raise _ParseError(
                    f'Unclosed attribute value in the tag "{name}" at byte offset {offset}'
                )
            value = _decode_html_entities(text[self.i + 1 : value_end])
            self.i = value_end + 1
            return value
        token_begin = self.i
        while self.i < self.n and (
            (text[self.i].isascii() and text[self.i].isalnum()) or text[self.i] in ".-"
        ):
            self.i += 1
        if self.i >= self.n or (text[self.i] not in _SPACES and text[self.i] != ">"):
            raise _ParseError(
                f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
            )
        return text[token_begin : self.i].lower()


def _tag_argument(name: str, attribute: str, value: str) -> str | None:
    """What an attribute contributes to its tag (link, language, class, emoji), if anything."""
    if name == "a" and attribute == "href":
        return value
    if name == "code" and attribute == "class" and value.startswith("language-"):
        return value[len("language-") :]
    if name == "span" and attribute == "class" and value.startswith("tg-"):
        return value[len("tg-") :]
    if name == "tg-emoji" and attribute == "emoji-id":
        return value
    return None


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


class _MarkdownV2Parser:
    """A reduced port of tdlib's MarkdownV2 parser that keeps its escaping rules and errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self.built = _TextBuilder()
        self.stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        text, n = self.text, self.n
        while self.i < n:
            char = text[self.i]
            if char == "\\" and self.i + 1 < n and 0 < ord(text[self.i + 1]) <= 126:
                self.built.add(text[self.i + 1])
                self.i += 2
                continue
            top = self.stack[-1] if self.stack else None
            in_code = top is not None and top.name in ("code", "pre")
            if (in_code and char != "`") or (not in_code and char not in _MDV2_RESERVED):
                self.built.add(char)
                self.i += 1
                continue
            offset = _byte_offset(text, self.i)
            width = _mdv2_closes(top, text, self.i) if top else 0
            if top and width:
                self._close(top, width, offset)
            else:
                self._open(char, offset)
        if self.stack:
            tag = self.stack[-1]
            raise _ParseError(
                f"Can't find end of {_MDV2_NAMES[tag.name]} entity at byte offset {tag.byte_offset}"
            )
        return self.built.text(), self.entities

    def _close(self, top: _OpenTag, width: int, offset: int) -> None:
        """End the innermost entity at its ``width``-character marker under the cursor."""
        self.stack.pop()
        self.i += width
        url = ""
        if top.name == "text_link":
            url = self._link_url(offset)
            if not url:
                return
        length = self.built.utf16 - top.start
        if length > 0:
            entity: dict[str, Any] = {"type": top.name, "offset": top.start, "length": length}
            if url:
                entity["url"] = url
            if top.name == "pre" and top.language:
                entity["language"] = top.language
            self.entities.append(entity)

    def _link_url(self, offset: int) -> str:
        """The ``(url)`` after a link's "]", unescaped; empty when there is none."""
        text, n = self.text, self.n
        if not (self.i < n and text[self.i] == "("):
            return ""
        url_chars: list[str] = []
        j = self.i + 1
        while j < n and text[j] != ")":
            if text[j] == "\\" and j + 1 < n:
                j += 1
            url_chars.append(text[j])
            j += 1
        if j >= n:
            raise _ParseError(f"Can't find end of a URL at byte offset {offset}")
        self.i = j + 1
        return "".join(url_chars)

    def _open(self, char: str, offset: int) -> None:
        """Start the entity whose marker is under the cursor (or drop a quote marker)."""
        text, i = self.text, self.i
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
            self.i += 1
            return
        else:
            raise _ParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        self.stack.append(_OpenTag(name, "", self.built.utf16, offset, language=language))
        self.i += width


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
            plain, found = _HtmlParser(text).parse()
        elif mode == "markdownv2":
            plain, found = _MarkdownV2Parser(text).parse()
        elif mode == "markdown":
            plain, found = _parse_markdown_legacy(text)
        elif mode:
            raise bad_request("unsupported parse_mode")
        else:
            plain, found = text, [dict(e) for e in entities or () if isinstance(e, Mapping)]
    except _ParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    found.sort(key=lambda e: (int(e["offset"]), -int(e["length"])))
    return _trim(plain, found)


# Entities Telegram adds on its own to what users type.
_USER_ENTITY_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<url>\bhttps?://[^\s<>\"]+)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b)"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{4,32})"
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram adds to what a user types: commands, URLs, e-mails, mentions."""
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
