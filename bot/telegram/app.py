"""The Telegram front end: python-telegram-bot v22, long polling. It only formats and delivers.

Every answer comes from StorybotService (kept in bot_data, which is not persisted); per-chat state
(the conversation, answers shown with their buttons) lives in chat_data and per-user state (the rate
limit window) in user_data, both persisted to the data directory so a restart keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import pickle
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PersistenceInput,
    PicklePersistence,
    TypeHandler,
    filters,
)

from bot.answering.answer import Answer
from bot.answering.conversation import Session
from bot.config import Settings
from bot.errors import ConfigError, StorybotError
from bot.examples import example_questions
from bot.feedback import FeedbackLog
from bot.service import StorybotService
from bot.telegram.format import TELEGRAM_MESSAGE_LIMIT, escape, render_answer, render_context, split_html

log = logging.getLogger(__name__)

STATE_FILE = "telegram_state.pickle"
ANSWERS_KEPT = 200  # answers per chat whose buttons still work
SEND_ATTEMPTS = 4
COMMANDS = [
    BotCommand("start", "what this bot is, with example questions"),
    BotCommand("help", "what the bot can and cannot do"),
    BotCommand("sources", "the articles it answers from"),
    BotCommand("ask", "ask a question (in groups: /ask your question)"),
    BotCommand("reset", "forget this conversation"),
]
HELP_TEXT = (
    "<b>What I do</b>\n"
    "I answer questions about the article(s) below using only their own words. Every answer is a "
    "sentence from the article, with numbered quotes and the paragraph they come from. When the "
    "article doesn't say, I tell you so and show the closest passage.\n\n"
    "<b>What I don't do</b>\n"
    "I don't know anything beyond these articles, I don't browse the web and I never make up a quote.\n\n"
    "<b>How</b>\n"
    "• In a private chat, just type your question.\n"
    "• In a group, use /ask <i>question</i>, mention me, or reply to one of my messages.\n"
    '• Follow-up questions ("What did he say then?") use the last few questions; /reset forgets them.\n'
    "• Tap <i>Show context</i> under an answer for the surrounding paragraphs, 👍/👎 to rate it.\n"
    "• /sources lists the articles."
)


class MessageRateLimiter(AIORateLimiter):
    """PTB's limiter for Telegram's message limits (30/s overall, 20/min per group), minus chat actions.

    Telegram's limits are on messages; a "typing" action is not one, and counting it would halve the
    answers a busy bot can send per second.
    """

    async def process_request(
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Any,
    ) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


def _service(context: ContextTypes.DEFAULT_TYPE) -> StorybotService:
    service: StorybotService = context.bot_data["service"]
    return service


def _settings(context: ContextTypes.DEFAULT_TYPE) -> Settings:
    return _service(context).settings


def _session(context: ContextTypes.DEFAULT_TYPE) -> Session:
    chat_data = context.chat_data if context.chat_data is not None else {}
    session = chat_data.get("session")
    if not isinstance(session, Session):
        session = Session(max_turns=_settings(context).history_turns)
        chat_data["session"] = session
    return session


async def allow_list_gate(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every update from a chat outside STORYBOT_ALLOWED_CHAT_IDS, with one polite line."""
    allowed = _settings(context).allowed_chat_ids
    if allowed is None or not isinstance(update, Update):
        return
    chat = update.effective_chat
    if chat is not None and chat.id in allowed:
        return
    if update.callback_query:
        await update.callback_query.answer("This bot is not available in this chat.")
    elif update.effective_message and (
        chat is None or chat.type == ChatType.PRIVATE or _addresses_bot(update, context)
    ):
        await update.effective_message.reply_text("Sorry, this bot is not available in this chat.")
    raise ApplicationHandlerStop


def _addresses_bot(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A group message meant for the bot: a command, a mention or a reply to it."""
    message = update.effective_message
    if message is None or not message.text:
        return False
    return message.text.startswith("/") or _replies_to_bot(message, context) or bool(_mentions_of_bot(message, context))


def _replies_to_bot(message: Message, context: ContextTypes.DEFAULT_TYPE) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == context.bot.id)


def _mentions_of_bot(message: Message, context: ContextTypes.DEFAULT_TYPE) -> list[str]:
    """The "@storybot" mentions in a message, as written."""
    if not context.bot.username:
        return []
    mention = f"@{context.bot.username}".lower()
    return [text for text in message.parse_entities([MessageEntity.MENTION]).values() if text.lower() == mention]


async def _send_html(
    message: Message, text: str, markup: InlineKeyboardMarkup | None = None, quote: bool = True
) -> list[Message]:
    """Reply with HTML split to Telegram's limit; the buttons go under the last part. Network errors retry."""
    parts = split_html(text, TELEGRAM_MESSAGE_LIMIT)
    sent = []
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        sent.append(
            await _with_retries(
                lambda part=part, last=last: message.reply_html(
                    part,
                    do_quote=quote,
                    reply_markup=markup if last else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
        )
    return sent


async def _with_retries(call: Any) -> Any:
    """Run a Bot API call, retrying network errors and flood waits; other errors propagate."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == SEND_ATTEMPTS:
                raise
            delay = error.retry_after
            seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
            log.warning("Telegram asked us to wait %.0fs (flood control); retrying", seconds)
            await asyncio.sleep(seconds)
        except NetworkError as error:
            if isinstance(error, BadRequest) or attempt == SEND_ATTEMPTS:
                raise
            log.warning("network error talking to Telegram (%s); retry %d", error, attempt)
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _answer_markup(expanded: bool, has_context: bool) -> InlineKeyboardMarkup:
    rows = []
    if has_context:
        toggle = ("↩ Short answer", "short") if expanded else ("📖 Show context", "context")
        rows.append([InlineKeyboardButton(toggle[0], callback_data=toggle[1])])
    rows.append([InlineKeyboardButton("👍", callback_data="up"), InlineKeyboardButton("👎", callback_data="down")])
    return InlineKeyboardMarkup(rows)


def _context_html(service: StorybotService, answer: Answer) -> str | None:
    """The paragraphs around the first citation: the one before, its own and the one after."""
    if not answer.citations:
        return None
    first = answer.citations[0]
    paragraphs = service.surrounding_paragraphs(first.doc, first.paragraph)
    if not paragraphs:
        return None
    text = render_context(answer, paragraphs, first.title)
    # The wide form replaces the message in place, so it must fit one message.
    return split_html(text, TELEGRAM_MESSAGE_LIMIT - 2)[0] + (" …" if len(text) > TELEGRAM_MESSAGE_LIMIT else "")


async def answer_question(
    update: Update, context: ContextTypes.DEFAULT_TYPE, question: str, from_button: bool = False
) -> None:
    """The one path every question takes: checks, typing, the service, the cited reply.

    A question typed by the user is quoted by the reply; one asked by a button is written out on top.
    """
    message = update.effective_message
    user = update.effective_user
    if message is None:
        return
    settings = _settings(context)
    question = question.strip()
    if not question:
        await message.reply_text("Ask me a question about the article, e.g. /ask What did Biden warn?")
        return
    if len(question) > settings.max_question_chars:
        await message.reply_text(
            f"That question is {len(question)} characters long; please keep it under "
            f"{settings.max_question_chars} and ask one thing at a time."
        )
        return
    if user is not None and context.user_data is not None:
        wait = _rate_limited(context.user_data, settings.rate_limit_per_minute)
        if wait:
            await message.reply_text(
                f"You're asking faster than I can keep up with ({settings.rate_limit_per_minute} questions a "
                f"minute). Please try again in {wait} seconds."
            )
            return

    await _with_retries(lambda: message.chat.send_action(ChatAction.TYPING))
    service = _service(context)
    answer = await service.ask_async(question, _session(context))
    short = render_answer(answer)
    if from_button:
        short = f"❓ <i>{escape(question)}</i>\n\n{short}"
    wide = _context_html(service, answer)
    sent = await _send_html(message, short, _answer_markup(False, wide is not None), quote=not from_button)
    _remember_answer(context, sent[-1].message_id, answer, short, wide)


def _rate_limited(user_data: dict[str, Any], per_minute: int) -> int:
    """Seconds to wait when the user has asked `per_minute` questions in the last minute, else 0."""
    now = time.time()  # wall clock: the window survives a restart through persistence
    recent = [t for t in user_data.get("asked_at", []) if now - t < 60]
    if len(recent) >= per_minute:
        user_data["asked_at"] = recent
        return max(1, int(60 - (now - recent[0])) + 1)
    recent.append(now)
    user_data["asked_at"] = recent
    return 0


def _remember_answer(
    context: ContextTypes.DEFAULT_TYPE, message_id: int, answer: Answer, short: str, wide: str | None
) -> None:
    if context.chat_data is None:
        return
    answers: dict[int, dict[str, Any]] = context.chat_data.setdefault("answers", {})
    answers[message_id] = {"short": short, "wide": wide, "answer": answer.to_json()}
    for old in sorted(answers)[:-ANSWERS_KEPT]:
        del answers[old]


# -- handlers ---------------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with the corpus and three example questions as buttons."""
    message = update.effective_message
    if message is None:
        return
    service = _service(context)
    examples: list[str] = context.bot_data.get("examples", [])
    lines = ["👋 I answer questions about this news, quoting the article itself:", ""]
    lines += [_describe(info.title, info.outlet, info.date) for info in service.documents]
    lines += ["", "Ask me anything about it, or tap an example:" if examples else "Ask me anything about it."]
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(q, callback_data=f"ask:{i}")] for i, q in enumerate(examples)])
    await message.reply_html("\n".join(lines), reply_markup=markup if examples else None)


def _describe(title: str, outlet: str | None, date: str | None) -> str:
    details = ", ".join(escape(part) for part in (outlet, date) if part)
    return f"📰 <b>{escape(title)}</b>" + (f" ({details})" if details else "")


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say what the bot can and cannot do."""
    if update.effective_message:
        await update.effective_message.reply_html(HELP_TEXT)


async def sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the documents in the corpus."""
    if update.effective_message is None:
        return
    service = _service(context)
    lines = ["<b>Sources</b>"]
    for info in service.documents:
        lines.append(_describe(info.title, info.outlet, info.date) + f" — <code>{escape(info.name)}</code>")
    await update.effective_message.reply_html("\n".join(lines))


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget the conversation, so the next question stands alone."""
    _session(context).reset()
    if update.effective_message:
        await update.effective_message.reply_text("Done: I've forgotten our conversation.")


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask QUESTION, in private chats and groups."""
    await answer_question(update, context, " ".join(context.args or []))


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a question."""
    if update.effective_message and update.effective_message.text:
        await answer_question(update, context, update.effective_message.text)


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups, answer messages that mention the bot or reply to it; ignore the rest."""
    message = update.effective_message
    if message is None or not message.text:
        return
    mentions = _mentions_of_bot(message, context)
    if not (mentions or _replies_to_bot(message, context)):
        return
    question = message.text
    for text in mentions:
        question = question.replace(text, " ")
    await answer_question(update, context, " ".join(question.split()))


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice...: a one-line hint."""
    if update.effective_message:
        await update.effective_message.reply_text("I can only read text: please type your question.")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Inline buttons: wider context / short form, feedback, and the /start examples."""
    query = update.callback_query
    if query is None:
        return
    data = query.data or ""
    message = query.message if isinstance(query.message, Message) else None
    if data.startswith("ask:"):
        await query.answer()
        examples: list[str] = context.bot_data.get("examples", [])
        index = int(data[4:]) if data[4:].isdigit() else -1
        if message is not None and 0 <= index < len(examples):
            await answer_question(update, context, examples[index], from_button=True)
        return
    stored = None
    if message is not None and context.chat_data is not None:
        stored = context.chat_data.get("answers", {}).get(message.message_id)
    if stored is None:
        await query.answer("That answer is too old for this button; please ask again.", show_alert=True)
        return
    if data in {"context", "short"}:
        expanded = data == "context"
        text = stored["wide"] if expanded else stored["short"]
        await query.answer()
        if message is not None and text:
            try:
                await message.edit_text(
                    text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=_answer_markup(expanded, stored["wide"] is not None),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except BadRequest as error:
                if "not modified" not in str(error).lower():
                    raise
        return
    if data in {"up", "down"}:
        chat = update.effective_chat
        feedback: FeedbackLog = context.bot_data["feedback"]
        await asyncio.to_thread(
            feedback.record, stored["answer"], data == "up", None, "telegram", chat.id if chat else None
        )
        await query.answer("Thanks for the feedback!")
        return
    await query.answer()


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error first (so we see it even if replying fails), then tell the user."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message:
        try:
            await update.effective_message.reply_text(
                "Sorry, something went wrong while answering that. Please try again in a moment."
            )
        except TelegramError:
            log.warning("could not tell the user about the error", exc_info=True)


async def post_init(application: Application) -> None:
    """Register the commands, work out the example questions once and start watching the corpus."""
    await application.bot.set_my_commands(COMMANDS)
    service: StorybotService = application.bot_data["service"]
    application.bot_data["examples"] = await asyncio.to_thread(example_questions, service)
    if service.settings.corpus_check_seconds > 0:
        # A plain task, not application.create_task: the Application would wait for it on stop.
        application.bot_data["corpus_watcher"] = asyncio.create_task(watch_corpus(application, service))


async def post_stop(application: Application) -> None:
    """Stop watching the corpus."""
    watcher = application.bot_data.pop("corpus_watcher", None)
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def watch_corpus(application: Application, service: StorybotService) -> None:
    """While the bot runs, rebuild when corpus files change, so answers never come from a stale index."""
    while True:
        await asyncio.sleep(service.settings.corpus_check_seconds)
        try:
            if await asyncio.to_thread(service.refresh_if_stale):
                application.bot_data["examples"] = await asyncio.to_thread(example_questions, service)
        except StorybotError as error:
            log.error("could not rebuild the index, still answering from the old one: %s", error)
        except Exception:  # a bug must not stop the watching, nor the bot
            log.exception("unexpected error while checking the corpus; still answering from the old index")


def set_aside_unreadable_state(path: Path) -> Path | None:
    """Move a chat-state file that cannot be read (damaged, or written by an older storybot) aside.

    The bot then starts with fresh chat state instead of not starting at all; nothing is deleted.
    """
    if not path.exists():
        return None
    try:
        with open(path, "rb") as file:
            pickle.load(file)  # our own file in our own data directory
        return None
    except Exception as error:  # any unpickling failure: truncation, a class that moved, garbage
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        log.warning("chat state %s could not be read (%s); moved it to %s and started afresh", path, error, aside)
        return aside


def build_application(settings: Settings, service: StorybotService, flood_limits: bool = True) -> Application:
    """The Application with every handler, persistence under the data dir and flood-limit retries.

    `flood_limits=False` drops the pacing to Telegram's message limits (for measuring the bot alone).
    """
    if settings.telegram_bot_token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    set_aside_unreadable_state(settings.data_dir / STATE_FILE)
    persistence = PicklePersistence(
        settings.data_dir / STATE_FILE,
        store_data=PersistenceInput(bot_data=False, callback_data=False),
        update_interval=5,
    )
    builder = ApplicationBuilder()
    if flood_limits:
        builder = builder.rate_limiter(MessageRateLimiter(max_retries=3))  # type: ignore[arg-type]
    application = (
        builder.token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_api_url.replace("/bot", "/file/bot"))
        .persistence(persistence)
        .concurrent_updates(True)
        .post_init(post_init)
        .post_stop(post_stop)
        .build()
    )
    application.bot_data["service"] = service
    application.bot_data["feedback"] = FeedbackLog(settings.data_dir)

    only_messages = filters.UpdateType.MESSAGE
    application.add_handler(TypeHandler(Update, allow_list_gate), group=-1)
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("sources", sources))
    application.add_handler(CommandHandler("reset", reset))
    application.add_handler(CommandHandler("ask", ask_command))
    application.add_handler(
        MessageHandler(only_messages & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, private_text)
    )
    application.add_handler(
        MessageHandler(only_messages & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND, group_text)
    )
    application.add_handler(
        MessageHandler(only_messages & filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.COMMAND, not_text)
    )
    application.add_handler(CallbackQueryHandler(button))
    application.add_error_handler(error_handler)
    return application


@contextlib.asynccontextmanager
async def polling(application: Application, poll_timeout: int = 1) -> AsyncIterator[Application]:
    """Run long polling inside a running event loop (tests, the load benchmark), and stop it cleanly."""
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
        await application.shutdown()


async def check_token(settings: Settings, attempts: int = 4) -> str:
    """Ask the Bot API who we are: a wrong token is a ConfigError, an unreachable server is retried."""
    from telegram import Bot

    assert settings.telegram_bot_token is not None
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=settings.telegram_api_url)
    for attempt in range(1, attempts + 1):
        try:
            async with bot:
                return bot.username
        except InvalidToken:
            raise ConfigError(
                "Telegram rejected TELEGRAM_BOT_TOKEN (invalid or revoked): copy it again from @BotFather"
            ) from None
        except NetworkError as error:
            if attempt == attempts:
                raise ConfigError(
                    f"cannot reach the Telegram Bot API at {_safe_url(settings.telegram_api_url)} ({error})"
                ) from None
            log.warning("cannot reach the Bot API yet (%s); retrying", error)
            await asyncio.sleep(2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _safe_url(url: str) -> str:
    return html.escape(url.split("?")[0])


def run_polling(settings: Settings) -> int:
    """`storybot telegram`: check the token, load the service, then poll until stopped."""
    if settings.telegram_bot_token is None:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in .env")
    username = asyncio.run(check_token(settings))
    service = StorybotService.load(settings)
    application = build_application(settings, service)
    log.warning("storybot is running as @%s; press Ctrl-C to stop", username)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0
