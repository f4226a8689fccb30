"""Hostile corpus directories: links, special files, folders, huge and arbitrary files."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.indexing.corpus import CorpusRules, hash_corpus, read_corpus
from bot.indexing.index import build_index, load_index
from bot.service import StorybotService

from .conftest import SEED_ARTICLE, FakeEmbedder, make_settings

SECRET = "root password is hunter2 and it must never be quoted by the bot in any answer at all."


def _outside_file(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "memo.txt"
    secret.parent.mkdir()
    secret.write_text(f"Memo\n\n{SECRET}\n")
    return secret


def test_symlink_out_of_the_corpus_is_skipped_and_never_quoted(tmp_path: Path, capsys) -> None:
    # Issue 8, reproduction 1: corpus/memo.txt -> a file elsewhere was indexed and quoted.
    settings = make_settings(tmp_path)
    (settings.corpus_dir / "memo.txt").symlink_to(_outside_file(tmp_path))
    (settings.corpus_dir / "debconf.txt").symlink_to("/etc/debconf.conf")
    service = StorybotService.load(settings, FakeEmbedder())
    said = capsys.readouterr().err
    assert "Skipping memo.txt: it is a symbolic link" in said and said.count("memo.txt") == 1
    assert "debconf.txt" in said
    assert list(service.index.documents) == [SEED_ARTICLE.name]
    answer = service.ask("What is the root password hunter2?")
    assert all("hunter2" not in c.text for c in answer.citations)
    assert "memo.txt" in service.index.manifest.corpus  # a link added later still makes the index stale


def test_follow_symlinks_follows_only_links_inside_the_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_ARTICLE, corpus / "real.txt")
    (corpus / "inside.txt").symlink_to("real.txt")
    (corpus / "outside.txt").symlink_to(_outside_file(tmp_path))
    (corpus / "dangling.txt").symlink_to("nowhere.txt")
    result = read_corpus(corpus, CorpusRules(follow_symlinks=True))
    assert sorted(d.name for d in result.documents) == ["inside.txt", "real.txt"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert "outside the corpus" in reasons["outside.txt"] and "broken" in reasons["dangling.txt"]
    assert hash_corpus(corpus, CorpusRules(follow_symlinks=True)) == result.file_hashes


def test_fifo_folder_and_huge_file_are_skipped_with_warnings(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_ARTICLE, corpus / "good.txt")
    os.mkfifo(corpus / "pipe.txt")  # reading it would block forever
    (corpus / "2021").mkdir()
    (corpus / "2021" / "old.txt").write_text("An old article")
    (corpus / "huge.txt").write_text("Huge\n\n" + "word " * 3000)
    rules = CorpusRules(max_file_bytes=10_000)
    result = read_corpus(corpus, rules)
    assert [d.name for d in result.documents] == ["good.txt"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert "not a regular file" in reasons["pipe.txt"]
    assert "is a directory" in reasons["2021"]
    assert (
        "over the 10,000-byte limit" in reasons["huge.txt"] and "STORYBOT_MAX_CORPUS_FILE_BYTES" in reasons["huge.txt"]
    )
    said = capsys.readouterr().err
    for name in ("pipe.txt", "2021", "huge.txt"):
        assert f"Skipping {name}: it {reasons[name]}." in said
    # The staleness check sees exactly what the build saw.
    assert hash_corpus(corpus, rules) == result.file_hashes


def test_the_size_limit_is_a_setting(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_corpus_file_bytes=1000)
    (settings.corpus_dir / "small.txt").write_text(
        "Small story\n\nA short article with enough words to be read as one.\n"
    )
    service = StorybotService.load(settings, FakeEmbedder())
    assert list(service.index.documents) == ["small.txt"]
    assert service.refresh_if_stale() is None  # skipped files do not make the index look stale forever


_names = st.text(alphabet="abcXYZ-_ .é\x1b[0m", min_size=1, max_size=12).map(lambda s: s.strip(". ") or "x")
_bodies = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400),
    st.lists(st.text(alphabet="abc DEF.,\"'\n\r\t\u2028\ufeff", max_size=80), max_size=8).map("\n\n".join),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(_names, _bodies, min_size=1, max_size=4))
def test_any_corpus_files_are_read_or_skipped_and_round_trip(files: dict[str, bytes | str]) -> None:
    with tempfile.TemporaryDirectory() as temp:
        corpus = Path(temp) / "corpus"
        corpus.mkdir()
        shutil.copy(SEED_ARTICLE, corpus / "seed.txt")
        for name, body in files.items():
            path = corpus / f"{name}.txt"
            path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
        result = read_corpus(corpus)
        assert len(result.documents) + len(result.skipped) == len(result.file_hashes)
        for document in result.documents:
            raw = (corpus / document.name).read_bytes().decode("utf-8")
            assert document.text == raw
            for paragraph in document.paragraphs:
                assert 0 <= paragraph.start < paragraph.end <= len(raw)
        # Whatever was read builds an index that passes every load-time check.
        report = build_index(corpus, Path(temp) / "index", FakeEmbedder(), 500)
        assert report.index.path is not None
        loaded = load_index(report.index.path)
        assert loaded.chunks == report.index.chunks
