"""Bot API methods that write to chats: messages, edits, deletions, files, callback answers."""

from __future__ import annotations

import dataclasses
import mimetypes
from collections.abc import Mapping
from typing import Any, Literal

from bot.sandbox.botapi.errors import ApiError, bad_request
from bot.sandbox.botapi.formatting import parse_formatted_text
from bot.sandbox.botapi.markup import message_fields, parse_markup
from bot.sandbox.botapi.model import Button, CallbackAnswer, ChatMessage, StoredFile, now
from bot.sandbox.botapi.params import Params
from bot.sandbox.botapi.state import EmulatorState, image_size
from bot.sandbox.botapi.users import SandboxUser

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_ANSWER_LENGTH = 200
# Bots may upload up to 50 MB but only download up to 20 MB through getFile.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class MessageMethods(EmulatorState):
    """sendMessage, sendDocument/Photo, edits, deletions, answerCallbackQuery, getFile."""

    def _reply_target(self, chat: SandboxUser, params: Params) -> ChatMessage | None:
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
            raise bad_request("message to be replied not found")
        return target

    def _formatted(
        self, params: Params, name: str, *, limit: int, required: bool
    ) -> tuple[str | None, tuple[Mapping[str, Any], ...]]:
        raw = params.str_opt(name)
        if raw is None or (not required and raw == ""):
            if required:
                raise bad_request("message text is empty")
            return None, ()
        entities_name = "entities" if name == "text" else f"{name}_entities"
        explicit = params.json_opt(entities_name)
        text, entities = parse_formatted_text(
            raw, params.str_opt("parse_mode"), explicit if isinstance(explicit, list) else None
        )
        if not text:
            if required:
                raise bad_request("message text is empty")
            return None, ()
        if len(text) > limit:
            raise bad_request(
                "message is too long" if name == "text" else "message caption is too long"
            )
        return text, tuple(entities)

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        text, entities = self._formatted(params, "text", limit=MAX_TEXT_LENGTH, required=True)
        markup = parse_markup(params.json_opt("reply_markup"))
        reply_to = self._reply_target(chat, params)
        message = chat._bot_message(
            text=text,
            entities=entities,
            source=params.str_opt("text"),
            parse_mode=params.str_opt("parse_mode"),
            reply_to=reply_to,
            **message_fields(markup),
        )
        return message.to_api()

    def _editable(self, params: Params, *, action: str = "edit") -> tuple[SandboxUser, ChatMessage]:
        if params.has("inline_message_id"):
            raise bad_request(f"message to {action} not found")
        chat = self._chat(params)
        message_id = params.int_req("message_id")
        message = chat._messages.get(message_id)
        if message is None or message.deleted:
            raise bad_request(f"message to {action} not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    def _apply_edit(self, chat: SandboxUser, old: ChatMessage, new: ChatMessage) -> dict[str, Any]:
        if new.to_api() == old.to_api():
            raise ApiError(400, _NOT_MODIFIED)
        edited = dataclasses.replace(new, edit_date=now(), version=old.version + 1)
        chat._record("edited", edited)
        return edited.to_api()

    def _new_inline(self, params: Params) -> tuple[tuple[Button, ...], ...]:
        markup = parse_markup(params.json_opt("reply_markup"))
        if markup is not None and (markup.reply is not None or markup.remove or markup.force_reply):
            raise bad_request("inline keyboard expected")
        # Telegram drops the inline keyboard of a message edited without one.
        return markup.inline if markup else ()

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        chat, old = self._editable(params)
        if old.text is None:
            raise bad_request("there is no text in the message to edit")
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

    async def _edit_message_caption(self, params: Params) -> dict[str, Any]:
        chat, old = self._editable(params)
        if old.document is None and old.photo is None:
            raise bad_request("there is no caption in the message to edit")
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

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
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

    async def _delete_message(self, params: Params) -> bool:
        chat = self._chat(params)
        if not self._delete(chat, params.int_req("message_id")):
            raise bad_request("message to delete not found")
        return True

    async def _delete_messages(self, params: Params) -> bool:
        chat = self._chat(params)
        ids = params.json_opt("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            self._delete(chat, int(message_id))
        return True

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.str_opt("callback_query_id") or ""
        pending = self._callbacks.get(query_id)
        if pending is None or pending.answer is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.str_opt("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        pending.answer = CallbackAnswer(
            text=text,
            show_alert=params.bool_opt("show_alert"),
            url=params.str_opt("url"),
            cache_time=params.int_opt("cache_time") or 0,
        )
        pending.answered.set()
        return True

    def _incoming_file(
        self, params: Params, name: str, kind: Literal["document", "photo"]
    ) -> StoredFile:
        upload = params.files.get(name)
        reference = params.str_opt(name)
        if upload is None and reference and reference.startswith("attach://"):
            upload = params.files.get(reference[len("attach://") :])
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo" and image_size(upload.data) is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(upload.filename or "")[0] or mime
            return self.store_file(upload.data, filename=upload.filename, mime_type=mime, kind=kind)
        if reference and reference.startswith(("http://", "https://")):
            # The sandbox is offline: Telegram would fetch the URL, here it cannot.
            raise bad_request("failed to get HTTP URL content")
        if reference:
            known = self.files.get(reference)
            if known is not None:
                if known.kind != kind:
                    raise bad_request("wrong file identifier/HTTP URL specified")
                return known
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {name} in the request")

    async def _send_file(
        self, params: Params, kind: Literal["document", "photo"]
    ) -> dict[str, Any]:
        chat = self._writable_chat(params)
        stored = self._incoming_file(params, kind, kind)
        caption, entities = self._formatted(
            params, "caption", limit=MAX_CAPTION_LENGTH, required=False
        )
        markup = parse_markup(params.json_opt("reply_markup"))
        reply_to = self._reply_target(chat, params)
        message = chat._bot_message(
            document=stored if kind == "document" else None,
            photo=stored if kind == "photo" else None,
            caption=caption,
            caption_entities=entities,
            source=params.str_opt("caption"),
            parse_mode=params.str_opt("parse_mode"),
            reply_to=reply_to,
            **message_fields(markup),
        )
        return message.to_api()

    async def _send_document(self, params: Params) -> dict[str, Any]:
        return await self._send_file(params, "document")

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        return await self._send_file(params, "photo")

    async def _send_chat_action(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        action = params.str_opt("action")
        if not action:
            raise bad_request("action is empty")
        chat.chat_actions.append(action)
        return True

    async def _get_file(self, params: Params) -> dict[str, Any]:
        file_id = params.str_opt("file_id") or ""
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }
