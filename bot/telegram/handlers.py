"""The Telegram handlers: one small async function per kind of update, in python-telegram-bot's style.

Every answer comes from the StorybotService in bot_data (not persisted); chat_data and user_data hold
plain data only (see state.py), so the JSON persistence can store them.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.answering.answer import Answer
from bot.config import Settings
from bot.feedback import FeedbackLog
from bot.indexing.index import DocumentInfo
from bot.service import StorybotService
from bot.telegram.delivery import edit_html, edit_markup, reply_text, send_html, with_retries
from bot.telegram.format import TELEGRAM_MESSAGE_LIMIT, escape, render_answer, render_context, split_html
from bot.telegram.inline import (
    INLINE_CACHE_SECONDS,
    INLINE_PAUSE_SECONDS,
    InlineCache,
    cache_key,
    read_inline_query,
    result_article,
)
from bot.telegram.state import (
    load_session,
    record_vote,
    remember_answer,
    save_session,
    stored_answer,
    take_turn,
)

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("start", "what this bot is, with example questions"),
    BotCommand("help", "what the bot can and cannot do"),
    BotCommand("sources", "the articles it answers from"),
    BotCommand("ask", "ask a question (in groups: /ask your question)"),
    BotCommand("reset", "forget this conversation"),
]
HELP_TEXT = (
    "<b>What I do</b>\n"
    "I answer questions about the articles below using only their own words. Every answer is a "
    "sentence from an article, with short numbered quotes and the paragraph they come from. When the "
    "articles don't say, I tell you so and show the closest passage.\n\n"
    "<b>What I don't do</b>\n"
    "I don't know anything beyond these articles, I don't browse the web and I never make up a quote.\n\n"
    "<b>How</b>\n"
    "• In a private chat, just type your question.\n"
    "• In a group, use /ask <i>question</i>, mention me, or reply to one of my messages.\n"
    '• Follow-up questions ("What did he say then?") use the last few questions; /reset forgets them.\n'
    "• Tap <i>Show context</i> under an answer for the surrounding paragraphs, 👍/👎 to rate it.\n"
    "• /sources lists the articles with their files."
)
VOTES = {"up": "👍", "down": "👎"}


def _service(context: ContextTypes.DEFAULT_TYPE) -> StorybotService:
    service: StorybotService = context.bot_data["service"]
    return service


def _settings(context: ContextTypes.DEFAULT_TYPE) -> Settings:
    return _service(context).settings


# -- who the message is for ---------------------------------------------------------------------------


async def allow_list_gate(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every update from a chat outside STORYBOT_ALLOWED_CHAT_IDS, with one polite line."""
    allowed = _settings(context).allowed_chat_ids
    if allowed is None or not isinstance(update, Update):
        return
    if update.inline_query:  # no chat yet: the user must be on the list (a user's id is their private chat's)
        if update.inline_query.from_user.id in allowed:
            return
        await _answer_inline(update.inline_query, [])
        raise ApplicationHandlerStop
    chat = update.effective_chat
    if chat is not None and chat.id in allowed:
        return
    if update.callback_query:
        await update.callback_query.answer("This bot is not available in this chat.")
    elif update.effective_message and (
        chat is None or chat.type == ChatType.PRIVATE or _addresses_bot(update, context)
    ):
        await reply_text(update.effective_message, "Sorry, this bot is not available in this chat.")
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


# -- answering ----------------------------------------------------------------------------------------


def answer_markup(expanded: bool, has_context: bool, vote: str | None = None) -> InlineKeyboardMarkup:
    """Show context / short answer, then 👍 👎 with a ✓ on the vote already given."""
    rows = []
    if has_context:
        toggle = ("↩ Short answer", "short") if expanded else ("📖 Show context", "context")
        rows.append([InlineKeyboardButton(toggle[0], callback_data=toggle[1])])
    rows.append(
        [InlineKeyboardButton(icon + (" ✓" if vote == key else ""), callback_data=key) for key, icon in VOTES.items()]
    )
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
    """The one path every question takes: checks, the user's turn, typing, the service, the cited reply.

    A question typed by the user is quoted by the reply; one asked by a button is written out on top.
    """
    message = update.effective_message
    if message is None:
        return
    settings = _settings(context)
    service = _service(context)
    question = question.strip()
    if not question:
        await reply_text(message, "Ask me a question about the article, e.g. /ask What did Biden warn?")
        return
    if question.lower() == "help":  # what the not-a-question reply tells people to type
        await help_command(update, context)
        return
    # Before the user's turn is taken: input that is no question costs no token and no answer.
    problem = await asyncio.to_thread(service.check, question)
    if problem is not None:
        await reply_text(message, problem)
        return
    if update.effective_user is not None and context.user_data is not None:
        turn = take_turn(context.user_data, settings.rate_limit_per_minute, settings.rate_limit_burst)
        if not turn.admitted:
            await reply_text(
                message,
                f"You're asking faster than I can keep up with ({settings.rate_limit_per_minute} questions a "
                f"minute after the first {settings.rate_limit_burst}). Please try again in {turn.wait:.0f} seconds.",
            )
            return
        if turn.wait > 0:  # over the rate but within the queue: this question waits for its turn
            await with_retries(lambda: message.chat.send_action(ChatAction.TYPING))
            await asyncio.sleep(turn.wait)

    await with_retries(lambda: message.chat.send_action(ChatAction.TYPING))
    chat_data = context.chat_data if context.chat_data is not None else {}
    session = load_session(chat_data, settings.history_turns)
    answer = await service.ask_async(question, session)
    save_session(chat_data, session)
    short = render_answer(answer)
    if from_button:
        short = f"❓ <i>{escape(question)}</i>\n\n{short}"
    wide = _context_html(service, answer)
    sent = await send_html(message, short, answer_markup(False, wide is not None), quote=not from_button)
    remember_answer(chat_data, sent[-1].message_id, {"short": short, "wide": wide, "answer": answer.to_json()})


# -- commands -----------------------------------------------------------------------------------------


def _describe(info: DocumentInfo) -> str:
    details = ", ".join(escape(part) for part in (info.outlet, info.date) if part)
    return f"📰 <b>{escape(info.title)}</b>" + (f" ({details})" if details else "")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with the corpus and three example questions as buttons."""
    message = update.effective_message
    if message is None:
        return
    examples: list[str] = context.bot_data.get("examples", [])
    lines = ["👋 I answer questions about this news, quoting the article itself:", ""]
    lines += [_describe(info) for info in _service(context).documents]
    lines += ["", "Ask me anything about it, or tap an example:" if examples else "Ask me anything about it."]
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(q, callback_data=f"ask:{i}")] for i, q in enumerate(examples)])
    await send_html(message, "\n".join(lines), markup if examples else None, quote=False)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say what the bot can and cannot do, and list the articles."""
    if update.effective_message:
        articles = "\n".join(_describe(info) for info in _service(context).documents)
        await send_html(update.effective_message, f"{HELP_TEXT}\n\n<b>The articles</b>\n{articles}", quote=False)


async def sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the documents in the corpus."""
    if update.effective_message is None:
        return
    lines = ["<b>Sources</b>"]
    lines += [_describe(info) + f" — <code>{escape(info.name)}</code>" for info in _service(context).documents]
    await send_html(update.effective_message, "\n".join(lines), quote=False)


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget the conversation, so the next question stands alone."""
    if context.chat_data is not None:
        context.chat_data.pop("turns", None)
    if update.effective_message:
        await reply_text(update.effective_message, "Done: I've forgotten our conversation.")


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask QUESTION, in private chats and groups."""
    await answer_question(update, context, " ".join(context.args or []))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have: a one-line hint (in groups only when addressed to this bot)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command, _, addressee = message.text.split()[0].partition("@")
    to_us = bool(context.bot.username) and addressee.lower() == (context.bot.username or "").lower()
    if message.chat.type != ChatType.PRIVATE and not to_us:
        return  # "/foo" in a group may be meant for another bot
    await reply_text(message, f"I don't know {command}. Type a question, or /help for what I can do.")


# -- messages -----------------------------------------------------------------------------------------


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
        await reply_text(update.effective_message, "I can only read text: please type your question.")


# -- inline mode: "@bot question" in any chat ------------------------------------------------------


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer `@bot [key:] question` with cited results to share; ignore text that is no question yet."""
    query = update.inline_query
    if query is None:
        return
    # Queries come per keystroke; only the user's newest is answered. Noted before the first await, so
    # in the order the queries came.
    latest: dict[int, str] = context.bot_data.setdefault("inline_latest", {})
    latest[query.from_user.id] = query.id
    service, settings = _service(context), _settings(context)
    asked = read_inline_query(query.query)
    if not asked.question or await asyncio.to_thread(service.check, asked.question) is not None:
        await _answer_inline(query, [], personal=False)
        return
    cache: InlineCache = context.bot_data["inline_cache"]
    key = cache_key(asked)
    cached = cache.get(key)
    if cached is not None:  # re-typed or asked by someone else: no model run, no rate-limit token
        await _answer_inline(query, cached, personal=settings.allowed_chat_ids is not None)
        return
    # Wait for typing to pause: a timer by nature, as no event says "the next keystroke never came".
    await asyncio.sleep(INLINE_PAUSE_SECONDS)
    if latest.get(query.from_user.id) != query.id:
        return  # the user typed on; Telegram's client shows only the newest query's answer
    if context.user_data is not None:
        # No queue inline: the client gives up on an answer within seconds.
        turn = take_turn(context.user_data, settings.rate_limit_per_minute, settings.rate_limit_burst, queue_seconds=0)
        if not turn.admitted:
            button = InlineQueryResultsButton(
                text=f"⏳ Too many questions: try again in {turn.wait:.0f} s", start_parameter="help"
            )
            await _answer_inline(query, [], button=button)
            return
    answer = await service.ask_async(asked.question)
    title = answer.citations[0].title if answer.answered and answer.citations else None
    results = [result_article(answer, title, key)]
    cache.put(key, results)
    await _answer_inline(query, results, personal=settings.allowed_chat_ids is not None)


async def _answer_inline(
    query: InlineQuery,
    results: list[InlineQueryResultArticle],
    personal: bool = True,
    button: InlineQueryResultsButton | None = None,
) -> None:
    """answerInlineQuery; `personal` keeps Telegram from showing these results to other users.

    A query the user has typed past may be too old to answer by now: that is not an error.
    """
    cache_time = INLINE_CACHE_SECONDS if results else 0
    try:
        await with_retries(lambda: query.answer(results, cache_time=cache_time, is_personal=personal, button=button))
    except BadRequest as error:
        if "query is too old" not in str(error).lower():
            raise
        log.info("an inline query expired before its answer (%s)", error)


# -- buttons ------------------------------------------------------------------------------------------


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Inline buttons: wider context / short form, votes, and the /start examples."""
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
    record = stored_answer(context.chat_data, message.message_id) if message is not None else None
    if message is None or record is None:
        await query.answer("That answer is too old for this button; please ask again.", show_alert=True)
        return
    user = str(query.from_user.id)
    if data in {"context", "short"}:
        record["expanded"] = data == "context"
        text = record["wide"] if record["expanded"] else record["short"]
        await query.answer()
        if text:
            vote = record.get("votes", {}).get(user)
            await edit_html(message, text, answer_markup(record["expanded"], record["wide"] is not None, vote))
        return
    if data in VOTES:
        if record_vote(record, query.from_user.id, data):
            chat = update.effective_chat
            feedback: FeedbackLog = context.bot_data["feedback"]
            await asyncio.to_thread(
                feedback.record, record["answer"], data == "up", None, "telegram", chat.id if chat else None
            )
            await query.answer("Thanks for the feedback!")
        else:
            await query.answer(f"You already voted {VOTES[data]} on this answer.")
        # The ✓ shows the presser's vote, also after someone else's vote moved it ("not modified" is fine).
        markup = answer_markup(bool(record.get("expanded")), record["wide"] is not None, data)
        await edit_markup(message, markup)
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
