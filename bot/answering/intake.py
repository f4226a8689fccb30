"""Is the input a question at all? Decided before anything is retrieved, so noise gets a plain reply.

The rule, stated so a test can check it (no list of rejected words):
- it is not empty and not over STORYBOT_MAX_QUESTION_CHARS (checked without the model or the index);
- it is mostly text: noise (control characters, symbols, replacement characters) is under a third of
  what is not white space, and it holds a real word (two letters or more);
- and it ends with "?", opens with a question word or an auxiliary verb, holds two real words or more,
  or is one word the articles use ("Macron", "Putin"). A bare "clear" is not a question; "Clear?" is.

A question is then read only when it is English (see `reads_as_english`): the reader, the spelling
corrections and the refusals all assume English, so "Qu'a dit Poutine ?" would get "The article doesn't
mention Qu'a or Poutine".
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import Any

from bot.indexing.terms import STOPWORDS, is_english_word, normalize_word, words
from bot.terminal import printable

EMPTY = "The question is empty: please type a question about the story."
NOT_A_QUESTION = "That doesn't look like a question about the story. Ask me about the story, or type 'help'."
# The same for `storybot ask`, which has no 'help' to type.
NOT_A_QUESTION_TO_ASK = "That doesn't look like a question about the story. Ask about the story in plain words."
NOT_ENGLISH = "storybot reads questions in English only: please ask yours in English."

QUESTION_OPENERS = frozenset(
    """who whom whose what which when where why how is are was were am do does did has have had will would
    can could should shall may might must""".split()
)
# Greetings and courtesies: a line made of these and small words is talk to the bot, not a question about
# the story ("hello there" was answered with a quote).
SMALL_TALK = frozenset(
    """hello hi hey hiya howdy greetings thanks thank thx cheers bye goodbye morning afternoon evening night
    please ok okay yes yeah yep sure cool good great nice fine awesome welcome lol""".split()
)
QUESTION_MARKS = ("?", "\uff1f", "\u061f")  # ASCII, full-width, Arabic
MAX_NOISE_SHARE = 1 / 3

# When a question is not English. Fitted on the training and dev question sets (news_train, dev, heldout,
# the fixture questions, the SQuAD training files) against 42 questions translated into 17 languages, and
# measured on the rest (`python -m bot.devtools.english_check` reports every set): a question is flagged
# only when most of its letters are not Latin, or when it has three words or more, few of them English
# function words or dictionary words, and the language model gives English almost no chance. English
# questions that quote a foreign title ("Who wrote Geschichte des Hellenismus?") are the false alarms left.
MIN_WORDS_TO_JUDGE = 3  # "putin", "RIA Novosti": too short to tell, and names are no language
MAX_FUNCTION_WORD_SHARE = 1 / 4  # "what", "did", "the"...: an English question is full of them
MAX_DICTIONARY_WORD_SHARE = 2 / 3  # the English dictionary holds many French and Latin words too
MAX_ENGLISH_PROBABILITY = 0.02  # py3langid's probability that the text is English, over its 140 languages


def cleaned_question(text: str) -> str:
    """The question as read, whichever front end it came from: escape sequences and control characters
    dropped (left in, their printable tails, "[31m", would be read and quoted back as words), and white
    space runs made one space."""
    return " ".join(printable(text).split())


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


def problem_before_loading(question: str, max_chars: int) -> str | None:
    """What can be said of the input without the model or the index: empty, too long, or a question
    clearly not in English (so `storybot ask "Que dit Poutine ?"` answers at once, without loading the
    model first). None does not mean it will be asked: the service's own check has the last word."""
    question = cleaned_question(question)
    problem = question_problem(question, max_chars)
    # With no known words, looks_like_question can only say False where the articles would say True, so
    # True here is what the service's check would find too, and the language is the next thing it asks.
    if problem is None and looks_like_question(question, lambda _word: False) and not reads_as_english(question):
        problem = NOT_ENGLISH
    return problem


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
    said = [normalize_word(word) for word in found]
    if any(word in SMALL_TALK for word in said) and all(word in SMALL_TALK or word in STOPWORDS for word in said):
        return False
    if question.rstrip(" \"'\u201d\u2019)]").endswith(QUESTION_MARKS) or len(found) >= 2:
        return True
    first = words(question)[0]
    return normalize_word(first) in QUESTION_OPENERS or known_word(found[0])


def names_alone(question: str) -> bool:
    """A name with nothing asked about it: "putin", "Sauli Niinisto?", "NATO." (not "Who?", "Biden warning")."""
    found = real_words(question)
    if not found or normalize_word(found[0]) in QUESTION_OPENERS:
        return False
    return len(found) == 1 or all(word[0].isupper() for word in found)


def reads_as_english(question: str) -> bool:
    """Whether a question may be English; False only when it clearly is not ("Что сказал Путин?",
    "Wovor hat Biden gewarnt?"). Names alone are never judged ("putin", "Sauli Niinisto")."""
    letters = [char for char in question if char.isalpha()]
    if letters and sum(_is_latin(char) for char in letters) < len(letters) / 2:
        return False
    found = [normalize_word(word) for word in real_words(question)]
    if len(found) < MIN_WORDS_TO_JUDGE:
        return True
    # The cheap signs first: most English questions never need the language model loaded.
    if sum(word in STOPWORDS for word in found) > MAX_FUNCTION_WORD_SHARE * len(found):
        return True
    if sum(is_english_word(word) for word in found) > MAX_DICTIONARY_WORD_SHARE * len(found):
        return True
    return _english_probability(question) >= MAX_ENGLISH_PROBABILITY


def _is_latin(letter: str) -> bool:
    return unicodedata.name(letter, "").startswith("LATIN")


def _english_probability(text: str) -> float:
    return dict(_language_identifier().rank(text)).get("en", 0.0)


@functools.cache
def _language_identifier() -> Any:
    """py3langid's model (naive Bayes over byte n-grams, 140 languages), loaded on first use (0.7 s)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
