"""The optional reranker: a sentence-transformers CrossEncoder that rescores the best candidate sentences.

None ships offline, so it is off by default (STORYBOT_RERANKER_MODEL). A cross-encoder reads the
question and each sentence together, which judges relevance better than comparing two embeddings,
at the cost of one model pass per candidate.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from bot.indexing.embedding import load_sentence_transformers_model


class Reranker(Protocol):
    name: str

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance of each text to the question, in [0, 1]."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a path or a hub name, on the CPU."""

    def __init__(self, model: str) -> None:
        self.name = model
        self._model = load_sentence_transformers_model("CrossEncoder", model, "reranker model")
        self._lock = threading.Lock()  # one tokenizer, many chat threads: see SentenceTransformerEmbedder

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            predictions = self._model.predict([(question, text) for text in texts], show_progress_bar=False)
        raw = np.asarray(predictions, dtype=np.float32).reshape(len(texts), -1)[:, 0]
        # Some cross-encoders return probabilities, others logits: bring both to [0, 1].
        if raw.min() < 0.0 or raw.max() > 1.0:
            raw = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
        return raw
