"""Read the corpus: article files -> Document (title, outlet, date, paragraphs with character offsets).

Offsets are into the file's decoded text exactly as stored (no newline translation), so
`document.text[start:end]` is always the verbatim source.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot import status
from bot.terminal import printable

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
    # (size, mtime in ns) of every file read as an article: next time, a file that still has them is
    # taken as unchanged without reading it.
    file_stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)  # known articles not read again (same size and mtime)


@dataclass(frozen=True)
class KnownFile:
    """An article as the last build saw it."""

    sha256: str
    size: int
    mtime_ns: int


DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class CorpusRules:
    """What counts as a corpus file; the build and the staleness check must use the same rules."""

    follow_symlinks: bool = False  # links are followed only when they stay inside the corpus directory
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path | None  # the regular file to read, or None when the entry is skipped
    skip: str | None = None  # why it is skipped (a warning), when it is


def _scan(corpus_dir: Path, rules: CorpusRules) -> list[_Entry]:
    """Every entry of the corpus directory that looks like an article or a folder, decided once.

    Only regular files directly inside the directory are articles: a symlink could quote any file on
    the machine, a FIFO would block the read, and a nested folder's files would need path-like names.
    """
    if not corpus_dir.is_dir():
        return []
    root = corpus_dir.resolve()
    entries = []
    for path in sorted(corpus_dir.iterdir()):
        name = path.name
        if name.startswith("."):
            continue
        try:
            info = path.lstat()
        except OSError as error:
            entries.append(_Entry(name, None, f"cannot be read ({error.strerror})"))
            continue
        is_article = path.suffix.lower() in CORPUS_SUFFIXES
        if stat.S_ISDIR(info.st_mode):
            entries.append(_Entry(name, None, "is a directory (nested folders are not read)"))
        elif not is_article:
            continue
        elif stat.S_ISLNK(info.st_mode):
            entries.append(_follow_link(path, root, rules))
        elif not stat.S_ISREG(info.st_mode):
            entries.append(_Entry(name, None, "is not a regular file (a device, FIFO or socket)"))
        elif info.st_size > rules.max_file_bytes:
            entries.append(_Entry(name, None, _too_big(info.st_size, rules)))
        else:
            entries.append(_Entry(name, path))
    return entries


def _follow_link(path: Path, root: Path, rules: CorpusRules) -> _Entry:
    if not rules.follow_symlinks:
        return _Entry(path.name, None, "is a symbolic link (not followed; see STORYBOT_FOLLOW_SYMLINKS)")
    target = path.resolve()
    if not target.is_relative_to(root) or target.parent != root:
        return _Entry(path.name, None, "is a symbolic link to a file outside the corpus directory")
    try:
        info = target.stat()
    except OSError as error:
        return _Entry(path.name, None, f"is a broken symbolic link ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return _Entry(path.name, None, "is a symbolic link to something that is not a regular file")
    if info.st_size > rules.max_file_bytes:
        return _Entry(path.name, None, _too_big(info.st_size, rules))
    return _Entry(path.name, target)


def _too_big(size: int, rules: CorpusRules) -> str:
    return f"is {size:,} bytes, over the {rules.max_file_bytes:,}-byte limit (STORYBOT_MAX_CORPUS_FILE_BYTES)"


def _read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file, refusing a link or special file swapped in since the scan."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, "grew over the size limit while being read")
    return data


def corpus_files(corpus_dir: Path, rules: CorpusRules | None = None) -> list[Path]:
    """The article files storybot reads, in a stable order."""
    return [entry.path for entry in _scan(corpus_dir, rules or CorpusRules()) if entry.path is not None]


def _marker(entry: _Entry) -> str:
    # Skipped entries still count for staleness, by a marker that does not depend on their content.
    return f"skipped: {entry.skip.split(' (')[0]}" if entry.skip else ""


def _file_stat(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def _is_known(entry: _Entry, known: Mapping[str, KnownFile] | None) -> KnownFile | None:
    """The last build's record of this file when its size and mtime are still the same, else None."""
    record = known.get(entry.name) if known and entry.path is not None else None
    if record is None or entry.path is None or _file_stat(entry.path) != (record.size, record.mtime_ns):
        return None
    return record


def hash_corpus(
    corpus_dir: Path, rules: CorpusRules | None = None, known: Mapping[str, KnownFile] | None = None
) -> dict[str, str]:
    """sha256 of every corpus file by name; skipped and unreadable files hash to a marker so they still count.

    A file `known` from the last build with the same size and mtime keeps its recorded sha256 unread.
    """
    rules = rules or CorpusRules()
    hashes = {}
    for entry in _scan(corpus_dir, rules):
        if entry.path is None:
            hashes[entry.name] = _marker(entry)
            continue
        record = _is_known(entry, known)
        if record is not None:
            hashes[entry.name] = record.sha256
            continue
        try:
            hashes[entry.name] = hashlib.sha256(_read_regular_file(entry.path, rules.max_file_bytes)).hexdigest()
        except OSError as error:
            hashes[entry.name] = f"unreadable: {error.strerror}"
    return hashes


def read_corpus(
    corpus_dir: Path, rules: CorpusRules | None = None, known: Mapping[str, KnownFile] | None = None
) -> Corpus:
    """Read every article in `corpus_dir`; files that cannot be used are skipped, each named in a status line.

    Articles `known` from the last build with the same size and mtime are not read: they are listed in
    `unchanged`, so an incremental build reuses what it made of them.
    """
    rules = rules or CorpusRules()
    documents: list[Document] = []
    skipped: list[SkippedFile] = []
    hashes: dict[str, str] = {}
    stats: dict[str, tuple[int, int]] = {}
    unchanged: list[str] = []
    for entry in _scan(corpus_dir, rules):
        if entry.path is None:
            hashes[entry.name] = _marker(entry)
            skipped.append(SkippedFile(entry.name, entry.skip or "was skipped"))
            continue
        record = _is_known(entry, known)
        if record is not None:
            hashes[entry.name] = record.sha256
            stats[entry.name] = (record.size, record.mtime_ns)
            unchanged.append(entry.name)
            continue
        stat_before = _file_stat(entry.path)
        try:
            raw = _read_regular_file(entry.path, rules.max_file_bytes)
        except OSError as error:
            hashes[entry.name] = f"unreadable: {error.strerror}"
            skipped.append(SkippedFile(entry.name, f"cannot be read ({error.strerror})"))
            continue
        hashes[entry.name] = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            skipped.append(SkippedFile(entry.name, f"is not UTF-8 text (bad byte at offset {error.start})"))
            continue
        if not text.strip():
            skipped.append(SkippedFile(entry.name, "is empty"))
            continue
        document = parse_document(entry.name, text)
        if not document.paragraphs:
            skipped.append(SkippedFile(entry.name, "has a header but no article text"))
            continue
        documents.append(document)
        if stat_before is not None and stat_before[0] == len(raw):
            stats[entry.name] = stat_before  # a file written while read gets no stat: it is read again next time
    for item in skipped:  # said once, in plain words, as it happens (before the embedding's progress bar)
        status.show(f"Skipping {printable(item.name, keep_newlines=False)}: it {item.reason}.")
    return Corpus(documents=documents, skipped=skipped, file_hashes=hashes, file_stats=stats, unchanged=unchanged)


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


# -- story keys ---------------------------------------------------------------------------------------------

STORY_KEY_MAX = 64  # Telegram's /start payload: at most 64 of these characters
_STORY_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def story_key(name: str) -> str | None:
    """The story key of a corpus file: its name without the extension, or None when that is not Telegram-safe."""
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return stem if _STORY_KEY.fullmatch(stem) else None


def story_keys(names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(key of each file that has one, a plain line for each file that gets none and why).

    A key two files would share is given to neither: which file a link opens must not depend on the
    order the files were found in.
    """
    by_key: dict[str, list[str]] = {}
    problems: list[str] = []
    for name in sorted(names):
        key = story_key(name)
        if key is None:
            problems.append(
                f"No story key for {printable(name, keep_newlines=False)}: a key is the file name without its "
                f"extension, in letters, digits, '-' and '_' only, at most {STORY_KEY_MAX} characters; rename "
                "the file to link to it (it is still answered from)."
            )
        else:
            by_key.setdefault(key, []).append(name)
    keys: dict[str, str] = {}
    for key, files in by_key.items():
        if len(files) == 1:
            keys[files[0]] = key
        else:
            shown = ", ".join(printable(f, keep_newlines=False) for f in files)
            problems.append(
                f"No story key for {shown}: they would share the key {key!r}; rename all but one to link to "
                "them (they are still answered from)."
            )
    return keys, problems
