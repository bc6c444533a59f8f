"""Blocking facade over a :class:`BotApiServer` run on its own loop in a daemon thread (e2e)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

from bot.sandbox.botapi.model import (
    ApiCall,
    BotIdentity,
    CallbackAnswer,
    CallbackRef,
    ChatEvent,
    ChatMessage,
    EventKind,
    OwnId,
    ReplyButton,
    StoredFile,
)
from bot.sandbox.botapi.server import BotApiServer
from bot.sandbox.botapi.users import SandboxUser
from bot.sandbox.botapi.webhook import WebhookDelivery

_T = TypeVar("_T")


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

    @property
    def webhook_url(self) -> str:
        """The URL the bot set with setWebhook ("" when it polls)."""
        return self.call(lambda: self.server.webhook_url)

    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every POST of an update to the bot's webhook, oldest first."""
        return self.call(lambda: list(self.server.webhook_deliveries))

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

    def share_contact(
        self,
        phone_number: str,
        *,
        user_id: int | OwnId | None = OwnId.OWN,
        first_name: str | None = None,
    ) -> ChatMessage:
        """See :meth:`SandboxUser.share_contact`."""
        coro = self.user.share_contact(phone_number, user_id=user_id, first_name=first_name)
        return self.api.run(coro, 10)

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
    def reply_buttons(self) -> tuple[tuple[ReplyButton, ...], ...] | None:
        """See :attr:`SandboxUser.reply_buttons`."""
        return self.api.call(lambda: self.user.reply_buttons)

    @property
    def contact_button(self) -> str | None:
        """See :attr:`SandboxUser.contact_button`."""
        return self.api.call(lambda: self.user.contact_button)

    @property
    def chat_actions(self) -> list[str]:
        """Chat actions (``typing``, ``upload_document``…) the bot sent here."""
        return self.api.call(lambda: list(self.user.chat_actions))
