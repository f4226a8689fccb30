"""Floors on the SQuAD test articles, answered by the real model, reader and scorer.

The reader never trained on these articles (bot/squad.py splits by article). Fixed samples keep the
suite fast: their rates were measured against the whole splits' (docs/evaluation.md), and the floors sit
a few points under what the shipped reader measured on exactly these samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import load_question_set, run_eval, service_for, summarise
from bot.service import StorybotService

from .conftest import ROOT
from .helpers import assert_floors

SHARED_DATA = ROOT.parent / "shared" / "data"
SQUAD_SAMPLE = SHARED_DATA / "squad2-train-sample" / "train-sample.json"
SQUAD2_DEV = SHARED_DATA / "squad2-dev" / "dev-v2.0-33.json"
# Two of the seven SQuAD 2.0 test articles (the smallest, so their index builds fast).
SQUAD2_FLOOR_ARTICLES = ("Sky_(United_Kingdom)", "Black_Death")
# Measured with the shipped reader (issue 18's stories merged) on these samples: the sample's test
# articles, every twelfth question, 23 of 35 right, 5 of 23 refused, 1 false refusal (on all 690: 67.5%,
# 12.8%, 4.2%); the two SQuAD 2.0 articles, every second question, 102 of 113, 13 of 102, 2 (all 429:
# 87.5%, 11.3%, 2.3%). The shipped reader with its top two layers shuffled (`python -m
# bot.devtools.damage_reader`) fails both: 12 right with 11 false refusals, and 91 right with 8 false
# refusals. Fewer SQuAD 2.0 questions would leave the shipped reader a question or two above its floors
# (every fourth: 50 of 56 right against 44 damaged), too close for a test that runs on other CPUs.
SQUAD_FLOORS = {"right": 0.57, "abstained": 0.12, "false_refusals": 0.09}
SQUAD2_FLOORS = {"right": 0.85, "abstained": 0.06, "false_refusals": 0.05}


@pytest.mark.skipif(not SQUAD_SAMPLE.exists(), reason="the SQuAD data lives in ../shared, beside the repository")
def test_squad_test_articles_floors(tmp_path: Path, seed_service: StorybotService) -> None:
    question_set = load_question_set(SQUAD_SAMPLE, split="test")
    service = service_for(question_set, seed_service, tmp_path / "squad")
    assert_floors(summarise(run_eval(service, question_set.cases[::12])), SQUAD_FLOORS)


@pytest.mark.skipif(not SQUAD2_DEV.exists(), reason="the SQuAD data lives in ../shared, beside the repository")
def test_squad2_test_articles_floors(tmp_path: Path, seed_service: StorybotService) -> None:
    full = load_question_set(SQUAD2_DEV, split="test")
    question_set = load_question_set(SQUAD2_DEV, split="test", titles=SQUAD2_FLOOR_ARTICLES)
    assert 0 < len(question_set.cases) < len(full.cases)
    service = service_for(question_set, seed_service, tmp_path / "squad2")
    assert_floors(summarise(run_eval(service, question_set.cases[::2])), SQUAD2_FLOORS)
