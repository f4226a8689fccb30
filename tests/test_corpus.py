"""Reading the corpus: header, furniture, captions, and files that cannot be used."""

from __future__ import annotations

from pathlib import Path

from bot.indexing.corpus import parse_document, read_corpus

from .conftest import SEED_ARTICLE


def test_seed_header_and_paragraphs() -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    document = parse_document(SEED_ARTICLE.name, text)
    assert document.title == "Putin wants 'immediate' talks with NATO on Russia's security"
    assert document.outlet == "CGTN"
    assert document.date is not None and "15-Dec-2021" in document.date
    bodies = [text[p.start : p.end] for p in document.paragraphs]
    assert bodies[0].startswith("Russian President Vladimir Putin said Tuesday")
    assert [p.number for p in document.paragraphs] == list(range(1, len(bodies) + 1))
    # Furniture is not article text; the credit line and the photo caption are.
    assert not any(b in {"Download", "Search Trends"} or b.startswith("Download") for b in bodies)
    assert all("Search Trends" not in b for b in bodies)
    assert "(With input from agencies)" in bodies
    assert any(b.startswith("(Cover: Russian President Vladimir Putin attends") for b in bodies)


def test_markdown_header_with_keys() -> None:
    text = "# Harbour reopens\n\nOutlet: Coast Gazette\nDate: 3 March 2025\n\nThe harbour reopened on Monday after a storm closed it for ten days.\n"
    document = parse_document("h.md", text)
    assert (document.title, document.outlet, document.date) == (
        "Harbour reopens",
        "Coast Gazette",
        "3 March 2025",
    )
    assert len(document.paragraphs) == 1


def test_crlf_and_bom_keep_verbatim_offsets(tmp_path: Path) -> None:
    raw = "\ufeffTitle here\r\nOutlet\r\n\r\nFirst paragraph has enough words to be a body paragraph, surely.\r\n\r\nSecond one too, with several words in it.\r\n"
    (tmp_path / "a.txt").write_bytes(raw.encode("utf-8"))
    corpus = read_corpus(tmp_path)
    document = corpus.documents[0]
    assert document.title == "Title here"
    for paragraph in document.paragraphs:
        piece = raw[paragraph.start : paragraph.end]
        assert piece == piece.strip() and "\r" not in piece


def test_bad_files_are_skipped_with_a_warning_and_the_rest_indexed(tmp_path: Path, capsys) -> None:
    (tmp_path / "good.txt").write_text(SEED_ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 story\n\nIt was a caf\xe9.".encode("latin-1"))
    (tmp_path / "empty.md").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "unreadable.txt").write_text("x", encoding="utf-8")
    (tmp_path / "unreadable.txt").chmod(0)
    corpus = read_corpus(tmp_path)
    assert [d.name for d in corpus.documents] == ["good.txt"]
    reasons = {s.name: s.reason for s in corpus.skipped}
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"]
    assert "notes.pdf" not in reasons  # not a corpus file at all
    said = capsys.readouterr().err.splitlines()  # plain status lines, one per file
    assert "Skipping empty.md: it is empty." in said
    assert "Skipping latin1.txt: it is not UTF-8 text (bad byte at offset 3)." in said
    # Root can read a chmod-0 file; either way the file is accounted for.
    assert "unreadable.txt" in corpus.file_hashes


def test_missing_corpus_dir_reads_as_empty(tmp_path: Path) -> None:
    corpus = read_corpus(tmp_path / "nope")
    assert corpus.documents == [] and corpus.skipped == []
