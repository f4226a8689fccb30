"""The sentence splitter and chunker on the cases that break naive splitters, and offset round-trips."""

from __future__ import annotations

import random

import pytest

from bot.indexing.chunking import Span, chunk_document, split_long, split_sentences
from bot.indexing.corpus import parse_document

from .conftest import SEED_ARTICLE


def sentences_of(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The U.S. and its NATO allies warned Russia. Putin denied it.",
            ["The U.S. and its NATO allies warned Russia.", "Putin denied it."],
        ),
        (
            "U.S. President Joe Biden warned Putin. The EU met.",
            ["U.S. President Joe Biden warned Putin.", "The EU met."],
        ),
        (
            "Sanctions were imposed by the U.S. The EU followed.",
            ["Sanctions were imposed by the U.S.", "The EU followed."],
        ),
        (
            '"We will respond militarily," Ryabkov told the RIA Novosti state news agency. Putin spoke.',
            ['"We will respond militarily," Ryabkov told the RIA Novosti state news agency.', "Putin spoke."],
        ),
        (
            '"We will respond militarily." Ryabkov told the agency on Monday. Putin spoke.',
            ['"We will respond militarily." Ryabkov told the agency on Monday.', "Putin spoke."],
        ),
        ('"Why now?" he asked. Nobody knew.', ['"Why now?" he asked.', "Nobody knew."]),
        (
            "Mr. Putin met Dr. Smith on Dec. 15. They talked.",
            ["Mr. Putin met Dr. Smith on Dec. 15.", "They talked."],
        ),
        (
            "John F. Kennedy spoke. Growth was 3.5 percent.",
            ["John F. Kennedy spoke.", "Growth was 3.5 percent."],
        ),
        (
            "(Cover: Putin attends a session in Sochi, Russia, October 21, 2021. /Reuters)",
            ["(Cover: Putin attends a session in Sochi, Russia, October 21, 2021. /Reuters)"],
        ),
        ("Wait... What happened? Nothing!", ["Wait...", "What happened?", "Nothing!"]),
        ("No punctuation at the end", ["No punctuation at the end"]),
        ("   ", []),
    ],
)
def test_split_sentences_hard_cases(text: str, expected: list[str]) -> None:
    assert sentences_of(text) == expected


def test_seed_article_sentences_are_whole() -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    document = parse_document(SEED_ARTICLE.name, text)
    _, sentences = chunk_document(document, 500)
    texts = [s.text for s in sentences]
    assert any(t.startswith('"The lack of progress') and t.endswith("RIA Novosti state news agency.") for t in texts)
    assert any(t.startswith("The U.S. and its NATO allies") for t in texts)
    assert any(t.startswith("U.S. President Joe Biden") for t in texts)
    assert all(not t.startswith("/Reuters") for t in texts)


def test_offsets_round_trip_on_seed_article() -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    document = parse_document(SEED_ARTICLE.name, text)
    chunks, sentences = chunk_document(document, 500)
    assert chunks and sentences
    for sentence in sentences:
        assert text[sentence.start : sentence.end] == sentence.text
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 500
        if chunk.paragraph == 0:  # a header line: a chunk of its own
            assert (chunk.start, chunk.end) in {(h.start, h.end) for h in document.header_lines}
        else:
            paragraph = document.paragraphs[chunk.paragraph - 1]
            assert paragraph.start <= chunk.start < chunk.end <= paragraph.end
        assert [sentences[i].paragraph for i in chunk.sentence_ids] == [chunk.paragraph] * len(chunk.sentence_ids)


def test_long_sentence_is_cut_verbatim_at_clause_breaks() -> None:
    text = ", ".join(f"clause number {i} of a very long sentence" for i in range(40)) + "."
    pieces = split_long(text, Span(0, len(text)), 120)
    assert len(pieces) > 1
    assert all(p.end - p.start <= 120 for p in pieces)
    assert all(text[p.start : p.end].strip() == text[p.start : p.end] for p in pieces)
    rebuilt = " ".join(text[p.start : p.end] for p in pieces)
    assert rebuilt.replace(" ", "") == text.replace(" ", "")


def test_one_enormous_word_is_still_cut() -> None:
    text = "x" * 1300
    pieces = split_long(text, Span(0, len(text)), 500)
    assert [p.end - p.start for p in pieces] == [500, 500, 300]


def test_chunks_pack_sentences_within_limit() -> None:
    body = " ".join(f"Sentence {i} says something short." for i in range(60))
    document = parse_document("a.txt", f"Title line\n\n{body}\n")
    chunks, sentences = chunk_document(document, 200)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    assert [i for c in chunks for i in c.sentence_ids] == list(range(len(sentences)))


def test_random_text_offsets_always_round_trip() -> None:
    rng = random.Random(7)
    alphabet = [
        "U.S.",
        "Mr.",
        "word",
        "Word",
        '"quote,"',
        "said",
        ".",
        "?",
        "!",
        "\n",
        "  ",
        "é",
        "3.5",
        "(x)",
        "…",
    ]
    for _ in range(200):
        text = " ".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        document = parse_document("r.txt", "Title\n\n" + text)
        chunks, sentences = chunk_document(document, 120)
        for item in [*chunks, *sentences]:
            assert document.text[item.start : item.end] == item.text
            assert item.text == item.text.strip() and item.text
        assert all(len(c.text) <= 120 for c in chunks)
