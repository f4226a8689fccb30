"""Sentence-aware chunking: paragraphs -> sentences -> chunks, each remembering doc, paragraph and offsets.

Chunks never cross a paragraph, so every citation names exactly one paragraph, and never exceed
`max_chars`, so a chunk is always short enough to quote whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.indexing.corpus import Document

# Bump when splitting changes: a manifest with another version means the index is stale.
CHUNKER_VERSION = "2"  # 2: header lines (title, outlet, date) are sentences of paragraph 0

# Abbreviations that never end a sentence when a capitalised word follows ("Mr. Putin", "Dec. 15").
_NEVER_FINAL = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "messrs",
        "dr",
        "prof",
        "gen",
        "sen",
        "rep",
        "gov",
        "lt",
        "col",
        "maj",
        "sgt",
        "capt",
        "cmdr",
        "adm",
        "st",
        "mt",
        "ft",
        "rev",
        "hon",
        "pres",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "no",
        "nos",
        "vol",
        "art",
        "fig",
        "approx",
        "dept",
        "est",
        "vs",
    ]
)
# Common sentence openers: after "U.S." or "etc." one of these means a new sentence did start.
_SENTENCE_OPENERS = frozenset(
    [
        "the",
        "a",
        "an",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "i",
        "you",
        "this",
        "that",
        "these",
        "those",
        "there",
        "his",
        "her",
        "their",
        "our",
        "but",
        "and",
        "so",
        "yet",
        "however",
        "meanwhile",
        "in",
        "on",
        "at",
        "for",
        "after",
        "before",
        "when",
        "while",
        "if",
        "as",
        "mr",
        "mrs",
        "ms",
        "dr",
    ]
)
# Verbs of attribution: `"...respond militarily." Ryabkov told RIA` is still one sentence.
_SPEECH_VERBS = frozenset(
    [
        "said",
        "says",
        "told",
        "tells",
        "added",
        "adds",
        "warned",
        "warns",
        "stated",
        "states",
        "asked",
        "asks",
        "wrote",
        "writes",
        "explained",
        "noted",
        "notes",
        "insisted",
        "insists",
        "replied",
        "replies",
        "continued",
        "argued",
        "argues",
        "claimed",
        "claims",
        "according",
        "announced",
        "declared",
        "stressed",
    ]
)
_CLOSERS = "\"'”’)]»"
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Span:
    """A verbatim stretch of a document: text == document.text[start:end]."""

    start: int
    end: int


HEADER_PARAGRAPH = 0  # header lines are cited as paragraph 0; the body is numbered from 1
BODY = "body"


@dataclass(frozen=True)
class Sentence:
    doc: str
    paragraph: int
    start: int
    end: int
    text: str
    role: str = BODY  # or the header line it is: "title", "outlet", "date"


@dataclass(frozen=True)
class Chunk:
    id: int
    doc: str
    paragraph: int
    start: int
    end: int
    text: str
    sentence_ids: tuple[int, ...]


def _token_before(text: str, pos: int) -> str:
    """The whitespace-delimited token that ends at `pos` (exclusive)."""
    start = pos
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:pos]


def _is_sentence_end(text: str, match: re.Match[str]) -> bool:
    punct = match.group(0)
    after = text[match.end() :].lstrip()
    if not after:
        return True
    words = _WORD.findall(after[:80])
    next_word = words[0] if words else ""
    first = next_word.lstrip("\"'“‘([")[:1]
    if not first or not (first.isupper() or first.isdigit()):
        return False  # `"Why now?" he asked`, "2021. /Reuters)", "e.g. this"
    if punct[-1] in _CLOSERS:
        # `"...respond militarily." Ryabkov told the agency`: the attribution belongs to the quote.
        for word in words[:5]:
            if word.strip(".,;:!?\"'”’").lower() in _SPEECH_VERBS:
                return False
            if word[-1:] in ".!?":
                break
        return True
    if not punct.startswith(".") or len(punct) > 1:
        return True  # "?", "!", "..."
    token = _token_before(text, match.start()).lstrip("\"'“‘([")
    bare = token.lower().rstrip(".")
    if bare in _NEVER_FINAL:
        return False
    if len(token) == 1 and token.isupper():
        return False  # an initial: "John F. Kennedy"
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token) or bare in {
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "jr",
        "sr",
    }:
        # "U.S. President Joe Biden" goes on; "... sanctions on the U.S. The EU ..." ends.
        return next_word.strip("\"'“‘(").lower() in _SENTENCE_OPENERS
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end], as absolute offsets, surrounding whitespace trimmed."""
    end = len(text) if end is None else end
    region = text[start:end]
    spans: list[Span] = []
    sentence_start = 0
    for match in _BOUNDARY.finditer(region):
        if _is_sentence_end(region, match):
            spans.append(Span(sentence_start, match.end()))
            sentence_start = match.end()
    spans.append(Span(sentence_start, len(region)))
    trimmed = []
    for span in spans:
        piece = region[span.start : span.end]
        lead = len(piece) - len(piece.lstrip())
        tail = len(piece.rstrip())
        if tail > lead:
            trimmed.append(Span(start + span.start + lead, start + span.start + tail))
    return trimmed


def split_long(text: str, span: Span, max_chars: int) -> list[Span]:
    """Cut a span longer than max_chars at clause breaks (else spaces), keeping every piece verbatim."""
    pieces = []
    start = span.start
    while span.end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max(window.rfind(mark) + 1 for mark in (", ", "; ", ": ", " – ", " - "))
        if cut < max_chars // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars  # one enormous word: cut it anyway
        piece_end = start + cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        pieces.append(Span(start, piece_end))
        start += cut
        while start < span.end and text[start].isspace():
            start += 1
    if start < span.end:
        pieces.append(Span(start, span.end))
    return pieces


def _pack(spans: list[Span], max_chars: int) -> list[list[Span]]:
    """Group consecutive sentence spans so each group reaches at most max_chars from first to last."""
    groups: list[list[Span]] = []
    for span in spans:
        if groups and span.end - groups[-1][0].start <= max_chars:
            groups[-1].append(span)
        else:
            groups.append([span])
    return groups


def chunk_document(
    document: Document, max_chars: int, first_chunk_id: int = 0, first_sentence_id: int = 0
) -> tuple[list[Chunk], list[Sentence]]:
    """Split a document into sentences and pack whole sentences into chunks of at most max_chars."""
    text = document.text
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for line in document.header_lines:
        # Each header line is a sentence and a chunk of its own: the date line answers "When was it published?".
        sentence_id = first_sentence_id + len(sentences)
        line_text = text[line.start : line.end]
        sentences.append(Sentence(document.name, HEADER_PARAGRAPH, line.start, line.end, line_text, line.role))
        chunks.append(
            Chunk(
                first_chunk_id + len(chunks),
                document.name,
                HEADER_PARAGRAPH,
                line.start,
                line.end,
                line_text,
                (sentence_id,),
            )
        )
    for paragraph in document.paragraphs:
        spans = [
            piece
            for span in split_sentences(text, paragraph.start, paragraph.end)
            for piece in split_long(text, span, max_chars)
        ]
        for group in _pack(spans, max_chars):
            ids = tuple(range(first_sentence_id + len(sentences), first_sentence_id + len(sentences) + len(group)))
            sentences += [
                Sentence(document.name, paragraph.number, s.start, s.end, text[s.start : s.end]) for s in group
            ]
            start, end = group[0].start, group[-1].end
            chunks.append(
                Chunk(
                    first_chunk_id + len(chunks),
                    document.name,
                    paragraph.number,
                    start,
                    end,
                    text[start:end],
                    ids,
                )
            )
    return chunks, sentences
