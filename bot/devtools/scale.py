"""`storybot bench --scale N`: a deterministic corpus of N articles around the seed, and what storybot costs on it.

The corpus: the seed article(s) verbatim, then real prose (our news articles and the SQuAD sample's Wikipedia
paragraphs, a few paragraphs to an article) and sentence-shuffled variants of it, in the file format of
corpus/. No sentence of the seed is ever copied into another article, so a question about the seed that is
answered from the seed shows that the seed was found among N articles (the needle test).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.answering.answer import Answer
from bot.config import Settings
from bot.devtools.bench import _timed_child, machine
from bot.devtools.stats import percentile
from bot.errors import ConfigError, CorpusError
from bot.evaluation import EvalCase, holds, load_jsonl
from bot.indexing.chunking import chunk_document, split_sentences
from bot.indexing.corpus import corpus_files, parse_document, read_corpus, story_key
from bot.indexing.embedding import Embedder, ProgressCallback, SentenceTransformerEmbedder
from bot.indexing.store import VectorStore
from bot.service import StorybotService, rebuild_index
from bot.squad import load_squad

Say = Callable[[str], None]

ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_SOURCES = (
    ROOT / "tests" / "data" / "news_train" / "corpus",
    ROOT / "tests" / "data" / "news_test" / "corpus",
    ROOT / "tests" / "data" / "fixture_corpus",
)
SQUAD_SAMPLE = ROOT.parent / "shared" / "data" / "squad2-train-sample" / "train-sample.json"
DEV_QUESTIONS = ROOT / "tests" / "data" / "dev.jsonl"

# Bump when the generated text changes, so cached corpora are made again.
GENERATOR_VERSION = "1"
RANDOM_SEED = 20211215
ARTICLE_NAME = "scale-{:06d}.txt"
MANIFEST = "scale-corpus.json"  # beside the corpus folder, not in it: it is not an article
# A first body paragraph shorter than this may be read as a header line (an outlet), not as the article.
MIN_FIRST_PARAGRAPH_WORDS = 12
SQUAD_PARAGRAPHS_PER_ARTICLE = (3, 6)
SENTENCES_PER_PARAGRAPH = (2, 5)
COLD_RUNS = 3  # cold-start processes per row, fewer when fewer rounds are asked for (a quick run)
APPENDED_SENTENCE = "The scale benchmark appended this sentence to time the rebuild after one article changed."


# -- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Donor:
    """An article whose prose generated articles reuse: its header lines, and its paragraphs as sentences."""

    header: tuple[str, ...]
    paragraphs: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ScaleCorpus:
    directory: Path
    articles: int
    seed_names: tuple[str, ...]
    reused: bool  # found complete in the cache rather than generated now


def _flat(text: str) -> str:
    return " ".join(text.split())


def _article_parts(text: str, name: str) -> tuple[list[str], list[list[str]]]:
    """An article file's header lines and its paragraphs as lists of sentences, whitespace flattened."""
    document = parse_document(name, text)
    header = [_flat(text[line.start : line.end]) for line in document.header_lines]
    paragraphs = [
        [_flat(text[span.start : span.end]) for span in split_sentences(text, paragraph.start, paragraph.end)]
        for paragraph in document.paragraphs
    ]
    return header, paragraphs


def article_sentences(text: str, name: str = "article.txt") -> list[str]:
    """The header lines and body sentences of an article file, whitespace flattened."""
    header, paragraphs = _article_parts(text, name)
    return header + [sentence for paragraph in paragraphs for sentence in paragraph]


def _without_seed(sentences: Sequence[str], seed_sentences: Sequence[str]) -> tuple[str, ...]:
    # Containment, not equality: a donor sentence that quotes a seed sentence would carry its fact too.
    return tuple(s for s in sentences if not any(seed in s for seed in seed_sentences))


def _donor(header: Sequence[str], paragraphs: Sequence[Sequence[str]], seed_sentences: Sequence[str]) -> Donor | None:
    """A donor with the seed's sentences left out and a first paragraph long enough to read as body; or None."""
    kept_header = _without_seed(header, seed_sentences)
    kept = [p for p in (_without_seed(paragraph, seed_sentences) for paragraph in paragraphs) if p]
    if not kept_header or not kept:
        return None
    while len(kept) > 1 and len(" ".join(kept[0]).split()) < MIN_FIRST_PARAGRAPH_WORDS:
        kept[0:2] = [kept[0] + kept[1]]
    if len(" ".join(kept[0]).split()) < MIN_FIRST_PARAGRAPH_WORDS:
        return None
    return Donor(tuple(kept_header), tuple(kept))


def _news_donor(path: Path, seed_sentences: Sequence[str]) -> Donor | None:
    return _donor(*_article_parts(path.read_text(encoding="utf-8"), path.name), seed_sentences)


def _squad_donors(path: Path, seed_sentences: Sequence[str], rng: random.Random) -> list[Donor]:
    """The SQuAD sample's paragraphs, a few consecutive ones to an article, titled by their Wikipedia title."""
    donors = []
    for article in load_squad(path):
        title = article.title.replace("_", " ")
        paragraphs = [
            [_flat(context[s.start : s.end]) for s in split_sentences(context)] for context in article.paragraphs
        ]
        start = 0
        while start < len(paragraphs):
            size = rng.randint(*SQUAD_PARAGRAPHS_PER_ARTICLE)
            donor = _donor([title], paragraphs[start : start + size], seed_sentences)
            if donor:
                donors.append(donor)
            start += size
    return donors


def source_files(squad_file: Path | None = SQUAD_SAMPLE) -> list[Path]:
    """The files the generated prose comes from (those present), in a fixed order."""
    files = [path for folder in NEWS_SOURCES for path in corpus_files(folder)]
    if squad_file is not None and squad_file.is_file():
        files.append(squad_file)
    return files


def load_donors(sources: Sequence[Path], seed_sentences: Sequence[str]) -> list[Donor]:
    """Every donor article of the source files; the same sources always give the same donors in the same order."""
    rng = random.Random(RANDOM_SEED)
    donors: list[Donor] = []
    for path in sources:
        if path.suffix == ".json":
            donors += _squad_donors(path, seed_sentences, rng)
        elif donor := _news_donor(path, seed_sentences):
            donors.append(donor)
    return donors


def _render(donor: Donor) -> str:
    """The corpus file format: header lines, a blank line, then paragraphs separated by blank lines."""
    body = "\n\n".join(" ".join(paragraph) for paragraph in donor.paragraphs)
    return "\n".join(donor.header) + "\n\n" + body + "\n"


def _shuffled(donor: Donor, rng: random.Random) -> Donor:
    """The donor's sentences in a new order, regrouped into paragraphs of a few sentences."""
    sentences = [sentence for paragraph in donor.paragraphs for sentence in paragraph]
    rng.shuffle(sentences)
    paragraphs: list[tuple[str, ...]] = []
    while sentences:
        size = rng.randint(*SENTENCES_PER_PARAGRAPH)
        if not paragraphs:  # the first paragraph must read as body, not as a header line
            while size < len(sentences) and len(" ".join(sentences[:size]).split()) < MIN_FIRST_PARAGRAPH_WORDS:
                size += 1
        paragraphs.append(tuple(sentences[:size]))
        del sentences[:size]
    return Donor(donor.header, tuple(paragraphs))


def generated_article(number: int, donors: Sequence[Donor]) -> str:
    """Generated article `number` (1-based): the donors verbatim in a fixed shuffled order, then shuffled variants.

    Each article depends on its number alone, so the corpus of N articles is the start of the corpus of N + 1.
    """
    order = list(range(len(donors)))
    random.Random(RANDOM_SEED).shuffle(order)
    if number <= len(donors):
        return _render(donors[order[number - 1]])
    rng = random.Random(RANDOM_SEED * 1_000_003 + number)
    return _render(_shuffled(donors[rng.randrange(len(donors))], rng))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_corpus(articles: int, seed_dir: Path, directory: Path, sources: Sequence[Path]) -> list[str]:
    """Write the corpus of `articles` files into the new folder `directory`; returns the seed files' names."""
    seeds = corpus_files(seed_dir)
    if not seeds:
        raise CorpusError(f"the corpus directory {seed_dir} holds no article to use as the seed")
    if articles < len(seeds):
        raise ConfigError(f"{articles} article(s) cannot hold the {len(seeds)} seed articles of {seed_dir}")
    seed_sentences = [s for path in seeds for s in article_sentences(path.read_text(encoding="utf-8"), path.name)]
    donors = load_donors(sources, seed_sentences) if articles > len(seeds) else []
    if articles > len(seeds) and not donors:
        raise CorpusError("no source articles for the scale corpus (tests/data and the SQuAD sample are missing)")
    directory.mkdir(parents=True)
    for path in seeds:
        shutil.copyfile(path, directory / path.name)
    for number in range(1, articles - len(seeds) + 1):
        (directory / ARTICLE_NAME.format(number)).write_text(generated_article(number, donors), encoding="utf-8")
    return [path.name for path in seeds]


def _fingerprint(articles: int, seed_dir: Path, sources: Sequence[Path]) -> dict[str, object]:
    """What a cached corpus was made from: when any of it changes, the corpus is made again."""
    seeds = {path.name: _sha256(path.read_bytes()) for path in corpus_files(seed_dir)}
    # By content and order alone, so a moved checkout keeps its cache.
    sources_sha256 = [_sha256(path.read_bytes()) for path in sources]
    return {"generator": GENERATOR_VERSION, "articles": articles, "seeds": seeds, "sources": sources_sha256}


def _file_hashes(directory: Path) -> dict[str, str]:
    return {path.name: _sha256(path.read_bytes()) for path in sorted(directory.iterdir())}


def prepare_corpus(
    articles: int, seed_dir: Path, directory: Path, sources: Sequence[Path] | None = None
) -> ScaleCorpus:
    """The scale corpus in `directory`: reused when complete and unchanged, else generated afresh."""
    sources = source_files() if sources is None else sources
    manifest_path = directory.parent / MANIFEST
    fingerprint = _fingerprint(articles, seed_dir, sources)
    if directory.is_dir() and manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        # The files are checked too: a run killed mid-benchmark may have left one article changed.
        if manifest.get("made_from") == fingerprint and manifest.get("files") == _file_hashes(directory):
            return ScaleCorpus(directory, articles, tuple(manifest["seeds"]), reused=True)
    manifest_path.unlink(missing_ok=True)
    # Written beside the target and renamed, so a corpus folder is never half written.
    partial = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    seeds = write_corpus(articles, seed_dir, partial, sources)
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    manifest = {"made_from": fingerprint, "seeds": seeds, "files": _file_hashes(directory)}
    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return ScaleCorpus(directory, articles, tuple(seeds), reused=False)


# -- the benchmark ----------------------------------------------------------------------------


def cold_runs_for(rounds: int) -> int:
    """Cold-start processes per row: COLD_RUNS, or one per round when fewer rounds are asked for."""
    return max(1, min(COLD_RUNS, rounds))


@dataclass(frozen=True)
class ScaleRow:
    """What storybot costs on a corpus of `articles` articles."""

    articles: int
    chunks: int
    sentences: int
    full_rebuild_s: float | None  # None: not timed (--no-full-rebuild and an index was there)
    one_file_rebuild_s: float | None  # None: no article but the seed to change
    restore_rebuild_s: float | None  # the rebuild after the changed article is put back
    encode_floor_s: float | None  # None: not measured (no full rebuild to compare it with)
    cold_start_s: float
    warm_p50_ms: float
    warm_p95_ms: float
    ask_rss_mib: float
    index_mib: float
    needle: tuple[int, int]  # answerable questions answered from the seed with an expected phrase, of all
    refusals: tuple[int, int]  # unanswerable questions refused, of all
    distinct_texts: int = 0  # what a rebuild embeds: each distinct text once
    # The same questions asked within the seed's story: (needle, refusals); None when the seed has no story key.
    in_story: tuple[tuple[int, int], tuple[int, int]] | None = None
    asked_back: tuple[str, ...] = ()  # questions answered, unscoped, with "Which story do you mean?"
    recall_at_10: float | None = None  # of the sentence store's search against exact search; None: flat (exact)


def corpus_texts(corpus_dir: Path, chunk_max_chars: int) -> tuple[list[str], int, int]:
    """Exactly the texts a rebuild embeds (chunks, then sentences), with the counts of each."""
    chunk_texts: list[str] = []
    sentence_texts: list[str] = []
    for document in read_corpus(corpus_dir).documents:
        chunks, sentences = chunk_document(document, chunk_max_chars, len(chunk_texts), len(sentence_texts))
        chunk_texts += [chunk.text for chunk in chunks]
        sentence_texts += [sentence.text for sentence in sentences]
    return chunk_texts + sentence_texts, len(chunk_texts), len(sentence_texts)


def _progress(say: Say, label: str, every_seconds: float = 30.0) -> ProgressCallback:
    """A rebuild progress callback that says how far the embedding got, at most once every `every_seconds`."""
    started = last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_seconds and done:
            rate = done / (now - started)
            say(
                f"{label}: embedded {done:,} of {total:,} texts ({done / total:.0%}, {rate:.0f} texts/s, "
                f"about {(total - done) / rate / 60:.0f} min left)"
            )
            last = now

    return progress


def _timed_rebuild(settings: Settings, embedder: Embedder, say: Say, label: str) -> float:
    say(f"{label}...")
    started = time.perf_counter()
    rebuild_index(settings, embedder, _progress(say, label))
    seconds = time.perf_counter() - started
    say(f"{label}: {seconds:.2f}s")
    return seconds


def _one_file_rebuild(settings: Settings, corpus: ScaleCorpus, embedder: Embedder, say: Say) -> tuple[float, float]:
    """Seconds to rebuild after one sentence is appended to one article, and after it is taken out again."""
    target = corpus.directory / ARTICLE_NAME.format(corpus.articles - len(corpus.seed_names))
    original = target.read_bytes()
    try:
        target.write_bytes(original.rstrip(b"\n") + b"\n\n" + APPENDED_SENTENCE.encode() + b"\n")
        changed_s = _timed_rebuild(settings, embedder, say, f"N={corpus.articles}: rebuild after {target.name} changed")
    finally:
        target.write_bytes(original)  # even on Ctrl-C: the cached corpus must stay the generated one
    restored_s = _timed_rebuild(settings, embedder, say, f"N={corpus.articles}: rebuild after it is restored")
    return changed_s, restored_s


def needle_counts(
    cases: Sequence[EvalCase], answers: Sequence[Answer], seed_names: Sequence[str]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(answered from the seed with an expected phrase, answerable) and (refused, unanswerable)."""
    found = answerable = refused = unanswerable = 0
    for case, answer in zip(cases, answers, strict=True):
        if case.expect is None:
            unanswerable += 1
            refused += not answer.answered
            continue
        answerable += 1
        from_seed = bool(answer.citations) and answer.citations[0].doc in seed_names
        found += answer.answered and from_seed and holds(answer.shown.sentence or answer.text, case.expect)
    return (found, answerable), (refused, unanswerable)


def _directory_mib(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / 2**20


def _has_index(index_dir: Path) -> bool:
    return index_dir.is_dir() and any(index_dir.iterdir())


def bench_one(
    settings: Settings,
    articles: int,
    folder: Path,
    cases: Sequence[EvalCase],
    rounds: int,
    time_full_rebuild: bool,
    embedder: SentenceTransformerEmbedder,
    say: Say,
) -> ScaleRow:
    """Every measurement of one row, on the corpus and index in `folder` (made or reused)."""
    label = f"N={articles}"
    started = time.perf_counter()
    corpus = prepare_corpus(articles, settings.corpus_dir, folder / "corpus")
    how = "reused from the cache" if corpus.reused else "generated"
    say(f"{label}: corpus {how} in {time.perf_counter() - started:.2f}s ({corpus.directory})")
    # Its own index and data folders: the user's index is never touched.
    scale_settings = settings.model_copy(
        update={"corpus_dir": corpus.directory, "index_dir": folder / "index", "data_dir": folder / "data"}
    )
    index_dir = scale_settings.index_dir

    full_rebuild_s = None
    if time_full_rebuild or not _has_index(index_dir):
        shutil.rmtree(index_dir, ignore_errors=True)  # from nothing: a rebuild may reuse what an index holds
        full_rebuild_s = _timed_rebuild(scale_settings, embedder, say, f"{label}: full rebuild")
    one_file_s = restore_s = None
    if corpus.articles > len(corpus.seed_names):
        one_file_s, restore_s = _one_file_rebuild(scale_settings, corpus, embedder, say)

    texts, chunks, sentences = corpus_texts(corpus.directory, scale_settings.chunk_max_chars)
    # A rebuild embeds each distinct text once (shuffled variants share sentences), so the floor is one
    # plain encode of the distinct texts. Without a timed full rebuild there is nothing to compare it with.
    distinct = list(dict.fromkeys(texts))
    encode_floor_s = None
    if full_rebuild_s is not None:
        say(f"{label}: encode floor, one encode call over the {len(distinct):,} distinct texts...")
        started = time.perf_counter()
        # The model's own batching sorts the texts by length, so a batch pads little: the floor for this work.
        embedder._model.encode(distinct, batch_size=32, show_progress_bar=False, convert_to_numpy=True)
        encode_floor_s = time.perf_counter() - started
        say(f"{label}: encode floor: {encode_floor_s:.2f}s")

    say(f"{label}: warm answers, {rounds} round(s) of {len(cases)} questions...")
    service = StorybotService.load(scale_settings, embedder)  # rebuilds only if the index is stale
    for case in cases[:3]:
        service.ask(case.question)
    answer_times: list[float] = []
    answers: list[Answer] = []
    for round_number in range(rounds):
        for case in cases:
            started = time.perf_counter()
            answer = service.ask(case.question)
            answer_times.append(time.perf_counter() - started)
            if round_number == 0:
                answers.append(answer)
    needle, refusals = needle_counts(cases, answers, corpus.seed_names)
    seed_key = story_key(corpus.seed_names[0])
    in_story = None
    if seed_key is not None:
        scoped = [service.ask(case.question, story=seed_key) for case in cases]
        in_story = needle_counts(cases, scoped, corpus.seed_names)
    queries = embedder.encode([case.question for case in cases] + distinct[:: max(1, len(distinct) // 200)])
    recall = vector_recall(service.index.sentence_vectors, queries)
    del service  # its index is not needed any more: free it before the next, larger corpus

    cold_runs = cold_runs_for(rounds)
    say(f"{label}: cold start, {cold_runs} process(es)...")
    env = {
        **os.environ,
        "STORYBOT_CORPUS_DIR": str(corpus.directory.resolve()),
        "STORYBOT_INDEX_DIR": str(index_dir.resolve()),
        "STORYBOT_DATA_DIR": str(scale_settings.data_dir.resolve()),
        "STORYBOT_EMBEDDING_MODEL": settings.embedding_model,
        "STORYBOT_READER_MODEL": settings.reader_model,
        "STORYBOT_CHUNK_MAX_CHARS": str(settings.chunk_max_chars),
    }
    cold = [_timed_child([sys.executable, "-m", "bot", "ask", cases[0].question], env) for _ in range(cold_runs)]

    return ScaleRow(
        articles=articles,
        chunks=chunks,
        sentences=sentences,
        full_rebuild_s=full_rebuild_s,
        one_file_rebuild_s=one_file_s,
        restore_rebuild_s=restore_s,
        encode_floor_s=encode_floor_s,
        cold_start_s=statistics.median(seconds for seconds, _ in cold),
        warm_p50_ms=percentile(answer_times, 0.5) * 1000,
        warm_p95_ms=percentile(answer_times, 0.95) * 1000,
        ask_rss_mib=max(rss for _, rss in cold),
        index_mib=_directory_mib(index_dir),
        needle=needle,
        refusals=refusals,
        distinct_texts=len(distinct),
        recall_at_10=recall,
        in_story=in_story,
        asked_back=tuple(answer.question for answer in answers if answer.stories),
    )


def vector_recall(store: VectorStore, queries: np.ndarray, k: int = 10) -> float | None:
    """Share of the exact top-k (by inner product over every stored vector) that the store's search returns;
    None for an exact store."""
    if store.describe()["type"] == "flat":
        return None
    ids, vectors = store.all_vectors()
    found = 0
    for query in queries:
        exact = set(ids[np.argsort(-(vectors @ query), kind="stable")[:k]].tolist())
        found += len(exact & {i for i, _ in store.search(query, k)})
    return found / (k * len(queries))


COLUMNS = (
    "articles",
    "chunks+sentences (distinct)",
    "full rebuild s",
    "1-file rebuild s",
    "encode floor s",
    "rebuild/floor",
    "cold start s",
    "warm p50 ms",
    "warm p95 ms",
    "ask RSS MiB",
    "index MiB",
    "needle",
    "refusals",
    "in story",
    "asked back",
    "recall@10",
)


def _cells(row: ScaleRow) -> list[str]:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    ratio = (
        "-"
        if row.full_rebuild_s is None or not row.encode_floor_s
        else f"{row.full_rebuild_s / row.encode_floor_s:.2f}x"
    )
    return [
        f"{row.articles:,}",
        f"{row.chunks:,}+{row.sentences:,} ({row.distinct_texts:,})",
        seconds(row.full_rebuild_s),
        seconds(row.one_file_rebuild_s),
        seconds(row.encode_floor_s),
        ratio,
        seconds(row.cold_start_s),
        f"{row.warm_p50_ms:.1f}",
        f"{row.warm_p95_ms:.1f}",
        f"{row.ask_rss_mib:.0f}",
        f"{row.index_mib:.1f}",
        f"{row.needle[0]}/{row.needle[1]}",
        f"{row.refusals[0]}/{row.refusals[1]}",
        "-" if row.in_story is None else "{}/{},{}/{}".format(*row.in_story[0], *row.in_story[1]),
        str(len(row.asked_back)),
        "exact" if row.recall_at_10 is None else f"{row.recall_at_10:.3f}",
    ]


def format_table(rows: Sequence[ScaleRow]) -> str:
    """One right-aligned row per corpus size under a header line."""
    lines = [list(COLUMNS)] + [_cells(row) for row in rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines)


def _notes(rows: Sequence[ScaleRow], questions: Path, cases: Sequence[EvalCase], rounds: int) -> list[str]:
    timed = [f"{row.articles:,}" for row in rows if row.full_rebuild_s is not None]
    untimed = [f"{row.articles:,}" for row in rows if row.full_rebuild_s is None]
    notes = []
    if timed:
        notes.append(
            f"full rebuild (N = {', '.join(timed)}): rebuild_index in this process, model loaded, into an empty "
            "index folder, no embedding cache: every distinct text embedded once, longest first, in groups of 4,096"
        )
    if untimed:
        notes.append(
            f"full rebuild (N = {', '.join(untimed)}): not timed (asked to reuse the index): it was embedded by an "
            "earlier run (loading it rebuilds it only if the corpus changed since)"
        )
    restores = ", ".join(
        f"N={row.articles:,}: {row.restore_rebuild_s:.2f}s" for row in rows if row.restore_rebuild_s is not None
    )
    notes += [
        "1-file rebuild: one sentence appended to the last generated article, then rebuild_index; the article is "
        f"restored and the index rebuilt again afterwards ({restores or 'none'}); '-': no article but the seed",
        "encode floor: one SentenceTransformer.encode(texts, batch_size=32) call over the distinct chunk and "
        "sentence texts the index embeds (a rebuild embeds each distinct text once; sentence-transformers sorts them "
        "by length); measured only beside a timed full rebuild",
        "recall@10: of the sentence store's search against exact search over all its vectors, for the questions and "
        "200 of the corpus's texts as queries; 'exact': flat search",
        f"cold start: median of {cold_runs_for(rounds)} `python -m bot ask {cases[0].question!r}` processes, "
        "index built; "
        "ask RSS: the largest peak RSS among them",
        f"warm: service.ask in this process over the {len(cases)} questions of {questions.name}, {rounds} round(s) "
        "after a warm-up",
        "needle: answerable questions answered from the seed article with an expected phrase; refusals: "
        "unanswerable questions refused",
        "in story: needle and refusals with every question asked within the seed's story (ask --story KEY); "
        'asked back: questions answered unscoped with "Which story do you mean?" (counted as not found above)',
    ]
    for row in rows:
        if row.asked_back:
            notes.append(f"asked back at N={row.articles:,}: " + "; ".join(repr(q) for q in row.asked_back))
    return notes


def run_scale_bench(
    settings: Settings,
    sizes: Sequence[int],
    scale_dir: Path,
    questions_path: Path | None,
    rounds: int,
    time_full_rebuild: bool,
    say: Say,
) -> int:
    """Bench storybot on a generated corpus of each size; print one table with a row per size."""
    questions = questions_path or DEV_QUESTIONS
    cases = load_jsonl(questions)
    if not cases:
        raise ConfigError(f"{questions} holds no questions")
    from bot.indexing import embedding  # looked up at call time, so tests can share their loaded model

    load_before = os.getloadavg()[0]
    say("Loading the model...")
    embedder = embedding.SentenceTransformerEmbedder(settings.embedding_model)
    rows = [
        bench_one(settings, articles, scale_dir / str(articles), cases, rounds, time_full_rebuild, embedder, say)
        for articles in sizes
    ]
    # Other work on the same cores slows every column: the load average says whether there was any.
    print(f"machine: {machine()}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(format_table(rows))
    for note in _notes(rows, questions, cases, rounds):
        print(f"  {note}")
    return 0
