"""The Bot API emulator, driven by a real python-telegram-bot Application."""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.sandbox.botapi import (
    ApiError,
    BotApiServer,
    SandboxUser,
    ThreadedBotApi,
    parse_formatted_text,
)

pytestmark = [
    pytest.mark.timeout(30),
    # RetryAfter.retry_after announces its move to timedelta on every read.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

Context = ContextTypes.DEFAULT_TYPE


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer(bot_username="educonnect_test_bot") as running:
        yield running


def build_app(server: BotApiServer, *, rate_limiter: AIORateLimiter | None = None) -> Application:
    builder = (
        ApplicationBuilder()
        .token(server.token)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
    )
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()

    async def start(update: Update, context: Context) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        args = " ".join(context.args or [])
        await update.effective_message.reply_text(
            f"Bonjour <b>{html.escape(update.effective_user.first_name)}</b> ({args})",
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton("Importer", callback_data="import")],
                    [InlineKeyboardButton("Aide", url="https://example.org/aide")],
                ]
            ),
        )

    async def pressed(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("C'est parti")
        await query.edit_message_text(f"Import lancé ({query.data})")

    async def document(update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None and message.document is not None
        data = await (await message.document.get_file()).download_as_bytearray()
        await message.reply_text(f"{message.document.file_name}: {len(data)} octets")
        await message.reply_document(
            bytes(data).upper(), filename="copie.csv", caption="Copie <i>majuscule</i>",
            parse_mode=ParseMode.HTML,
        )  # fmt: skip

    async def keyboard(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "Choisissez", reply_markup=ReplyKeyboardMarkup([["Oui", "Non"]])
        )

    async def ask_number(update: Update, context: Context) -> None:
        assert update.effective_message is not None
        button = KeyboardButton("📱 Partager mon numéro", request_contact=True)
        await update.effective_message.reply_text(
            "Votre numéro ?",
            reply_markup=ReplyKeyboardMarkup(
                [[button], ["Plus tard"]], one_time_keyboard=True, resize_keyboard=True
            ),
        )

    async def contact(update: Update, context: Context) -> None:
        message = update.effective_message
        assert message is not None and message.contact is not None
        card = message.contact
        await message.reply_text(
            f"{card.phone_number} {card.first_name} {card.user_id}",
            reply_markup=ReplyKeyboardRemove(),
        )

    async def echo(update: Update, context: Context) -> None:
        assert update.effective_message is not None and update.effective_message.text
        await update.effective_message.reply_text(f"Écho : {update.effective_message.text}")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("clavier", keyboard))
    app.add_handler(CommandHandler("numero", ask_number))
    app.add_handler(MessageHandler(filters.CONTACT, contact))
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.Document.ALL, document))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


@pytest.fixture
async def running_bot(server: BotApiServer) -> AsyncIterator[Application]:
    app = build_app(server)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


@pytest.fixture
def user(server: BotApiServer) -> SandboxUser:
    return server.new_user(first_name="Claire", language_code="fr")


# ---------------------------------------------------------------------------------------------
# With a running bot
# ---------------------------------------------------------------------------------------------


async def test_startup_sequence_and_command_round_trip(
    server: BotApiServer, running_bot: Application, user: SandboxUser
) -> None:
    sent = await user.send_text("/start abc")
    assert sent.entities[0] == {"type": "bot_command", "offset": 0, "length": 6}

    reply = await user.next_message(timeout=5)
    assert reply.text == "Bonjour Claire (abc)"
    assert reply.entities == ({"type": "bold", "offset": 8, "length": 6},)
    assert reply.source == "Bonjour <b>Claire</b> (abc)"
    assert reply.parse_mode == "HTML"
    # PTB quotes the message replied to only in groups.
    assert reply.reply_to_message_id is None
    assert reply.buttons == [[("Importer", "import")], [("Aide", "https://example.org/aide")]]

    methods = [call.method for call in server.calls]
    assert methods[0] == "getMe"
    assert methods.index("deleteWebhook") < methods.index("getUpdates")


async def test_command_addressed_to_the_bot_by_name(
    running_bot: Application, user: SandboxUser
) -> None:
    await user.send_text("/start@educonnect_test_bot x")
    assert (await user.next_message(timeout=5)).text == "Bonjour Claire (x)"


async def test_inline_button_press_is_answered_and_edit_is_seen(
    server: BotApiServer, running_bot: Application, user: SandboxUser
) -> None:
    await user.send_text("/start")
    menu = await user.next_message(timeout=5)

    callback = await user.press(menu, "Importer")
    answer = await user.answer_for(callback, timeout=5)
    assert answer.text == "C'est parti" and not answer.show_alert

    edited = await user.next_edit(timeout=5)
    assert edited.message_id == menu.message_id
    assert edited.text == "Import lancé (import)"
    # Editing without reply_markup removes the keyboard, as on Telegram.
    assert edited.inline_keyboard == ()
    assert edited.edit_date is not None and edited.version == 1
    assert user.message(menu.message_id).text == "Import lancé (import)"
    assert [e.kind for e in user.events] == ["sent", "edited"]

    with pytest.raises(LookupError):
        await user.press(menu, "Importer")


async def test_document_upload_download_and_bot_document(
    server: BotApiServer, running_bot: Application, user: SandboxUser
) -> None:
    content = b"nom;prenom\nMartin;Louise\n"
    await user.send_document(content, filename="eleves.csv", mime_type="text/csv")

    size_reply = await user.next_message(timeout=5)
    assert size_reply.text == f"eleves.csv: {len(content)} octets"

    copy = await user.next_message(timeout=5)
    assert copy.document is not None
    assert copy.document.filename == "copie.csv"
    assert copy.document.data == content.upper()
    assert copy.document.mime_type == "text/csv"
    assert copy.caption == "Copie majuscule"
    assert copy.caption_entities == ({"type": "italic", "offset": 6, "length": 9},)
    assert server.calls_to("getFile")[0].status == 200


async def test_reply_keyboard_then_tap(running_bot: Application, user: SandboxUser) -> None:
    await user.send_text("/clavier")
    await user.next_message(timeout=5)
    assert user.reply_keyboard == (("Oui", "Non"),)
    await user.tap("Oui")
    assert (await user.next_message(timeout=5)).text == "Écho : Oui"


async def test_contact_button_shares_own_number(
    running_bot: Application, server: BotApiServer
) -> None:
    user = server.new_user("Claire", last_name="Martin", phone_number="33612345678")
    await user.send_text("/numero")
    await user.next_message(timeout=5)
    assert user.reply_keyboard == (("📱 Partager mon numéro",), ("Plus tard",))
    assert user.contact_button == "📱 Partager mon numéro"
    assert user.reply_buttons is not None and user.reply_buttons[1][0].request_contact is False
    shared = await user.tap("📱 Partager mon numéro")
    assert shared.text is None
    assert shared.to_api()["contact"] == {
        "phone_number": "33612345678", "first_name": "Claire", "last_name": "Martin",
        "user_id": user.id,
    }  # fmt: skip
    reply = await user.next_message(timeout=5)
    assert reply.text == f"33612345678 Claire {user.id}"
    assert reply.remove_keyboard
    assert user.reply_keyboard is None and user.contact_button is None


async def test_share_contact_of_someone_else_or_typed(
    running_bot: Application, user: SandboxUser
) -> None:
    await user.share_contact("+33 6 12 34 56 78", user_id=424242, first_name="Marie")
    assert (await user.next_message(timeout=5)).text == "+33 6 12 34 56 78 Marie 424242"
    typed = await user.share_contact("0612345678", user_id=None)
    assert typed.contact == {"phone_number": "0612345678", "first_name": "Claire"}
    assert (await user.next_message(timeout=5)).text == "0612345678 Claire None"


async def test_contact_button_needs_a_phone_number(
    running_bot: Application, user: SandboxUser
) -> None:
    await user.send_text("/numero")
    await user.next_message(timeout=5)
    with pytest.raises(LookupError, match="phone_number"):
        await user.tap("📱 Partager mon numéro")
    await user.tap("Plus tard")
    assert (await user.next_message(timeout=5)).text == "Écho : Plus tard"


async def test_rate_limit_is_retried_by_aioratelimiter(
    server: BotApiServer, user: SandboxUser
) -> None:
    app = build_app(server, rate_limiter=AIORateLimiter(max_retries=3))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        server.inject_fault("sendMessage", status=429, retry_after=1, times=1)
        await user.send_text("bonjour")
        reply = await user.next_message(timeout=5)
        await app.updater.stop()
        await app.stop()
    assert reply.text == "Écho : bonjour"
    statuses = [call.status for call in server.calls_to("sendMessage")]
    assert statuses == [429, 200]


async def test_updates_are_neither_lost_nor_duplicated(
    server: BotApiServer, user: SandboxUser
) -> None:
    seen: list[str] = []
    app = build_app(server)

    async def record(update: Update, context: Context) -> None:
        assert update.effective_message is not None and update.effective_message.text
        seen.append(update.effective_message.text)

    app.add_handler(MessageHandler(filters.ALL, record), group=-1)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        for n in range(30):
            await user.send_text(f"m{n}")
        await user.wait_for(lambda m: m.text == "Écho : m29", timeout=5)
        await app.updater.stop()
        await app.stop()
    assert seen == [f"m{n}" for n in range(30)]
    assert server.pending_update_count == 0
    assert server.calls_to("getUpdates")[-1].params["timeout"] == 0


# ---------------------------------------------------------------------------------------------
# Direct Bot calls: validation and errors
# ---------------------------------------------------------------------------------------------


@pytest.fixture
async def bot_app(server: BotApiServer) -> AsyncIterator[Application]:
    app = build_app(server)
    async with app:
        yield app


async def test_malformed_html_is_rejected_like_telegram(
    bot_app: Application, user: SandboxUser
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Can't parse entities: unsupported start tag"):
        await bot_app.bot.send_message(user.id, "Élève <Martin>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Can't find end tag corresponding to start tag"):
        await bot_app.bot.send_message(user.id, "<b>gras", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Unexpected end tag"):
        await bot_app.bot.send_message(user.id, "a</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)must be escaped"):
        await bot_app.bot.send_message(user.id, "Fin.", parse_mode=ParseMode.MARKDOWN_V2)
    ok = await bot_app.bot.send_message(
        user.id, "5 &lt; 6 &amp; <a href='https://x.org'>lien</a>", parse_mode=ParseMode.HTML
    )
    assert ok.text == "5 < 6 & lien"
    assert ok.text_html == '5 &lt; 6 &amp; <a href="https://x.org">lien</a>'


async def test_text_limits_and_empty_text(bot_app: Application, user: SandboxUser) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Message is too long"):
        await bot_app.bot.send_message(user.id, "x" * 4097)
    # The limit applies after entity parsing: markup does not count.
    await bot_app.bot.send_message(user.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot_app.bot.send_message(user.id, "<b> </b>", parse_mode="HTML")


async def test_callback_data_limit(bot_app: Application, user: SandboxUser) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):
        await bot_app.bot.send_message(user.id, "trop long", reply_markup=markup)


async def test_edit_errors(bot_app: Application, user: SandboxUser) -> None:
    bot = bot_app.bot
    sent = await bot.send_message(user.id, "même texte")
    with pytest.raises(BadRequest, match=r"(?i)Message is not modified"):
        await bot.edit_message_text("même texte", chat_id=user.id, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)Message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=9999)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    await bot.edit_message_reply_markup(user.id, sent.message_id, reply_markup=markup)
    assert user.message(sent.message_id).buttons == [[("A", "a")]]
    with pytest.raises(BadRequest, match=r"(?i)Message is not modified"):
        await bot.edit_message_reply_markup(user.id, sent.message_id, reply_markup=markup)


async def test_delete_and_chat_errors(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    bot = bot_app.bot
    sent = await bot.send_message(user.id, "éphémère")
    assert await bot.delete_message(user.id, sent.message_id)
    assert server.deleted == [(user.id, sent.message_id)]
    assert user.message(sent.message_id).deleted
    with pytest.raises(BadRequest, match=r"(?i)Message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)Chat not found"):
        await bot.send_message(123, "personne")
    await user.block()
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(user.id, "coucou")
    assert server.updates[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"


async def test_set_my_commands_per_scope(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    bot = bot_app.bot
    await bot.set_my_commands([BotCommand("start", "Commencer")])
    await bot.set_my_commands(
        [BotCommand("aide", "Aide")], scope=BotCommandScopeAllPrivateChats(), language_code="fr"
    )
    await bot.set_my_commands(
        [BotCommand("import", "Importer")], scope=BotCommandScopeChat(user.id)
    )
    assert server.commands() == [("start", "Commencer")]
    assert server.commands(BotCommandScopeDefault().to_dict()) == [("start", "Commencer")]
    assert server.commands("all_private_chats", "fr") == [("aide", "Aide")]
    assert server.commands("all_private_chats") == []
    assert server.commands({"type": "chat", "chat_id": user.id}) == [("import", "Importer")]
    fetched = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="fr")
    assert [c.command for c in fetched] == ["aide"]
    with pytest.raises(BadRequest, match=r"(?i)Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "majuscule interdite")])


async def test_reply_parameters_and_send_photo(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    question = await user.send_text("Une question ?")
    answer = await bot_app.bot.send_message(
        user.id, "Réponse", reply_parameters=ReplyParameters(question.message_id)
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "Une question ?"
    with pytest.raises(BadRequest, match=r"(?i)Message to be replied not found"):
        await bot_app.bot.send_message(user.id, "x", reply_parameters=ReplyParameters(999))

    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00"
    photo = await bot_app.bot.send_photo(user.id, png, caption="plan")
    assert (photo.photo[-1].width, photo.photo[-1].height) == (2, 3)
    again = await bot_app.bot.send_photo(user.id, photo.photo[-1].file_id)
    assert again.photo[-1].file_unique_id == photo.photo[-1].file_unique_id
    file = await bot_app.bot.get_file(photo.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == png


async def test_misc_methods_called_by_bots(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    bot = bot_app.bot
    assert await bot.send_chat_action(user.id, "typing")
    assert user.chat_actions == ["typing"]
    chat = await bot.get_chat(user.id)
    assert chat.first_name == "Claire" and chat.type == "private"
    assert await bot.set_chat_menu_button()
    assert await bot.set_my_description("Assistant EduConnect", language_code="fr")
    assert (await bot.get_my_description("fr")).description == "Assistant EduConnect"
    info = await bot.get_webhook_info()
    assert info.url == ""
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("inconnu")


async def test_fault_injection_statuses_and_unknown_method(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    server.inject_fault("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot_app.bot.send_message(user.id, "x")
    assert caught.value.retry_after == 7
    server.inject_fault("getChat", status=409, times=2)
    for _ in range(2):
        with pytest.raises(Conflict):
            await bot_app.bot.get_chat(user.id)
    await bot_app.bot.get_chat(user.id)

    async with httpx.AsyncClient() as client:
        unknown = await client.post(f"{server.base_url}{server.token}/noSuchMethod")
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        wrong = await client.post(f"{server.base_url}123:wrong/getMe")
        assert wrong.status_code == 401


async def test_wrong_token_is_invalid_token(server: BotApiServer) -> None:
    request = HTTPXRequest()
    try:
        with pytest.raises(InvalidToken):
            await Bot("123:nope", base_url=server.base_url, request=request).get_me()
    finally:
        await request.shutdown()


async def test_concurrent_get_updates_conflict(server: BotApiServer) -> None:
    async with httpx.AsyncClient(base_url=f"{server.base_url}{server.token}") as client:
        first = asyncio.create_task(client.post("/getUpdates", data={"timeout": "5"}))
        await server.wait_for_call("getUpdates", timeout=2)
        second = await client.post("/getUpdates", data={"timeout": "0"})
        assert second.json() == {"ok": True, "result": []}
        older = await first
        assert older.status_code == 409
    assert "terminated by other getUpdates request" in older.json()["description"]


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    server: BotApiServer, user: SandboxUser
) -> None:
    async with httpx.AsyncClient(base_url=f"{server.base_url}{server.token}") as client:
        poll = asyncio.create_task(client.post("/getUpdates", data={"timeout": "10"}))
        await server.wait_for_call("getUpdates", timeout=2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await user.send_text("hop")
        result = (await poll).json()["result"]
        assert loop.time() - started < 1
        assert result[0]["message"]["text"] == "hop"
        update_id = result[0]["update_id"]
        # Not confirmed yet: asking again without offset gives it back.
        again = (await client.post("/getUpdates", data={"timeout": "0"})).json()["result"]
        assert [u["update_id"] for u in again] == [update_id]
        confirmed = await client.post("/getUpdates", data={"offset": str(update_id + 1)})
        assert confirmed.json()["result"] == []


# ---------------------------------------------------------------------------------------------
# Text parsing on its own
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<b", "Unclosed start tag at byte offset 2"),
    ],
)
def test_html_errors_match_telegram(source: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_formatted_text(source, "HTML")
    assert caught.value.description == f"Bad Request: can't parse entities: {message}"


def test_html_entities_offsets_are_utf16_and_text_is_trimmed() -> None:
    text, entities = parse_formatted_text(
        '\n 😀 <b>été</b> <pre><code class="language-python">x</code></pre>'
        "<span class='tg-spoiler'>s</span> ",
        "HTML",
    )
    assert text == "😀 été xs"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "pre", "offset": 7, "length": 1, "language": "python"},
        {"type": "spoiler", "offset": 8, "length": 1},
    ]


def test_markdown_v2() -> None:
    text, entities = parse_formatted_text(r"*gras* \. [lien](https://x.org/a\)b)", "MarkdownV2")
    assert text == "gras . lien"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "text_link", "offset": 7, "length": 4, "url": "https://x.org/a)b"},
    ]
    with pytest.raises(ApiError, match="Can't find end of Italic entity at byte offset 0"):
        parse_formatted_text("_ouvert", "MarkdownV2")


# ---------------------------------------------------------------------------------------------
# Threaded server, as end-to-end tests drive a bot running in another process
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def threaded() -> Iterator[ThreadedBotApi]:
    with ThreadedBotApi(bot_username="educonnect_test_bot") as api:
        yield api


def run_bot_in_thread(api: ThreadedBotApi) -> Callable[[], None]:
    """The bot on a loop of its own, standing in for the separate bot process."""
    loop = asyncio.new_event_loop()
    stopped = threading.Event()
    app_box: dict[str, Any] = {}

    async def main() -> None:
        app = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )

        async def echo(update: Update, context: Context) -> None:
            assert update.effective_message is not None
            await update.effective_message.reply_text(f"Écho : {update.effective_message.text}")

        app.add_handler(MessageHandler(filters.TEXT, echo))
        app_box["app"] = app
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            while not stopped.is_set():
                await asyncio.sleep(0.05)
            await app.updater.stop()
            await app.stop()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(10)
        loop.close()

    return stop


def test_threaded_api_with_blocking_user(threaded: ThreadedBotApi) -> None:
    stop_bot = run_bot_in_thread(threaded)
    try:
        threaded.wait_until_polling(timeout=5)
        claire = threaded.new_user("Claire")
        claire.send_text("salut")
        assert claire.next_message(timeout=5).text == "Écho : salut"
        with pytest.raises(TimeoutError):
            claire.next_message(timeout=0.2)
        assert [m.from_bot for m in claire.history] == [False, True]
        assert threaded.calls("sendMessage")[0].params["chat_id"] == claire.id
        shared = claire.share_contact("33612345678")
        assert shared.contact == {
            "phone_number": "33612345678", "first_name": "Claire", "user_id": claire.id
        }  # fmt: skip
        assert claire.contact_button is None
    finally:
        stop_bot()
    assert threaded.env()["TELEGRAM_BASE_URL"] == threaded.base_url


async def test_unemulated_method_is_named_and_new_user_must_start_first(
    server: BotApiServer, bot_app: Application, user: SandboxUser
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)copyMessage is not emulated"):
        await bot_app.bot.copy_message(user.id, user.id, 1)
    assert server.unsupported_methods == {"copyMessage"}

    stranger = server.new_user("Paul", started=False)
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await bot_app.bot.send_message(stranger.id, "Bonjour")
    await stranger.send_text("/start")
    await bot_app.bot.send_message(stranger.id, "Bonjour")


async def test_wait_for_sees_replies_that_came_before_the_call(
    bot_app: Application, user: SandboxUser
) -> None:
    await user.send_text("question")
    await bot_app.bot.send_message(user.id, "un")
    sent = await bot_app.bot.send_message(user.id, "deux")
    await bot_app.bot.edit_message_text(
        "deux (modifié)", chat_id=user.id, message_id=sent.message_id
    )
    found = await user.wait_for(lambda m: "modifié" in m.content, timeout=1)
    assert found.message_id == sent.message_id
    assert [e.kind for e in user.drain()] == ["sent", "sent", "edited"]
    await user.expect_no_message(within=0.05)
    with pytest.raises(TimeoutError):
        await user.wait_for(lambda m: True, timeout=0.05)
