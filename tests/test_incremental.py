"""Incremental builds: only new and changed articles are chunked and embedded, and the result is the same
index a build from scratch makes; the vector store follows the corpus size."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.answering.scorer import READER_CANDIDATES
from bot.config import Settings
from bot.errors import IndexError_
from bot.indexing import store as store_module
from bot.indexing.corpus import read_corpus
from bot.indexing.index import current_build, load_index, staleness
from bot.service import StorybotService, corpus_rules, rebuild_index

from .conftest import ROOT, FakeEmbedder

FIXTURES = ROOT / "tests" / "data" / "fixture_corpus"


def _with_fixtures(settings: Settings) -> Settings:
    for path in FIXTURES.iterdir():
        shutil.copy(path, settings.corpus_dir / path.name)
    return settings


def _content(settings: Settings) -> dict[str, list[tuple[str, int, int, int, str]]]:
    """Every article's sentences and chunks as (kind, paragraph, start, end, text): what answers are made of."""
    build_dir = current_build(settings.index_dir)
    assert build_dir is not None
    index = load_index(build_dir)
    found: dict[str, list[tuple[str, int, int, int, str]]] = {}
    for kind, rows in (("chunk", index.chunks), ("sentence", index.sentences)):
        for row in rows:
            found.setdefault(row.doc, []).append((kind, row.paragraph, row.start, row.end, row.text))
    return {doc: sorted(items) for doc, items in found.items()}


def test_editing_one_article_embeds_only_its_new_texts(settings: Settings) -> None:
    _with_fixtures(settings)
    first = rebuild_index(settings, FakeEmbedder())
    assert first.reused == 0 and first.embedded > 0
    article = settings.corpus_dir / "harbour-reopens.md"
    article.write_text(article.read_text() + "\nThe harbour master promised a second pier by the spring.\n")
    embedder = FakeEmbedder()
    second = rebuild_index(settings, embedder)
    assert second.index.manifest.incremental
    assert second.reused == len(first.index.documents) - 1
    # The new sentence, and the chunk that now holds it; the article's other texts come from the cache.
    assert 1 <= second.embedded <= 2
    incremental = _content(settings)
    rebuild_index(settings, FakeEmbedder(), full=True)
    assert _content(settings) == incremental
    service = StorybotService.load(settings, FakeEmbedder())
    assert any("second pier" in c.text for c in service.ask("What did the harbour master promise?").citations)


def test_removed_and_added_articles(settings: Settings) -> None:
    _with_fixtures(settings)
    rebuild_index(settings, FakeEmbedder())
    (settings.corpus_dir / "chess-final.md").unlink()
    shutil.copy(FIXTURES / "chess-final.md", settings.corpus_dir / "chess-again.md")
    report = rebuild_index(settings, FakeEmbedder())
    index = report.index
    assert "chess-final.md" not in index.documents and "chess-again.md" in index.documents
    assert report.embedded == 0  # the same texts under another name: all from the cache
    assert len(index.chunk_vectors) == len(index.chunks) and len(index.sentence_vectors) == len(index.sentences)
    ids = index.sentences.ids()
    assert set(index.sentence_vectors.ids().tolist()) == set(ids)
    assert staleness(index.manifest, settings.corpus_dir, "fake-embedder", 500, corpus_rules(settings)) is None


def test_staleness_reads_only_files_whose_size_or_mtime_changed(settings: Settings, monkeypatch) -> None:
    _with_fixtures(settings)
    index = rebuild_index(settings, FakeEmbedder()).index
    read: list[Path] = []
    from bot.indexing import corpus as corpus_module

    real_read = corpus_module._read_regular_file

    def counting(path: Path, max_bytes: int) -> bytes:
        read.append(path)
        return real_read(path, max_bytes)

    monkeypatch.setattr(corpus_module, "_read_regular_file", counting)
    assert staleness(index.manifest, settings.corpus_dir, "fake-embedder", 500, corpus_rules(settings)) is None
    assert read == []
    article = settings.corpus_dir / "flood-valeria.txt"
    article.write_text(article.read_text().replace("flood", "floods", 1))
    reason = staleness(index.manifest, settings.corpus_dir, "fake-embedder", 500, corpus_rules(settings))
    assert reason == "corpus changed (changed: flood-valeria.txt)" and [p.name for p in read] == ["flood-valeria.txt"]
    assert read_corpus(settings.corpus_dir, known=index.manifest.known_files()).unchanged == sorted(
        n for n in index.documents if n != "flood-valeria.txt"
    )


def test_store_kind_follows_corpus_size_and_answers_the_same(settings: Settings, monkeypatch) -> None:
    _with_fixtures(settings)
    flat = rebuild_index(settings, FakeEmbedder()).index
    assert flat.manifest.vectors["sentences.faiss"]["type"] == "flat"
    question = FakeEmbedder().encode(["When will the harbour reopen to fishing boats?"])[0]
    expected = [i for i, _ in flat.sentence_vectors.search(question, 5)]
    monkeypatch.setattr(store_module, "IVF_MIN_VECTORS", 10)
    monkeypatch.setattr(store_module, "IVF_PROBE_SHARE", 1.0)  # every list searched: exact, like flat
    article = settings.corpus_dir / "library-robot.txt"
    article.write_text(article.read_text() + "\nVolunteers will name the robot next week.\n")
    ivf = rebuild_index(settings, FakeEmbedder()).index  # grown past the threshold: the store changes kind
    assert ivf.manifest.vectors["sentences.faiss"]["type"] == "ivf"
    loaded = load_index(ivf.path) if ivf.path else ivf
    assert [i for i, _ in loaded.sentence_vectors.search(question, 5)] == expected
    ids = loaded.sentences.ids()
    assert np.allclose(np.linalg.norm(loaded.sentence_vectors.get(ids), axis=1), 1.0, atol=1e-3)


def _retrieved(service: StorybotService, questions: list[str]) -> list[list[str]]:
    """The sentences the reader reads for each question. The rest of the list is made of passages the fake
    embedder scores exactly alike (cosine 0), which FAISS and Qdrant may return in either order."""
    return [[s.sentence.text for s in service.retriever.search(q).sentences[:READER_CANDIDATES]] for q in questions]


QUESTIONS = [
    "When will the harbour reopen to fishing boats?",
    "What did Biden warn?",
    "Who won the chess final?",
    "What does the library robot do?",
]


def test_vectors_in_qdrant_answer_like_faiss_and_rebuild_incrementally(settings: Settings, tmp_path: Path) -> None:
    pytest.importorskip("qdrant_client")
    _with_fixtures(settings)
    faiss_service = StorybotService.load(settings, FakeEmbedder())
    engine = settings.model_copy(
        update={"index_dir": tmp_path / "engine-index", "vector_store_url": f"path:{tmp_path / 'qdrant'}"}
    )
    service = StorybotService.load(engine, FakeEmbedder())
    assert service.index.manifest.vectors["sentences.faiss"]["type"] == "qdrant"
    assert not list((service.index.path or tmp_path).glob("*.faiss"))  # the vectors are in the engine only
    assert _retrieved(service, QUESTIONS) == _retrieved(faiss_service, QUESTIONS)

    first_build = service.index.path
    article = settings.corpus_dir / "harbour-reopens.md"
    article.write_text(article.read_text() + "\nThe harbour master promised a second pier by the spring.\n")
    assert service.refresh_if_stale()  # an incremental build into copies of the collections, then the swap
    assert service.index.manifest.incremental and service.index.path != first_build
    assert any("second pier" in s.sentence.text for s in service.retriever.search("second pier").sentences)
    # The old build's collections went with its folder; a new process finds the new build's.
    from bot.indexing.qdrant_store import close_clients, open_qdrant

    close_clients()
    reloaded = StorybotService.load(engine, FakeEmbedder())
    assert reloaded.index.path == service.index.path and len(reloaded.index.sentence_vectors) == len(
        reloaded.index.sentences
    )
    with pytest.raises(IndexError_):
        open_qdrant(engine.vector_store_url, f"storybot-{first_build.name}-sentences", 64)  # type: ignore[union-attr]
    close_clients()
    # Pointing the settings back at FAISS files makes the index stale, not damaged.
    back = engine.model_copy(update={"vector_store_url": ""})
    assert "vectors are in a vector engine" in (
        staleness(reloaded.index.manifest, back.corpus_dir, "fake-embedder", 500, corpus_rules(back), "") or ""
    )
