"""The emulated Bot API HTTP server: routing, envelopes and error codes, faults, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import telegram
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.portal.embedded import EmbeddedServer
from bot.sandbox.botapi.bot_methods import BotMethods
from bot.sandbox.botapi.errors import ApiError, bad_request
from bot.sandbox.botapi.message_methods import MessageMethods
from bot.sandbox.botapi.model import ApiCall
from bot.sandbox.botapi.params import Handler, read_params
from bot.sandbox.botapi.webhook import WebhookMethods

_LOGGER = logging.getLogger(__name__)


def _bind_socket(host: str, port: int) -> socket.socket:
    # Protocol IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections;
    # without it every long-poll answer waits ~45 ms for Nagle's algorithm.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None
    remaining: int
    delay: float
    chat_id: int | None = None


class BotApiServer(MessageMethods, BotMethods, WebhookMethods):
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

    When the bot sets a webhook, the server posts the updates to it (with the secret token's
    header) instead of answering getUpdates, which then fails with 409 as on Telegram.

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
        super().__init__(
            token=token, bot_username=bot_username, bot_first_name=bot_first_name, bot_id=bot_id
        )
        self.host = host
        self._requested_port = port
        self.port = 0

        self.calls: list[ApiCall] = []
        self.unsupported_methods: set[str] = set()
        """Real Bot API methods the bot called that this emulator does not implement."""
        self._calls_changed = asyncio.Event()
        self._faults: dict[str, deque[_Fault]] = {}
        self._uvicorn: EmbeddedServer | None = None
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
        self._uvicorn = EmbeddedServer(config)
        self._serve_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise RuntimeError("the Bot API emulator stopped while starting")
            await asyncio.sleep(0.01)
        self._start_delivery()
        _LOGGER.info("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Answer pending long polls, then shut the HTTP server down."""
        if self._serve_task is None or self._uvicorn is None:
            return
        self._stopping = True
        self._wake_pollers()
        await self._stop_delivery()
        self._uvicorn.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(self._serve_task), 5)
        except TimeoutError:
            self._uvicorn.request_exit(force=True)
            await self._serve_task
        self._serve_task = None
        self._uvicorn = None

    async def __aenter__(self) -> BotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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

    def inject_fault(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        description: str | None = None,
        delay: float = 0.0,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with ``status`` (a testing facility:
        the real Telegram decides its faults itself).

        A 429 carries ``parameters.retry_after``; ``delay`` holds the answer back first, which
        is how a slow or hanging server is imitated. With ``chat_id``, only the calls addressed
        to that chat fail (« the next 2 sendMessage to Claire get a 429 »); the others go
        through. Faults queue up in order. A user who blocked the bot for good is
        :meth:`SandboxUser.block`, not a fault.
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
            chat_id=chat_id,
        )
        self._faults.setdefault(method.lower(), deque()).append(fault)

    def clear_faults(self) -> None:
        """Drop every pending injected fault."""
        self._faults.clear()

    # -- HTTP -----------------------------------------------------------------------------

    async def _handle_method(self, request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if ":" not in token:
            return JSONResponse(ApiError(404, "Not Found").payload(), status_code=404)
        if token != self.token:
            return JSONResponse(ApiError(401, "Unauthorized").payload(), status_code=401)
        try:
            params = await read_params(request)
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
            fault = self._take_fault(method, (params.str_opt("chat_id") or "").strip('"'))
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
            return bad_request(f"method {method} is not emulated by the sandbox Bot API server")
        return ApiError(404, "Not Found")

    def _take_fault(self, method: str, chat_id: str) -> _Fault | None:
        """The first fault queued for this call (its method, and its chat if the fault names
        one), counted down; None when the call goes through."""
        queue = self._faults.get(method.lower())
        fault = next(
            (f for f in queue or () if f.chat_id is None or str(f.chat_id) == chat_id), None
        )
        if queue is None or fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.remove(fault)
        return fault

    async def _handle_file(self, request: Request) -> Response:
        token = request.path_params["token"]
        stored = self._files_by_path.get(request.path_params["file_path"])
        if token != self.token or stored is None:
            return JSONResponse(ApiError(404, "Not Found").payload(), status_code=404)
        return Response(stored.data, media_type=stored.mime_type or "application/octet-stream")

    # -- the Bot API methods, by name (implemented by MessageMethods and BotMethods) -------

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
