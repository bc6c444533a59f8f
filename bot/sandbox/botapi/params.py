"""Decoding a Bot API request's parameters: query string, JSON body or multipart form."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from bot.sandbox.botapi.errors import bad_request


@dataclass
class Upload:
    """A file sent in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


# Values PTB sends as plain strings; everything else arrives JSON-encoded.
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "file_id", "url", "action",
        "inline_message_id", "language_code", "description", "short_description", "name",
        "title", "secret_token", "ip_address", "emoji", "message_effect_id",
        "business_connection_id", "document", "photo", "thumbnail", "query",
    }
)  # fmt: skip


class Params:
    """A request's parameters, decoded on demand because their encoding depends on the name."""

    def __init__(self, raw: dict[str, str], files: dict[str, Upload]) -> None:
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
            raise bad_request(f"invalid {name} specified") from None

    def int_req(self, name: str) -> int:
        value = self.int_opt(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def float_opt(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise bad_request(f"invalid {name} specified") from None

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
            raise bad_request(error or f"can't parse {name} JSON object") from None

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


async def read_params(request: Request) -> Params:
    """Gather the query string and the JSON or form body; uploads are kept apart."""
    raw: dict[str, str] = dict(request.query_params)
    files: dict[str, Upload] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if isinstance(body, dict):
            for name, value in body.items():
                raw[name] = value if isinstance(value, str) else json.dumps(value)
    elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form(max_part_size=16 * 1024 * 1024) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = Upload(value.filename, value.content_type, await value.read())
                else:
                    raw[name] = value
    return Params(raw, files)


Handler = Callable[[Params], Awaitable[Any]]
"""The implementation of one Bot API method."""
