"""Is the input a question at all: the stated rule on its own, then with the seed article's vocabulary."""

from __future__ import annotations

import random

import pytest

from bot.answering.intake import EMPTY, NOT_A_QUESTION, looks_like_question, question_problem, real_words
from bot.service import StorybotService

ARTICLE_WORDS = {"putin", "macron", "nato", "sanctions"}


def known(word: str) -> bool:
    return word.lower() in ARTICLE_WORDS


@pytest.mark.parametrize(
    "text",
    [
        "What did Biden warn?",
        "what did biden warn",  # no question mark, lower case: it opens with a question word
        "Putin?",  # one word, asked
        "Macron",  # one word the articles use
        "NATO.",
        "Why?",
        "Who",  # a question word alone
        "clear?",  # asked, so read as a question (the articles decide what it gets)
        "Biden warning",  # two words: a question without its question word
        "And Macron?",
        "What did he say then?",
        "😀😀😀 what did biden warn 😀",  # some symbols around real words
        "How many troops: 100,000 or 175,000?",  # figures and punctuation are not noise
        "<b>What</b> did &amp; Biden warn?",
        "Что сказал Путин?",  # any script's letters are letters
        "普京说了什么？",  # one run of letters, asked with a full-width question mark
    ],
)
def test_questions(text: str) -> None:
    assert looks_like_question(text, known)


@pytest.mark.parametrize(
    "text",
    [
        "clear",  # one word the articles never use, not asked
        "sources!",
        "the",  # a stop word is not a word "the articles use"
        "?",
        "?" * 40,
        "1234567890",
        "C 2",  # no real word: letters alone and figures
        "x?",
        "\x00\x01\x02 ab cd \x03\x04\x05\x06",  # words inside mostly noise
        "\ufffd\ufffd\ufffd Biden \ufffd\ufffd\ufffd",
        "\u200b\u200b\u200b",
        "",
        "   ",
    ],
)
def test_not_questions(text: str) -> None:
    assert not looks_like_question(text, known)


def test_a_line_of_random_bytes_is_never_a_question() -> None:
    rng = random.Random(19)
    for _ in range(200):
        line = bytes(rng.randrange(256) for _ in range(rng.randint(20, 200))).decode("utf-8", errors="replace")
        assert not looks_like_question(" ".join(line.split()), known), ascii(line)


def test_real_words_have_two_letters() -> None:
    assert real_words("Is U.S. aid to Kyiv in Q2 of 2022 a 'plan'?") == [
        "Is",
        "U.S",
        "aid",
        "to",
        "Kyiv",
        "in",
        "of",
        "plan",
    ]


def test_problems_found_without_the_model() -> None:
    assert question_problem("", 500) == EMPTY
    assert question_problem(" \t\n", 500) == EMPTY
    assert question_problem("x" * 501, 500) == (
        "That question is 501 characters long; please keep it under 500 and ask one thing at a time."
    )
    assert question_problem("x" * 500, 500) is None
    assert question_problem("clear", 500) is None  # whether it is a question needs the articles


def test_the_service_checks_every_question_with_the_articles_vocabulary(seed_service: StorybotService) -> None:
    assert seed_service.check("Macron") is None and seed_service.check("Putin?") is None
    assert seed_service.check("Macronn") is None  # a typo of a name the article uses
    assert seed_service.check("Ryabkov's") is None
    assert seed_service.check("clear") == NOT_A_QUESTION
    assert seed_service.check("") == EMPTY
    garbage = "\x89PNG\x1a\x00\x00\x00\rIHDR\x00\x00\x01\x00C 2\ufffd\ufffd\x08\x06\ufffd"
    assert seed_service.check(garbage) == NOT_A_QUESTION


def test_no_question_is_answered_with_why_and_quotes_nothing(seed_service: StorybotService) -> None:
    # "clear" was answered with an article sentence, and noise with "The article doesn't mention C or 2."
    for text in ("clear", "\x89PNG\x1a\x00\x00\x00\rIHDR\x00\x00\x01\x00C 2\ufffd\ufffd\x08\x06\ufffd"):
        answer = seed_service.ask(text)
        assert not answer.answered and answer.citations == [] and answer.shown.reason == NOT_A_QUESTION
    # One-word questions naming something in the article are still answered.
    assert "Macron" in (seed_service.ask("Macron").text or "")
    assert seed_service.ask("Putin?").answered
