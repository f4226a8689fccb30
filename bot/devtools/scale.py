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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.devtools.squad import load_squad
from bot.errors import ConfigError, CorpusError
from bot.indexing.chunking import split_sentences
from bot.indexing.corpus import corpus_files, parse_document

ROOT = Path(__file__).resolve().parent.parent.parent
NEWS_SOURCES = (
    ROOT / "tests" / "data" / "news_train" / "corpus",
    ROOT / "tests" / "data" / "news_test" / "corpus",
    ROOT / "tests" / "data" / "fixture_corpus",
)
SQUAD_SAMPLE = ROOT.parent / "shared" / "data" / "squad2-train-sample" / "train-sample.json"

# Bump when the generated text changes, so cached corpora are made again.
GENERATOR_VERSION = "1"
RANDOM_SEED = 20211215
ARTICLE_NAME = "scale-{:06d}.txt"
MANIFEST = "scale-corpus.json"  # beside the corpus folder, not in it: it is not an article
# A first body paragraph shorter than this may be read as a header line (an outlet), not as the article.
MIN_FIRST_PARAGRAPH_WORDS = 12
SQUAD_PARAGRAPHS_PER_ARTICLE = (3, 6)
SENTENCES_PER_PARAGRAPH = (2, 5)


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
