"""Floors on the held-out question sets, answered by the real model, reader and scorer.

These sets were never used for training or tuning (see docs/evaluation.md): the news test split was
written blind, and the SQuAD test articles are unseen by the reader. The tests check rates, never
which questions pass; the figures themselves are reported by `storybot eval`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import load_question_set, run_eval, summarise
from bot.indexing.embedding import SentenceTransformerEmbedder
from bot.service import StorybotService

from .conftest import DATA, make_settings
from .helpers import assert_floors

NEWS_TEST = DATA / "news_test"
NEAR_MISS = DATA / "near_miss" / "questions.jsonl"
# Floors a few points under what the shipped reader and scorer measured on these sets (measured with
# issue 18's stories merged): news 70 of 89 right, 13 of 31 refused, 9 false refusals; near misses 19 of
# 80 refused. They catch a regression: the shipped reader with its top two layers shuffled (`python -m
# bot.devtools.damage_reader`) fails each test: news 52 right, near misses 14 refused
# (docs/development.md). The SQuAD floors are in test_quality_squad.py, so the two run on different workers.
NEWS_FLOORS = {"right": 0.72, "abstained": 0.35, "false_refusals": 0.15}
# Issue 24's leg 1 refused 16 of the 80 near misses (under issue 17's 19) and the floor was lowered to
# 0.15 for it; leg 2 refuses 23 (run 9), so the floor is back above where that regression fell. Leg 2's
# reader damaged the same way fails both tests: news 57 right, near misses 5 refused.
NEAR_MISS_FLOOR = 0.22


def _service(tmp_path: Path, corpus: Path, embedder: SentenceTransformerEmbedder) -> StorybotService:
    return StorybotService.load(make_settings(tmp_path, corpus=corpus), embedder)


@pytest.fixture(scope="module")
def news_test_service(real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory):
    return _service(tmp_path_factory.mktemp("news-test"), NEWS_TEST / "corpus", real_embedder)


def test_news_test_split_floors(news_test_service: StorybotService) -> None:
    question_set = load_question_set(NEWS_TEST / "questions.jsonl")
    assert_floors(summarise(run_eval(news_test_service, question_set.cases)), NEWS_FLOORS)


def test_near_miss_questions_are_refused(news_test_service: StorybotService) -> None:
    question_set = load_question_set(NEAR_MISS)
    summary = summarise(run_eval(news_test_service, question_set.cases))
    assert summary.unanswerable == len(question_set.cases) >= 60
    assert summary.abstained >= NEAR_MISS_FLOOR * summary.unanswerable, summary
