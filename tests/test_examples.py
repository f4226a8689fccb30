"""Example questions for /start: made from the corpus, answered by storybot, varied."""

from __future__ import annotations

from bot.examples import candidate_questions, example_questions
from bot.service import StorybotService


def test_candidates_come_from_who_did_what() -> None:
    sentences = [
        "Meteorologists warned that more rain was expected.",  # a common noun opening a sentence
        "Officials in the province of Valeria said on Sunday that roads were closed.",  # not who spoke
        "The governor, Marta Quintero, declared an emergency, and Quintero said help was coming.",
        "Prime Minister Luis Arenas promised aid.",
    ]
    questions = candidate_questions(sentences)
    assert "What did Quintero say?" in questions and "What did Arenas promise?" in questions
    assert "Who is Luis Arenas?" in questions
    assert not any("Meteorologists" in q or "Valeria" in q for q in questions)


def test_examples_are_answered_and_span_articles(fixture_service: StorybotService) -> None:
    examples = example_questions(fixture_service)
    assert len(examples) == 3
    docs = set()
    for question in examples:
        answer = fixture_service.ask(question)
        assert answer.answered
        docs.add(answer.citations[0].doc)
    assert len(docs) == 3  # one per article while there are articles to spare
