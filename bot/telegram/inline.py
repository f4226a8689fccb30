"""Inline mode's plain parts: reading `@bot [key:] question`, the results cache, and the result articles.

Inline queries arrive as the user types, one per keystroke or so; the cache keeps a repeated or
re-typed question from running the model again, and the handler (handlers.inline_query) waits a
moment for typing to pause before it asks at all.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
)
from telegram.constants import ParseMode

from bot.answering.answer import Answer
from bot.telegram.format import clip, render_inline_answer

INLINE_CACHE_SECONDS = 60  # how long Telegram's clients and our own cache keep an inline answer
INLINE_CACHE_SIZE = 512  # questions kept in the process's cache
INLINE_PAUSE_SECONDS = 0.3  # typing pauses this long before a question is asked
INLINE_RESULTS = 3  # Telegram shows up to 50; three stories is as many as a reader compares
# "key: question" scopes an inline question to one story; keys are Telegram-safe (A-Za-z0-9_-, <= 64).
_SCOPED = re.compile(r"^\s*([A-Za-z0-9_-]{1,64})\s*:\s*(.*)$", re.S)


@dataclass(frozen=True)
class InlineQuestion:
    story: str | None  # the story key before "key:", or None for the whole archive
    question: str


def read_inline_query(text: str) -> InlineQuestion:
    """`key: question` or a bare question; only a key-shaped word before the first colon counts as a key."""
    match = _SCOPED.match(text)
    if match and match.group(2).strip():
        return InlineQuestion(match.group(1), " ".join(match.group(2).split()))
    return InlineQuestion(None, " ".join(text.split()))


def cache_key(question: InlineQuestion) -> str:
    """The same question however it was typed: case, spaces and the closing punctuation do not matter."""
    words = " ".join(question.question.casefold().split()).rstrip(" ?!.")
    return f"{question.story or ''}:{words}"


class InlineCache:
    """The results of recent inline questions, for INLINE_CACHE_SECONDS, newest INLINE_CACHE_SIZE kept."""

    def __init__(self, seconds: float = INLINE_CACHE_SECONDS, size: int = INLINE_CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: OrderedDict[str, tuple[float, list[InlineQueryResultArticle]]] = OrderedDict()

    def get(self, key: str) -> list[InlineQueryResultArticle] | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.seconds:
            return None
        return entry[1]

    def put(self, key: str, results: list[InlineQueryResultArticle]) -> None:
        self._entries[key] = (time.monotonic(), results)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (the index was rebuilt: answers may have changed)."""
        self._entries.clear()


def deep_link(bot_username: str, story_key: str) -> str:
    """The t.me link that opens a chat with the bot on this story (what a news site puts under an article)."""
    return f"https://t.me/{bot_username}?start={story_key}"


def result_article(answer: Answer, title: str | None, key: str, link: str | None = None) -> InlineQueryResultArticle:
    """One inline result: the story's title above the answer in the list, the cited answer as the message.

    `link` (the story's deep link) becomes a button under the shared message, so that whoever reads it
    in a group can ask about the story too.
    """
    if answer.answered and answer.text:
        heading, description = f"📰 {title}", clip(" ".join(answer.text.split()), 100)
    else:
        heading = "🤷 " + (answer.shown.reason or "The story doesn't say.")
        description = f"📰 {title}" if title else "Nothing in the stories answers this."
    # A result id is at most 64 bytes and must differ between the results of one answer.
    result_id = hashlib.sha256(f"{key}|{title}|{answer.text}".encode()).hexdigest()[:32]
    return InlineQueryResultArticle(
        id=result_id,
        title=clip(heading, 100),
        description=description,
        input_message_content=InputTextMessageContent(
            render_inline_answer(answer, title),
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        ),
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("💬 Ask about this story", url=link)]])
        if link
        else None,
    )
