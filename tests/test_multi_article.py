"""Many articles in one corpus: answers come from the article the question is about, never a stranger."""

from __future__ import annotations

from bot.console import format_sources
from bot.evaluation import load_jsonl, run_eval, summarise
from bot.service import StorybotService

from .conftest import DATA, read_jsonl

FIXTURE_QUESTIONS = read_jsonl(DATA / "fixture_questions.jsonl")


def test_answers_come_from_the_article_asked_about(fixture_service: StorybotService) -> None:
    # A tune set: the floors say answers stay with their article among five; which ones pass is not fixed.
    cases = [c for c in FIXTURE_QUESTIONS if c["expect"]]
    from_its_article = sum(
        1
        for case in cases
        if (answer := fixture_service.ask(case["q"])).answered and answer.citations[0].doc == case["doc"]
    )
    assert from_its_article >= 0.85 * len(cases), f"{from_its_article}/{len(cases)}"


def test_fixture_question_floors(fixture_service: StorybotService) -> None:
    summary = summarise(run_eval(fixture_service, load_jsonl(DATA / "fixture_questions.jsonl")))
    assert summary.hits >= 0.9 * summary.answerable, summary
    assert summary.right >= 0.85 * summary.answerable, summary
    assert summary.abstained >= 0.7 * summary.unanswerable, summary


def test_sources_list_every_article(fixture_service: StorybotService) -> None:
    listing = format_sources(fixture_service)
    for title in ("Putin wants", "Storm-hit harbour", "City library", "Teenager wins national chess final"):
        assert title in listing
    assert "Coast Gazette" in listing and "Midland Herald" in listing
