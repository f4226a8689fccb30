"""The Telegram handlers: one small async function per kind of update, in python-telegram-bot's style.

Every answer comes from the StorybotService in bot_data (not persisted); chat_data and user_data hold
plain data only (see state.py), so the JSON file or Redis can store them. The update processor
(state.ChatOrder) loads a chat's state before its update and stores it after, one update of a chat at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

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
from bot.answering.stories import Story
from bot.config import Settings
from bot.errors import UnknownStoryError
from bot.examples import example_questions
from bot.feedback import FeedbackLog
from bot.indexing.index import DocumentInfo
from bot.service import StorybotService
from bot.telegram.delivery import edit_html, edit_markup, reply_text, send_action, send_html, with_retries
from bot.telegram.format import TELEGRAM_MESSAGE_LIMIT, escape, render_answer, render_context, split_html
from bot.telegram.inline import (
    INLINE_CACHE_SECONDS,
    INLINE_PAUSE_SECONDS,
    INLINE_RESULTS,
    InlineCache,
    InlineQuestion,
    cache_key,
    deep_link,
    read_inline_query,
    result_article,
)
from bot.telegram.state import (
    QUEUE_SECONDS,
    ChatStore,
    StateUnavailable,
    choose_story,
    chosen_story,
    load_session,
    record_vote,
    remember_answer,
    save_session,
    stored_answer,
)
from bot.telegram.stories import (
    CHOOSE,
    PAGE,
    WHICH,
    read_story_callback,
    search_results,
    stories_page,
    story_button,
    story_opened,
    which_story,
)

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("start", "what this bot is, with example questions"),
    BotCommand("help", "what the bot can and cannot do"),
    BotCommand("sources", "the articles it answers from"),
    BotCommand("story", "ask about one story: /story, /story words, /story all"),
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


def _store(context: ContextTypes.DEFAULT_TYPE) -> ChatStore:
    store: ChatStore = context.bot_data["store"]
    return store


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
    if chat is not None and (chat.id in allowed or (context.chat_data or {}).get("migrated_from") in allowed):
        return  # a group that became a supergroup keeps its place through its moved state
    if update.message and update.message.migrate_from_chat_id in allowed:
        return  # the new supergroup's first message, which moves that state
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
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    question: str,
    from_button: bool = False,
    story: str | None = None,
) -> None:
    """The one path every question takes: checks, the user's turn, typing, the service, the cited reply.

    A question typed by the user is quoted by the reply; one asked by a button is written out on top.
    It is asked within `story` when given, else within the chat's chosen story, else of the whole archive.
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
        turn = await _store(context).take_turn(
            update.effective_user.id,
            context.user_data,
            settings.rate_limit_per_minute,
            settings.rate_limit_burst,
            QUEUE_SECONDS,
        )
        if not turn.admitted:
            await reply_text(
                message,
                f"You're asking faster than I can keep up with ({settings.rate_limit_per_minute} questions a "
                f"minute after the first {settings.rate_limit_burst}). Please try again in {turn.wait:.0f} seconds.",
            )
            return
        if turn.wait > 0:  # over the rate but within the queue: this question waits for its turn
            await send_action(message, ChatAction.TYPING)
            await asyncio.sleep(turn.wait)

    await send_action(message, ChatAction.TYPING)
    chat_data = context.chat_data if context.chat_data is not None else {}
    scope = await _story_in_scope(message, chat_data, service, story)
    session = load_session(chat_data, settings.history_turns)
    answer = await service.ask_async(question, session, story=scope.key if scope else None)
    save_session(chat_data, session)
    if answer.stories:  # several stories fit about equally: ask back instead of guessing
        text, markup = which_story(answer.question, answer.stories)
        sent = await send_html(message, text, markup, quote=not from_button)
        if sent:
            remember_answer(chat_data, sent[-1].message_id, {"question": answer.question})
        return
    short = render_answer(answer, scope.title if scope else None, with_question=from_button)
    wide = _context_html(service, answer)
    sent = await send_html(message, short, answer_markup(False, wide is not None), quote=not from_button)
    if sent:  # else it may not have arrived, and its buttons' message id is unknown
        remember_answer(chat_data, sent[-1].message_id, {"short": short, "wide": wide, "answer": answer.to_json()})


async def _story_in_scope(
    message: Message, chat_data: dict[str, Any], service: StorybotService, key: str | None
) -> Story | None:
    """The story a question is asked in: `key`, else the chat's; a chosen story since removed is let go."""
    key = key or chosen_story(chat_data)
    if key is None:
        return None
    try:
        return service.story(key)
    except UnknownStoryError:
        if key == chosen_story(chat_data):
            choose_story(chat_data, None)
        await reply_text(message, "That story is no longer in the archive, so I'm asking all the stories.")
        return None


# -- commands -----------------------------------------------------------------------------------------


def _describe(info: DocumentInfo) -> str:
    details = ", ".join(escape(part) for part in (info.outlet, info.date) if part)
    return f"📰 <b>{escape(info.title)}</b>" + (f" ({details})" if details else "")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet with the corpus and three example questions; `/start KEY` (a t.me deep link) opens that story."""
    message = update.effective_message
    if message is None:
        return
    if context.args:
        if context.args[0] == "help":  # the inline mode's "too many questions" button leads here
            await help_command(update, context)
        else:
            await open_story(update, context, context.args[0])
        return
    examples = await _examples(context)
    lines = ["👋 I answer questions about this news, quoting the article itself:", ""]
    lines += [_describe(info) for info in _service(context).documents]
    lines += ["", "Ask me anything about it, or tap an example:" if examples else "Ask me anything about it."]
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(q, callback_data=f"ask:{i}")] for i, q in enumerate(examples)])
    await send_html(message, "\n".join(lines), markup if examples else None, quote=False)


async def _examples(context: ContextTypes.DEFAULT_TYPE) -> list[str]:
    """The example questions, worked out at the first /start after a start or a rebuild (a few model runs).

    Not at start: a replica takes updates sooner, and a bot nobody greets never pays for them.
    """
    examples: list[str] | None = context.bot_data.get("examples")
    if examples is None:
        examples = await asyncio.to_thread(example_questions, _service(context))
        context.bot_data["examples"] = examples
    return examples


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


async def open_story(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> None:
    """Turn the chat to the story with this key; an unknown key gets the closest ones as buttons."""
    message = update.effective_message
    if message is None:
        return
    service = _service(context)
    try:
        story = service.story(key)
    except UnknownStoryError as error:
        closest = [service.story(k) for k in error.closest]
        markup = InlineKeyboardMarkup([[story_button(s)] for s in closest]) if closest else None
        text = f"{escape(str(error))}\n/story lists the newest stories; or just ask about any of them."
        await send_html(message, text, markup, quote=False)
        return
    if context.chat_data is not None:
        choose_story(context.chat_data, story.key)
    await send_html(message, story_opened(story), quote=False)


async def story_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/story: the newest stories as buttons; /story WORDS searches the headlines; /story all: every story."""
    message = update.effective_message
    if message is None:
        return
    service = _service(context)
    words = " ".join(context.args or [])
    chat_data = context.chat_data if context.chat_data is not None else {}
    if words.lower() == "all":
        choose_story(chat_data, None)
        await reply_text(message, "Back to the whole archive: ask about any story.")
        return
    if not words:
        current = await _current_story(chat_data, service)
        text, markup = stories_page(service.stories(), 0, current)
    elif any(story.key == words for story in service.stories()):
        await open_story(update, context, words)
        return
    else:
        found = await asyncio.to_thread(service.search_stories, words)
        text, markup = search_results(words, found)
    await send_html(message, text, markup, quote=False)


async def _current_story(chat_data: dict[str, Any], service: StorybotService) -> Story | None:
    key = chosen_story(chat_data)
    try:
        return service.story(key) if key else None
    except UnknownStoryError:
        return None


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
    scope = None
    if asked.story is not None:
        try:
            scope = service.story(asked.story)
        except UnknownStoryError:  # "Note: who spoke?" is a question, not a story key
            asked = InlineQuestion(None, " ".join(query.query.split()))
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
        turn = await _store(context).take_turn(
            query.from_user.id, context.user_data, settings.rate_limit_per_minute, settings.rate_limit_burst, 0
        )
        if not turn.admitted:
            button = InlineQueryResultsButton(
                text=f"⏳ Too many questions: try again in {turn.wait:.0f} s", start_parameter="help"
            )
            await _answer_inline(query, [], button=button)
            return
    answer = await service.ask_async(asked.question, story=scope.key if scope else None)
    scoped: list[tuple[Story | None, Answer]]
    if answer.stories:  # no asking back inline: one result per story, each answered within its story
        stories = answer.stories[:INLINE_RESULTS]
        scoped = [(story, await service.ask_async(asked.question, story=story.key)) for story in stories]
    else:
        scoped = [(scope or _story_of_answer(service, answer), answer)]
    username = context.bot.username
    results = [
        result_article(found, story.title if story else None, key, deep_link(username, story.key) if story else None)
        for story, found in scoped
    ]
    cache.put(key, results)
    await _answer_inline(query, results, personal=settings.allowed_chat_ids is not None)


def _story_of_answer(service: StorybotService, answer: Answer) -> Story | None:
    """The story an answer comes from (none for a refusal of the whole archive: it comes from no story)."""
    if not answer.answered or not answer.citations:
        return None
    doc = answer.citations[0].doc
    return next((story for story in service.stories() if story.doc == doc), None)


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


# Callback data of each kind of button, one CallbackQueryHandler per pattern (app.py).
EXAMPLE_PATTERN = r"^ask:\d+$"  # a /start example: which button of the greeting's keyboard
ANSWER_PATTERN = r"^(context|short|up|down)$"  # under an answer
PAGE_PATTERN = rf"^{PAGE}:"  # ◀ ▶ under /story
STORY_PATTERN = rf"^({CHOOSE}|{WHICH})[:#]"  # a story's button


async def example_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /start example: ask the question its label shows.

    The label is read from the greeting's own keyboard, which Telegram sends with the press: the list of
    examples is worked out anew when the corpus changes, so an index into it could ask something else.
    """
    query = update.callback_query
    if query is None:
        return
    message = query.message if isinstance(query.message, Message) else None
    keyboard = message.reply_markup.inline_keyboard if message and message.reply_markup else ()
    label = next((b.text for row in keyboard for b in row if b.callback_data == query.data), None)
    if label is None:
        await query.answer("That example is too old; please type your question.", show_alert=True)
        return
    await query.answer()
    await answer_question(update, context, label, from_button=True)


async def answer_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Under an answer: wider context / short form, and the votes 👍 👎."""
    query = update.callback_query
    if query is None:
        return
    data = query.data or ""
    message = query.message if isinstance(query.message, Message) else None
    record = stored_answer(context.chat_data, message.message_id) if message is not None else None
    if message is None or record is None or "short" not in record:
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


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this version no longer has (from an old message): say so rather than spin."""
    if update.callback_query:
        await update.callback_query.answer("This button no longer works; please ask again.", show_alert=True)


async def turn_stories_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """◀ / ▶ under the /story list: show another page in place."""
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    page = (query.data or "")[len(PAGE) + 1 :]
    if not isinstance(query.message, Message) or not page.isdigit():
        return
    service = _service(context)
    current = await _current_story(context.chat_data or {}, service)
    text, markup = stories_page(service.stories(), int(page), current)
    await edit_html(query.message, text, markup)


async def story_button_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A story's button: open it (/story, an unknown deep link) or ask the question in it (which story?)."""
    query = update.callback_query
    if query is None:
        return
    press = read_story_callback(query.data or "", _service(context).stories())
    if press is None:
        await stale_button(update, context)
        return
    action, story = press
    if story is None:
        await query.answer("That story is no longer in the archive; /story lists the stories.", show_alert=True)
        return
    message = query.message if isinstance(query.message, Message) else None
    if action == CHOOSE:
        if context.chat_data is not None:
            choose_story(context.chat_data, story.key)
        await query.answer(f"Now asking about: {story.title}"[:200])
        if message is not None:
            await edit_html(message, story_opened(story))
        return
    record = stored_answer(context.chat_data, message.message_id) if message is not None else None
    question = record.get("question") if record else None
    if action != WHICH or not isinstance(question, str):
        await query.answer("That question is too old for this button; please ask again.", show_alert=True)
        return
    await query.answer()
    await answer_question(update, context, question, from_button=True, story=story.key)


# -- the chat itself changes ----------------------------------------------------------------------


async def chat_migrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup (a new chat id): its conversation, story and buttons move with it."""
    message = update.effective_message
    if message is None:
        return
    old = await _store(context).migrate_chat(context.application, message)
    new = message.migrate_to_chat_id or message.chat.id
    allowed = _settings(context).allowed_chat_ids
    if allowed is not None and old in allowed and new not in allowed and message.migrate_to_chat_id is not None:
        log.warning(
            "group %s is now supergroup %s: it is let in through its moved state; add %s to STORYBOT_ALLOWED_CHAT_IDS",
            old,
            new,
            new,
        )


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the error first (so we see it even if replying fails), then tell the user."""
    sorry = "Sorry, something went wrong while answering that. Please try again in a moment."
    if isinstance(context.error, StateUnavailable):  # the store said why, line by line, as it retried
        log.error("an update was not handled: %s", context.error)
        sorry = (
            "Sorry, I can't reach my memory of this chat right now, so I didn't answer. Please ask again in a minute."
        )
    else:
        log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.callback_query:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer(sorry[:200], show_alert=True)
    elif isinstance(update, Update) and update.effective_message:
        try:
            await update.effective_message.reply_text(sorry)
        except TelegramError:
            log.warning("could not tell the user about the error", exc_info=True)
