"""How a question is read: which of its words are names, and which names the articles never mention."""

from __future__ import annotations

import pytest

from bot.answering.retrieval import question_entities
from bot.indexing.terms import is_english_word
from bot.service import StorybotService


@pytest.mark.parametrize("word", ["plethora", "evacuees", "revolutionizing", "jobless", "severance", "approximately"])
def test_english_words_and_their_inflections_are_words(word: str) -> None:
    assert is_english_word(word)


@pytest.mark.parametrize("word", ["zelensky", "lukashenko", "niinisto", "ryabkov", "gazprom"])
def test_names_are_not_english_words(word: str) -> None:
    assert not is_english_word(word)


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What's the date of the article?", []),  # a question word with 's
        ("Approximately how many troops were sent?", []),  # a capitalised first word that is English
        ("Prior to the talks, who called Macron?", [("Macron",)]),
        ("Putin said what to Niinisto?", [("Putin",), ("Niinisto",)]),  # a first word that is a name
        ("What did Sauli Niinisto's office say?", [("Sauli", "Niinisto's")]),
    ],
)
def test_names_in_a_question(question: str, names: list[tuple[str, ...]]) -> None:
    assert question_entities(question) == names


def test_an_english_word_the_article_lacks_is_not_an_unknown_name(seed_service: StorybotService) -> None:
    # Both are rare to the model's vocabulary and absent from the article; only one is a name.
    assert seed_service.retriever.analyse("what did lukashenko say").unknown_entities == ("lukashenko",)
    assert seed_service.retriever.analyse("was there a plethora of sanctions").unknown_entities == ()
