"""Stories as Telegram shows them: story buttons, their callback data (64 bytes at most) and the pages of /story.

Plain functions over the library's Story; the handlers (handlers.py) do the talking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.answering.stories import Story
from bot.telegram.format import clip, escape, story_line

CALLBACK_DATA_BYTES = 64  # Telegram's limit on a button's callback data
STORIES_PER_PAGE = 5
SEARCH_RESULTS = 8
CHOOSE = "s"  # a button that opens a story
WHICH = "w"  # a which-story button: re-ask the message's question in that story
PAGE = "sp"  # a page of the /story list


def story_callback(action: str, key: str) -> str:
    """`action:key`, or `action#digest` for a key too long to fit Telegram's 64 bytes beside the action."""
    data = f"{action}:{key}"
    if len(data.encode()) <= CALLBACK_DATA_BYTES:
        return data
    return f"{action}#{_digest(key)}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def read_story_callback(data: str, stories: Sequence[Story]) -> tuple[str, Story | None] | None:
    """(action, story) from a story button's data; the story is None when no story has that key now.

    None when the data is no story button's at all.
    """
    for action in (CHOOSE, WHICH):
        if data.startswith(f"{action}:"):
            key = data[len(action) + 1 :]
            return action, next((s for s in stories if s.key == key), None)
        if data.startswith(f"{action}#"):
            digest = data[len(action) + 1 :]
            return action, next((s for s in stories if _digest(s.key) == digest), None)
    return None


def story_button(story: Story, action: str = CHOOSE) -> InlineKeyboardButton:
    return InlineKeyboardButton(f"📰 {clip(story.title, 60)}", callback_data=story_callback(action, story.key))


def describe_story(story: Story) -> str:
    """The story's title line with its outlet and date, in Telegram HTML."""
    details = ", ".join(escape(part) for part in (story.outlet, story.date) if part)
    return story_line(story.title) + (f"\n<i>{details}</i>" if details else "")


def story_opened(story: Story) -> str:
    """What the reader is told when a chat turns to a story."""
    return (
        f"{describe_story(story)}\n\n"
        "Ask me anything about this story: I answer from it alone. /story all goes back to the whole archive."
    )


def stories_page(stories: Sequence[Story], page: int, current: Story | None) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of the newest stories as buttons, with ◀ ▶ to turn pages; a page past the end shows the last."""
    if not stories:
        return "There are no stories with a key in the archive yet.", None
    pages = (len(stories) + STORIES_PER_PAGE - 1) // STORIES_PER_PAGE
    page = min(max(page, 0), pages - 1)
    shown = stories[page * STORIES_PER_PAGE : (page + 1) * STORIES_PER_PAGE]
    lines = [f"<b>Stories</b>, newest first (page {page + 1} of {pages}). Tap one to ask about it."]
    lines.append("/story <i>words</i> searches the headlines; /story all asks the whole archive.")
    if current is not None:
        lines.append(f"\nNow asking about: {story_line(current.title)}")
    rows = [[story_button(story)] for story in shown]
    turns = []
    if page > 0:
        turns.append(InlineKeyboardButton("◀ Newer", callback_data=f"{PAGE}:{page - 1}"))
    if page < pages - 1:
        turns.append(InlineKeyboardButton("Older ▶", callback_data=f"{PAGE}:{page + 1}"))
    if turns:
        rows.append(turns)
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def search_results(words: str, found: Sequence[Story]) -> tuple[str, InlineKeyboardMarkup | None]:
    """The stories whose headlines hold the words, as buttons (the best SEARCH_RESULTS)."""
    if not found:
        return f"No story's headline has “{escape(words)}”. /story lists the newest.", None
    more = f" (the best {SEARCH_RESULTS} of {len(found)})" if len(found) > SEARCH_RESULTS else ""
    text = f"<b>Stories with “{escape(words)}”</b>{more}: tap one to ask about it."
    return text, InlineKeyboardMarkup([[story_button(story)] for story in found[:SEARCH_RESULTS]])


def which_story(question: str, stories: Sequence[Story]) -> tuple[str, InlineKeyboardMarkup]:
    """ "Which story do you mean?" with a button per story; pressing one asks the question in it."""
    text = f"❓ <i>{escape(question)}</i>\n\nSeveral stories could answer this. <b>Which story do you mean?</b>"
    return text, InlineKeyboardMarkup([[story_button(story, WHICH)] for story in stories])
