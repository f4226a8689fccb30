"""Is the input a question at all? Decided before anything is retrieved, so noise gets a plain reply.

The rule, stated so a test can check it (no list of rejected words):
- it is not empty and not over STORYBOT_MAX_QUESTION_CHARS (checked without the model or the index);
- it is mostly text: noise (control characters, symbols, replacement characters) is under a third of
  what is not white space, and it holds a real word (two letters or more);
- and it ends with "?", opens with a question word or an auxiliary verb, holds two real words or more,
  or is one word the articles use ("Macron", "Putin"). A bare "clear" is not a question; "Clear?" is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from bot.indexing.terms import normalize_word, words

EMPTY = "The question is empty: please type a question about the story."
NOT_A_QUESTION = "That doesn't look like a question about the story. Ask me about the story, or type 'help'."

QUESTION_OPENERS = frozenset(
    """who whom whose what which when where why how is are was were am do does did has have had will would
    can could should shall may might must""".split()
)
QUESTION_MARKS = ("?", "\uff1f", "\u061f")  # ASCII, full-width, Arabic
MAX_NOISE_SHARE = 1 / 3


def question_too_long(question: str, max_chars: int) -> str | None:
    """The polite refusal every front end gives a question over STORYBOT_MAX_QUESTION_CHARS, or None."""
    length = len(question.strip())
    if length <= max_chars:
        return None
    return f"That question is {length} characters long; please keep it under {max_chars} and ask one thing at a time."


def question_problem(question: str, max_chars: int) -> str | None:
    """Why the input cannot be asked whatever the articles hold (empty, too long), or None; needs no model."""
    if not question.strip():
        return EMPTY
    return question_too_long(question, max_chars)


def is_noise(char: str) -> bool:
    """A character no question is made of: a control, format or unassigned code point, a symbol, U+FFFD."""
    return unicodedata.category(char)[0] in "CS"


def real_words(text: str) -> list[str]:
    """The words of `text` with two letters or more, as written ("U.S.", "Russia's"; not "C", "2", "Q2")."""
    return [word for word in words(text) if sum(char.isalpha() for char in word) >= 2]


def looks_like_question(question: str, known_word: Callable[[str], bool]) -> bool:
    """Whether the input reads as a question; `known_word` says whether the articles use a word."""
    shown = [char for char in question if not char.isspace()]
    if not shown or sum(map(is_noise, shown)) >= MAX_NOISE_SHARE * len(shown):
        return False
    found = real_words(question)
    if not found:
        return False
    if question.rstrip(" \"'\u201d\u2019)]").endswith(QUESTION_MARKS) or len(found) >= 2:
        return True
    first = words(question)[0]
    return normalize_word(first) in QUESTION_OPENERS or known_word(found[0])
