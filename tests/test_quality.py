"""Floors on the held-out question sets, answered by the real model, reader and scorer.

These sets were never used for training or tuning (see README "Evaluation"): the news test split was
written blind, and the SQuAD test articles are unseen by the reader. The tests check rates, never
which questions pass; the figures themselves are reported by `storybot eval`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import load_question_set, run_eval, service_for, summarise
from bot.indexing.embedding import SentenceTransformerEmbedder
from bot.service import StorybotService

from .conftest import DATA, ROOT, make_settings

NEWS_TEST = DATA / "news_test"
SQUAD_SAMPLE = ROOT.parent / "shared" / "data" / "squad2-train-sample" / "train-sample.json"
# Floors a few points under what the shipped reader and scorer measured on these sets (README "Evaluation",
# run 6: news test 71% right, 35% of unanswerable refused, 10% false refusals; SQuAD test 65%, 3%, 2%). They
# catch a regression; they are not the targets, which are not reached yet. SQuAD's abstention floor
# fell from 5% with run 5: most of its refusals had come from a retrieval rule that refused answerable
# questions as often (see the README); the half set used here refuses 2 of its 96.
NEWS_FLOORS = {"right": 0.64, "abstained": 0.28, "false_refusals": 0.15}
SQUAD_FLOORS = {"right": 0.58, "abstained": 0.01, "false_refusals": 0.06}


def _service(tmp_path: Path, corpus: Path, embedder: SentenceTransformerEmbedder) -> StorybotService:
    return StorybotService.load(make_settings(tmp_path, corpus=corpus), embedder)


def test_news_test_split_floors(tmp_path: Path, real_embedder: SentenceTransformerEmbedder) -> None:
    service = _service(tmp_path, NEWS_TEST / "corpus", real_embedder)
    question_set = load_question_set(NEWS_TEST / "questions.jsonl")
    summary = summarise(run_eval(service, question_set.cases))
    assert summary.right >= NEWS_FLOORS["right"] * summary.answerable, summary
    assert summary.abstained >= NEWS_FLOORS["abstained"] * summary.unanswerable, summary
    assert summary.false_refusals <= NEWS_FLOORS["false_refusals"] * summary.answerable, summary


@pytest.mark.skipif(not SQUAD_SAMPLE.exists(), reason="the SQuAD sample lives in ../shared, beside the repository")
def test_squad_test_articles_floors(tmp_path: Path, real_embedder: SentenceTransformerEmbedder) -> None:
    question_set = load_question_set(SQUAD_SAMPLE, split="test")
    base = _service(tmp_path / "seed", ROOT / "corpus", real_embedder)
    service = service_for(question_set, base, tmp_path / "squad")
    # Every second question keeps the suite fast; the rates are those of the whole set within a few points.
    summary = summarise(run_eval(service, question_set.cases[::2]))
    assert summary.right >= SQUAD_FLOORS["right"] * summary.answerable, summary
    assert summary.abstained >= SQUAD_FLOORS["abstained"] * summary.unanswerable, summary
    assert summary.false_refusals <= SQUAD_FLOORS["false_refusals"] * summary.answerable, summary
