"""Read the corpus: article files -> Document (title, outlet, date, paragraphs with character offsets).

Offsets are into the file's decoded text exactly as stored (no newline translation), so
`document.text[start:end]` is always the verbatim source.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CORPUS_SUFFIXES = (".txt", ".md")

# Page furniture copied along with an article: buttons, widgets, navigation. Never quoted.
FURNITURE_LINES = frozenset(
    {
        "download",
        "search trends",
        "share",
        "share this",
        "share this article",
        "print",
        "advertisement",
        "related",
        "related stories",
        "related articles",
        "read more",
        "more",
        "comments",
        "subscribe",
        "sign up",
        "newsletter",
        "trending",
        "most read",
        "top stories",
        "copyright",
        "follow us",
    }
)

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_LINE = re.compile(
    rf"""^(?:(?:updated|published|posted|date)\b:?\s*)?.*(?:
        \d{{1,2}}[-/ ]{_MONTH}[-/ ,]*\d{{4}}       # 15-Dec-2021, 15 Dec 2021
      | {_MONTH}\s+\d{{1,2}},?\s+\d{{4}}           # December 15, 2021
      | \d{{4}}-\d{{2}}-\d{{2}}                      # 2021-12-15
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_DATE_PREFIX = re.compile(r"^(?:updated|published|posted|date)\b:?\s*", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^(title|outlet|source|publisher|date|published|updated|by|author)\s*:\s*(.+)$", re.I)
_BYLINE = re.compile(r"^by\s+\S", re.IGNORECASE)


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of article text: its 1-based number and where it stands in the file."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class HeaderLine:
    """A header line of an article and what it states: role is "title", "outlet" or "date"."""

    role: str
    start: int
    end: int


@dataclass
class Document:
    """One article of the corpus."""

    name: str  # the corpus file's name, e.g. "cgtn-putin-nato-talks.txt"
    text: str  # the whole decoded file, verbatim
    title: str
    outlet: str | None = None
    date: str | None = None
    paragraphs: list[Paragraph] = field(default_factory=list)
    # The header lines that gave the title, outlet and date: "When was it published?" is answered from them.
    header_lines: list[HeaderLine] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file that was not indexed, and why."""

    name: str
    reason: str


@dataclass
class Corpus:
    documents: list[Document]
    skipped: list[SkippedFile]
    # sha256 of every candidate file, readable or not: a change to any of them makes the index stale.
    file_hashes: dict[str, str]


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The article files storybot reads, in a stable order."""
    if not corpus_dir.is_dir():
        return []
    return sorted(
        path
        for path in corpus_dir.iterdir()
        if path.suffix.lower() in CORPUS_SUFFIXES and path.is_file() and not path.name.startswith(".")
    )


def hash_corpus(corpus_dir: Path) -> dict[str, str]:
    """sha256 of every corpus file by name; unreadable files hash to a marker so they still count."""
    hashes = {}
    for path in corpus_files(corpus_dir):
        try:
            hashes[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as error:
            hashes[path.name] = f"unreadable: {error.strerror}"
    return hashes


def read_corpus(corpus_dir: Path) -> Corpus:
    """Read every article in `corpus_dir`; files that cannot be used are skipped with a warning."""
    documents: list[Document] = []
    skipped: list[SkippedFile] = []
    hashes: dict[str, str] = {}
    for path in corpus_files(corpus_dir):
        try:
            raw = path.read_bytes()
        except OSError as error:
            hashes[path.name] = f"unreadable: {error.strerror}"
            skipped.append(SkippedFile(path.name, f"cannot be read ({error.strerror})"))
            continue
        hashes[path.name] = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            skipped.append(SkippedFile(path.name, f"is not UTF-8 text (bad byte at offset {error.start})"))
            continue
        if not text.strip():
            skipped.append(SkippedFile(path.name, "is empty"))
            continue
        document = parse_document(path.name, text)
        if not document.paragraphs:
            skipped.append(SkippedFile(path.name, "has a header but no article text"))
            continue
        documents.append(document)
    for item in skipped:
        log.warning("skipping corpus file %s: it %s", item.name, item.reason)
    return Corpus(documents=documents, skipped=skipped, file_hashes=hashes)


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # end of the line's visible text (trailing whitespace excluded)
    text: str


def _lines(text: str) -> list[_Line]:
    lines = []
    for match in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n|$)", text):
        raw = match.group(0).rstrip("\r\n")
        stripped = raw.strip(" \t\ufeff\u00a0")
        if match.start() == len(text) and not raw:
            break
        if stripped:
            lead = len(raw) - len(raw.lstrip(" \t\ufeff\u00a0"))
            start = match.start() + lead
            lines.append(_Line(start, start + len(stripped), stripped))
        else:
            lines.append(_Line(match.start(), match.start(), ""))
    return lines


def is_furniture(line: str) -> bool:
    """True for page furniture ("Download", "Search Trends") that is not article text."""
    return line.strip().strip(":|»›>").strip().lower() in FURNITURE_LINES


def _looks_like_body(line: str) -> bool:
    # Article paragraphs are sentences: many words, ending in sentence punctuation or a quote.
    words = line.split()
    return len(words) >= 12 or (len(words) >= 6 and line.rstrip()[-1:] in '.!?"”’)')


def parse_document(name: str, text: str) -> Document:
    """Split one article into its header (title, outlet, date) and numbered body paragraphs."""
    lines = _lines(text)
    title: str | None = None
    outlet: str | None = None
    date: str | None = None
    header_lines: list[HeaderLine] = []

    index = 0
    # Header: the short lines before the first line that reads like article prose.
    while index < len(lines):
        line = lines[index].text
        if line and _looks_like_body(line) and title is not None:
            break
        index += 1
        if not line or is_furniture(line):
            continue
        key_value = _KEY_VALUE.match(line)
        if key_value:
            key, value = key_value.group(1).lower(), key_value.group(2).strip()
            if key == "title":
                title = value
                header_lines.append(HeaderLine("title", lines[index - 1].start, lines[index - 1].end))
            elif key in {"outlet", "source", "publisher"}:
                outlet = value
                header_lines.append(HeaderLine("outlet", lines[index - 1].start, lines[index - 1].end))
            elif key in {"date", "published", "updated"}:
                date = value
                header_lines.append(HeaderLine("date", lines[index - 1].start, lines[index - 1].end))
            continue  # bylines ("By: ...") are header, not outlet
        if title is None:
            title = line.lstrip("#").strip()
            header_lines.append(HeaderLine("title", lines[index - 1].start, lines[index - 1].end))
        elif date is None and _DATE_LINE.match(line):
            date = _DATE_PREFIX.sub("", line).strip()
            header_lines.append(HeaderLine("date", lines[index - 1].start, lines[index - 1].end))
        elif _BYLINE.match(line):
            continue
        elif outlet is None and len(line.split()) <= 6:
            outlet = line.lstrip("#").strip()
            header_lines.append(HeaderLine("outlet", lines[index - 1].start, lines[index - 1].end))
        elif _looks_like_body(line) or len(line.split()) > 6:
            index -= 1  # a long line after the title: the body has begun
            break

    # Body: blocks of consecutive non-blank lines, furniture removed, numbered from 1.
    paragraphs: list[Paragraph] = []
    block: list[_Line] = []

    def close_block() -> None:
        if block:
            paragraphs.append(Paragraph(len(paragraphs) + 1, block[0].start, block[-1].end))
            block.clear()

    for body_line in lines[index:]:
        if not body_line.text or is_furniture(body_line.text):
            close_block()
        else:
            block.append(body_line)
    close_block()

    return Document(
        name=name,
        text=text,
        title=title or Path(name).stem.replace("-", " ").replace("_", " "),
        outlet=outlet,
        date=date,
        paragraphs=paragraphs,
        header_lines=header_lines,
    )
