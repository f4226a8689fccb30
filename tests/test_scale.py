"""The scale benchmark: its generated corpus (deterministic, seed verbatim, no seed sentence elsewhere) and one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.scale import ARTICLE_NAME, load_donors, prepare_corpus, source_files
from bot.indexing.chunking import chunk_document
from bot.indexing.corpus import parse_document, read_corpus

from .conftest import DATA, SEED_ARTICLE, SEED_CORPUS, make_settings


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def _seed_sentences() -> list[str]:
    """The seed's sentences as the index holds them (header lines included), whitespace flattened."""
    seed = parse_document(SEED_ARTICLE.name, SEED_ARTICLE.read_text(encoding="utf-8"))
    _, sentences = chunk_document(seed, 500)
    return [" ".join(sentence.text.split()) for sentence in sentences]


@pytest.mark.parametrize("articles", [5, 30])
def test_the_corpus_is_deterministic_with_the_seed_verbatim(tmp_path: Path, articles: int) -> None:
    first = prepare_corpus(articles, SEED_CORPUS, tmp_path / "first" / "corpus")
    second = prepare_corpus(articles, SEED_CORPUS, tmp_path / "second" / "corpus")
    files = _files(first.directory)
    assert files == _files(second.directory)
    assert sorted(files) == sorted([SEED_ARTICLE.name] + [ARTICLE_NAME.format(n) for n in range(1, articles)])
    assert files[SEED_ARTICLE.name] == SEED_ARTICLE.read_bytes()
    assert first.seed_names == (SEED_ARTICLE.name,)
    corpus = read_corpus(first.directory)
    assert len(corpus.documents) == articles and not corpus.skipped  # every file reads as an article


def test_a_smaller_corpus_is_the_start_of_a_larger_one(tmp_path: Path) -> None:
    small = _files(prepare_corpus(5, SEED_CORPUS, tmp_path / "5" / "corpus").directory)
    large = _files(prepare_corpus(30, SEED_CORPUS, tmp_path / "30" / "corpus").directory)
    assert small == {name: large[name] for name in small}


def test_no_other_article_holds_a_sentence_of_the_seed(tmp_path: Path) -> None:
    seed_sentences = _seed_sentences()
    donors = load_donors(source_files(), seed_sentences)
    # Past the donors' count: every donor appears verbatim once, and shuffled variants follow.
    corpus = prepare_corpus(len(donors) + 20, SEED_CORPUS, tmp_path / "corpus")
    for path in sorted(corpus.directory.iterdir()):
        if path.name == SEED_ARTICLE.name:
            continue
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert not [sentence for sentence in seed_sentences if sentence in text], path.name


def test_a_donor_loses_exactly_the_seed_sentences(tmp_path: Path) -> None:
    seed_sentences = _seed_sentences()
    copy_of_seed = DATA / "news_test" / "corpus" / SEED_ARTICLE.name
    assert copy_of_seed.read_bytes() == SEED_ARTICLE.read_bytes()  # a copy of the seed among the sources
    assert load_donors([copy_of_seed], seed_sentences) == []
    eu_sentence = next(sentence for sentence in seed_sentences if sentence.startswith("The EU and the G7"))
    quoting = tmp_path / "quoting.txt"
    quoting.write_text(
        "Harbour reopens after the storm\n\n"
        "The harbour of Port Alder reopened on Monday after ten days of repairs to its storm-damaged quay. "
        f"As one report put it: {eu_sentence} The ferries ran to time.\n",
        encoding="utf-8",
    )
    [donor] = load_donors([quoting], seed_sentences)
    sentences = [sentence for paragraph in donor.paragraphs for sentence in paragraph]
    assert donor.header == ("Harbour reopens after the storm",)
    assert sentences[-1] == "The ferries ran to time." and len(sentences) == 2


def test_a_cached_corpus_is_reused_and_a_changed_one_made_again(tmp_path: Path) -> None:
    directory = tmp_path / "corpus"
    made = prepare_corpus(5, SEED_CORPUS, directory)
    files = _files(directory)
    assert not made.reused and prepare_corpus(5, SEED_CORPUS, directory).reused
    (directory / ARTICLE_NAME.format(2)).write_text("left changed by a run that was killed\n", encoding="utf-8")
    again = prepare_corpus(5, SEED_CORPUS, directory)
    assert not again.reused and _files(directory) == files


def test_bench_scale_prints_one_row_and_leaves_the_users_index_alone(tmp_path: Path, cli) -> None:
    settings = make_settings(tmp_path)
    scale_dir = tmp_path / "scale"
    result = cli(["bench", "--scale", "3", "--scale-dir", str(scale_dir), "--rounds", "1"], settings)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ") and lines[1].split()[:2] == ["articles", "chunks+sentences"]
    row = lines[2].split()
    assert len(row) == 17 and row[0] == "3" and row[2].startswith("(")  # texts, then (distinct texts)
    assert row[-5].endswith("/15") and row[-4].endswith("/5")  # needle over dev.jsonl's answerable, refusals
    in_story, asked_back = row[-3].split(","), row[-2]  # the same, asked within the seed's story
    assert in_story[0].endswith("/15") and in_story[1].endswith("/5") and asked_back.isdigit()
    assert row[-1] == "exact"  # a few texts: flat search, no recall to report
    assert not lines[3].strip()[:1].isdigit()  # one row, then the notes
    assert "N=3: cold start" in result.stderr  # progress goes to stderr
    assert (scale_dir / "3" / "corpus" / SEED_ARTICLE.name).is_file() and (scale_dir / "3" / "index").is_dir()
    assert not settings.index_dir.exists()  # the user's index is neither built nor touched
