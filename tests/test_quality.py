"""Floors on the held-out question sets, answered by the real model, reader and scorer.

These sets were never used for training or tuning (see README "Evaluation"): the news test split was
written blind, and the SQuAD test articles are unseen by the reader. The tests check rates, never
which questions pass; the figures themselves are reported by `storybot eval`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import Summary, load_question_set, run_eval, service_for, summarise
from bot.indexing.embedding import SentenceTransformerEmbedder
from bot.service import StorybotService

from .conftest import DATA, ROOT, make_settings

NEWS_TEST = DATA / "news_test"
NEAR_MISS = DATA / "near_miss" / "questions.jsonl"
SHARED_DATA = ROOT.parent / "shared" / "data"
SQUAD_SAMPLE = SHARED_DATA / "squad2-train-sample" / "train-sample.json"
SQUAD2_DEV = SHARED_DATA / "squad2-dev" / "dev-v2.0-33.json"
# Two of the seven SQuAD 2.0 test articles (the smallest, so their index builds fast), every question.
SQUAD2_FLOOR_ARTICLES = ("Sky_(United_Kingdom)", "Black_Death")
# Floors a few points under what the shipped reader and scorer measured on exactly these samples
# (measured with issue 18's stories merged): news 70 of 89 right, 13 of 31 refused, 9 false refusals; near misses 19 of 80
# refused; SQuAD sample every third question 120 of 169, 9 of 61, 6; the two SQuAD 2.0 articles 189 of
# 216, 24 of 213, 5. They catch a regression: the shipped reader with its top two layers shuffled
# (`python -m bot.devtools.damage_reader`) fails each test: news 52 right, near misses 14 refused,
# SQuAD sample 76 right with 39 false refusals, SQuAD 2.0 167 right with 21 false refusals (README,
# "Development").
NEWS_FLOORS = {"right": 0.72, "abstained": 0.35, "false_refusals": 0.15}
NEAR_MISS_FLOOR = 0.20
SQUAD_FLOORS = {"right": 0.65, "abstained": 0.08, "false_refusals": 0.08}
SQUAD2_FLOORS = {"right": 0.82, "abstained": 0.06, "false_refusals": 0.06}


def _service(tmp_path: Path, corpus: Path, embedder: SentenceTransformerEmbedder) -> StorybotService:
    return StorybotService.load(make_settings(tmp_path, corpus=corpus), embedder)


@pytest.fixture(scope="module")
def news_test_service(real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory):
    return _service(tmp_path_factory.mktemp("news-test"), NEWS_TEST / "corpus", real_embedder)


def _assert_floors(summary: Summary, floors: dict[str, float]) -> None:
    assert summary.right >= floors["right"] * summary.answerable, summary
    assert summary.abstained >= floors["abstained"] * summary.unanswerable, summary
    assert summary.false_refusals <= floors["false_refusals"] * summary.answerable, summary


def test_news_test_split_floors(news_test_service: StorybotService) -> None:
    question_set = load_question_set(NEWS_TEST / "questions.jsonl")
    _assert_floors(summarise(run_eval(news_test_service, question_set.cases)), NEWS_FLOORS)


def test_near_miss_questions_are_refused(news_test_service: StorybotService) -> None:
    question_set = load_question_set(NEAR_MISS)
    summary = summarise(run_eval(news_test_service, question_set.cases))
    assert summary.unanswerable == len(question_set.cases) >= 60
    assert summary.abstained >= NEAR_MISS_FLOOR * summary.unanswerable, summary


@pytest.mark.skipif(not SQUAD_SAMPLE.exists(), reason="the SQuAD data lives in ../shared, beside the repository")
def test_squad_test_articles_floors(tmp_path: Path, news_test_service: StorybotService) -> None:
    question_set = load_question_set(SQUAD_SAMPLE, split="test")
    service = service_for(question_set, news_test_service, tmp_path / "squad")
    # Every third question keeps the suite fast; the rates are those of the whole set within a few points.
    _assert_floors(summarise(run_eval(service, question_set.cases[::3])), SQUAD_FLOORS)


@pytest.mark.skipif(not SQUAD2_DEV.exists(), reason="the SQuAD data lives in ../shared, beside the repository")
def test_squad2_test_articles_floors(tmp_path: Path, news_test_service: StorybotService) -> None:
    full = load_question_set(SQUAD2_DEV, split="test")
    question_set = load_question_set(SQUAD2_DEV, split="test", titles=SQUAD2_FLOOR_ARTICLES)
    assert 0 < len(question_set.cases) < len(full.cases)
    service = service_for(question_set, news_test_service, tmp_path / "squad2")
    _assert_floors(summarise(run_eval(service, question_set.cases)), SQUAD2_FLOORS)
