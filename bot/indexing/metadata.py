"""The index's metadata in SQLite: documents, paragraphs, chunks and sentences read lazily by id, and the
inverted maps (term -> documents) that let a question find its articles without scanning the corpus.

One file per build (`metadata.sqlite`). It is written once by the build that owns it (a later incremental
build copies it and edits the copy), then opened read-only and immutable, so a reader never sees it change.
Rows are checked when they are read, not all at load: a corrupt row is reported (IndexDamagedError) the
moment a question would use it, and a start-up never parses the whole corpus.

Term columns hold words as `bot.indexing.terms` makes them (lower case, no apostrophes or dots, inner
hyphens kept); FTS5 is told to keep hyphens and diacritics so that it sees the same words.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import IndexDamagedError
from bot.indexing.chunking import BODY, HEADER_PARAGRAPH, Chunk, Sentence
from bot.indexing.corpus import Document
from bot.indexing.terms import content_words, stem, titled_names

log = logging.getLogger(__name__)

_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '-'"
SCHEMA = f"""
CREATE TABLE info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE documents (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, title TEXT NOT NULL, outlet TEXT,
    date TEXT, length INTEGER NOT NULL);
CREATE TABLE paragraphs (doc INTEGER NOT NULL, number INTEGER NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (doc, number)) WITHOUT ROWID;
CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, sentence_ids TEXT NOT NULL);
CREATE INDEX chunks_by_doc ON chunks (doc);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, role TEXT NOT NULL,
    chunk INTEGER NOT NULL, stems TEXT NOT NULL);
CREATE INDEX sentences_by_doc ON sentences (doc);
CREATE TABLE officials (doc INTEGER NOT NULL, head TEXT NOT NULL, title TEXT NOT NULL, qualifiers TEXT NOT NULL,
    name TEXT NOT NULL);
CREATE INDEX officials_by_head ON officials (head);
CREATE INDEX officials_by_doc ON officials (doc);
CREATE TABLE words (word TEXT PRIMARY KEY, stem TEXT NOT NULL, docs INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sentence_stems (stem TEXT PRIMARY KEY, sentences INTEGER NOT NULL) WITHOUT ROWID;
CREATE VIRTUAL TABLE doc_terms USING fts5 (words, stems, topics, detail=column, tokenize="{_TOKENIZER}");
CREATE VIRTUAL TABLE chunk_terms USING fts5 (stems, tokenize="{_TOKENIZER}");
"""
_ROLES = frozenset([BODY, "title", "outlet", "date"])
_IDS = re.compile(r"^\d{1,12}(?:,\d{1,12}){0,999}$")


@dataclass(frozen=True)
class DocumentInfo:
    """What the index keeps of a document: enough to cite it and show a paragraph in full."""

    name: str
    title: str
    outlet: str | None
    date: str | None
    paragraphs: dict[int, tuple[int, int, str]]  # number -> (start, end, verbatim text); 0: the header lines
    length: int = 0  # characters in the whole file: every offset lies within it


@dataclass(frozen=True)
class SentenceRow:
    """A sentence with what retrieval needs beside it: its chunk and its stems."""

    id: int
    sentence: Sentence
    chunk_id: int
    stems: frozenset[str]


@dataclass(frozen=True)
class Official:
    title: frozenset[str]  # stems: {"deputi", "foreign", "minist"}
    qualifiers: frozenset[str]  # stems of what stands before the title: {"russia"}, {"finnish"}
    name: str  # "Sergei Ryabkov"


def paragraphs_of(document: Document) -> dict[int, tuple[int, int, str]]:
    """Body paragraphs by number, and the header lines' stretch of the file as paragraph 0."""
    text = document.text
    paragraphs = {p.number: (p.start, p.end, text[p.start : p.end]) for p in document.paragraphs}
    if document.header_lines:
        start = min(line.start for line in document.header_lines)
        end = max(line.end for line in document.header_lines)
        paragraphs[HEADER_PARAGRAPH] = (start, end, text[start:end])
    return dict(sorted(paragraphs.items()))


class _QueryRefused(Exception):
    """FTS5 refused a MATCH query built from a question's words (not a sign of a damaged file)."""


def _is_separator(char: str) -> bool:
    """How the unicode61 tokenizer splits text: its token characters are letters, numbers and private-use
    characters (its default categories "L* N* Co") and the '-' we added; anything else parts tokens."""
    category = unicodedata.category(char)
    return char != "-" and category[0] not in "LN" and category != "Co"


def _match_term(term: str) -> str:
    """An FTS5 query for one term. A term the tokenizer splits ("serbian/montenegrin", a country alias) would
    be a phrase, which detail=column tables cannot search: its tokens must then all be there instead."""
    tokens = "".join(" " if _is_separator(char) else char for char in term).split()
    quoted = ['"' + t.replace('"', '""') + '"' for t in tokens] or ['""']
    return quoted[0] if len(quoted) == 1 else "(" + " AND ".join(quoted) + ")"


class MetadataStore:
    """One build's metadata.sqlite, opened read-only (answering) or read-write (while building)."""

    def __init__(self, path: Path, writable: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()  # chats are answered on worker threads; one connection, one at a time
        try:
            if writable:
                self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                self._db.execute("PRAGMA journal_mode = OFF")  # a build folder is thrown away if the build fails
                self._db.execute("PRAGMA synchronous = OFF")  # the build fsyncs the finished file itself
            else:
                uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as error:
            raise IndexDamagedError(path, f"SQLite cannot open it: {error}") from None

    # -- writing ----------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path) -> MetadataStore:
        store = cls(path, writable=True)
        store._db.executescript(SCHEMA)
        store._db.executemany("INSERT INTO info VALUES (?, 0)", [("next_chunk",), ("next_sentence",), ("next_doc",)])
        return store

    @classmethod
    def of_chunk_terms(cls, chunk_terms: Mapping[int, str]) -> MetadataStore:
        """An in-memory store of only these chunks' stems: `bm25_chunks` then ranks as an index of them alone."""
        store = cls(Path(":memory:"), writable=True)
        store._db.execute(f'CREATE VIRTUAL TABLE chunk_terms USING fts5 (stems, tokenize="{_TOKENIZER}")')
        store._db.executemany("INSERT INTO chunk_terms (rowid, stems) VALUES (?, ?)", sorted(chunk_terms.items()))
        return store

    def next_ids(self) -> tuple[int, int]:
        """The first free chunk id and sentence id: ids are never reused, so vectors keep their rows."""
        info = dict(self._query("SELECT key, value FROM info"))
        return int(info["next_chunk"]), int(info["next_sentence"])

    def add_document(
        self, document: Document, chunks: list[Chunk], sentences: list[Sentence], first_sentence: int
    ) -> None:
        """Insert one chunked document whose sentences are numbered from first_sentence (see next_ids())."""
        db = self._db
        db.execute("BEGIN")
        (doc_id,) = db.execute("SELECT value FROM info WHERE key = 'next_doc'").fetchone()
        db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            (doc_id, document.name, document.title, document.outlet, document.date, len(document.text)),
        )
        db.executemany(
            "INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?)",
            [(doc_id, n, start, end, text) for n, (start, end, text) in paragraphs_of(document).items()],
        )
        chunk_of: dict[int, int] = {}
        for chunk in chunks:
            for sentence_id in chunk.sentence_ids:
                chunk_of[sentence_id] = chunk.id
        # Each sentence's words, found once: the stems, the vocabulary and the topics all come from them.
        sentence_words = [content_words(s.text) for s in sentences]
        title_words = content_words(document.title)
        sentence_stems = [frozenset(stem(w) for w in found) for found in sentence_words]
        db.executemany(
            "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    first_sentence + i,
                    doc_id,
                    s.paragraph,
                    s.start,
                    s.end,
                    s.text,
                    s.role,
                    chunk_of[first_sentence + i],
                    " ".join(sorted(found)),
                )
                for i, (s, found) in enumerate(zip(sentences, sentence_stems, strict=True))
            ],
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(c.id, doc_id, c.paragraph, c.start, c.end, c.text, ",".join(map(str, c.sentence_ids))) for c in chunks],
        )
        db.executemany(
            "INSERT INTO chunk_terms (rowid, stems) VALUES (?, ?)",
            [(c.id, " ".join(stem(w) for w in content_words(c.text))) for c in chunks],
        )
        self._count_sentence_stems(sentence_stems, +1)
        words = dict.fromkeys(w for found in sentence_words for w in found)
        stems_used = dict.fromkeys(stem(w) for w in [*title_words, *(w for found in sentence_words for w in found)])
        # An article's topics are the words of its title. Words it merely uses often were topics too, until
        # the SQuAD dev articles showed what that does to long articles: "name", "data" or "called" became
        # one article's topic, and "the name of the solar facility" read as mixing two stories.
        topics = sorted({stem(w) for w in title_words})
        db.execute(
            "INSERT INTO doc_terms (rowid, words, stems, topics) VALUES (?, ?, ?, ?)",
            (doc_id, " ".join(words), " ".join(stems_used), " ".join(topics)),
        )
        db.executemany(
            "INSERT INTO words VALUES (?, ?, 1) ON CONFLICT (word) DO UPDATE SET docs = docs + 1",
            [(w, stem(w)) for w in words],
        )
        officials = {(title, qualifiers, name) for s in sentences for qualifiers, title, name in titled_names(s.text)}
        db.executemany(
            "INSERT INTO officials VALUES (?, ?, ?, ?, ?)",
            [
                (doc_id, stem(title[-1]), " ".join(stem(w) for w in title), " ".join(stem(w) for w in qualifiers), name)
                for title, qualifiers, name in sorted(officials)
            ],
        )
        next_chunk = max((c.id + 1 for c in chunks), default=0)
        next_sentence = first_sentence + len(sentences)
        db.execute("UPDATE info SET value = max(value, ?) WHERE key = 'next_chunk'", (next_chunk,))
        db.execute("UPDATE info SET value = max(value, ?) WHERE key = 'next_sentence'", (next_sentence,))
        db.execute("UPDATE info SET value = ? WHERE key = 'next_doc'", (doc_id + 1,))
        db.execute("COMMIT")

    def remove_document(self, name: str) -> tuple[list[int], list[int]]:
        """Delete a document and everything derived from it; returns its (chunk ids, sentence ids)."""
        db = self._db
        row = db.execute("SELECT id FROM documents WHERE name = ?", (name,)).fetchone()
        if row is None:
            return [], []
        (doc_id,) = row
        db.execute("BEGIN")
        chunk_ids = [i for (i,) in db.execute("SELECT id FROM chunks WHERE doc = ?", (doc_id,))]
        sentence_rows = db.execute("SELECT id, stems FROM sentences WHERE doc = ?", (doc_id,)).fetchall()
        self._count_sentence_stems([frozenset(s.split()) for _, s in sentence_rows], -1)
        (doc_words,) = db.execute("SELECT words FROM doc_terms WHERE rowid = ?", (doc_id,)).fetchone()
        db.executemany("UPDATE words SET docs = docs - 1 WHERE word = ?", [(w,) for w in doc_words.split()])
        db.execute("DELETE FROM words WHERE docs <= 0")
        db.executemany("DELETE FROM chunk_terms WHERE rowid = ?", [(i,) for i in chunk_ids])
        db.execute("DELETE FROM doc_terms WHERE rowid = ?", (doc_id,))
        for table in ("chunks", "sentences", "paragraphs", "officials"):
            db.execute(f"DELETE FROM {table} WHERE doc = ?", (doc_id,))  # noqa: S608 - fixed table names
        db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        db.execute("COMMIT")
        return chunk_ids, [i for i, _ in sentence_rows]

    def _count_sentence_stems(self, sentence_stems: Iterable[frozenset[str]], sign: int) -> None:
        counts = Counter(s for found in sentence_stems for s in found)
        self._db.executemany(
            "INSERT INTO sentence_stems VALUES (?, ?) ON CONFLICT (stem) DO UPDATE SET sentences = sentences + ?",
            [(s, sign * n, sign * n) for s, n in counts.items()],
        )
        if sign < 0:
            self._db.execute("DELETE FROM sentence_stems WHERE sentences <= 0")

    def close(self) -> None:
        self._db.close()

    # -- reading ----------------------------------------------------------------------------------

    def _query(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                if str(error).startswith(("fts5: syntax error", "fts5: phrase queries")):
                    raise _QueryRefused(str(error)) from None  # the question's words, not the file
                raise IndexDamagedError(self.path, f"SQLite cannot read it: {error}") from None

    def _match(self, sql: str, terms: Sequence[str], make_query: Callable[[list[str]], str], limit: int) -> list[Any]:
        """Run an FTS5 MATCH over the terms. Should SQLite's tokenizer (Unicode 6.1) still split a term that
        `_match_term` kept whole (a handful of characters changed category since), the terms are asked one
        at a time and those it refuses are left out, so an odd word never reads as a damaged index."""
        try:
            return self._query(sql, (make_query(list(terms)), limit))
        except _QueryRefused:
            pass
        accepted = []
        for term in terms:
            try:
                self._query(sql, (make_query([term]), 1))
                accepted.append(term)
            except _QueryRefused:
                log.debug("left out a term the index cannot search for: %r", term)
        return self._query(sql, (make_query(accepted), limit)) if accepted else []

    def check_schema(self) -> None:
        """IndexDamagedError unless the file is a SQLite database with exactly the tables storybot writes."""
        expected = sqlite3.connect(":memory:")
        expected.executescript(SCHEMA)
        wanted = sorted(expected.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str)
        found = sorted(self._query("SELECT type, name, sql FROM sqlite_master"), key=str)
        if found != wanted:
            raise IndexDamagedError(self.path, "its tables are not the ones storybot writes")

    def counts(self) -> tuple[int, int, int]:
        """(documents, chunks, sentences)."""
        documents, chunks, sentences = (
            int(self._query(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 - fixed table names
            for table in ("documents", "chunks", "sentences")
        )
        return documents, chunks, sentences

    def document_names(self) -> list[str]:
        return [self._text(name, "document name") for (name,) in self._query("SELECT name FROM documents ORDER BY id")]

    def document(self, name: str) -> DocumentInfo | None:
        rows = self._query("SELECT id, title, outlet, date, length FROM documents WHERE name = ?", (name,))
        if not rows:
            return None
        doc_id, title, outlet, date, length = rows[0]
        paragraphs = {}
        for number, start, end, text in self._query(
            'SELECT number, start, "end", text FROM paragraphs WHERE doc = ? ORDER BY number', (doc_id,)
        ):
            if not all(isinstance(v, int) for v in (number, start, end, length)) or not isinstance(text, str):
                raise IndexDamagedError(self.path, f"paragraph {number!r} of {name!r} has a wrong type")
            if not 0 <= start <= end <= length or len(text) != end - start:
                raise IndexDamagedError(self.path, f"paragraph {number} of {name!r} has offsets outside the text")
            paragraphs[number] = (start, end, text)
        return DocumentInfo(
            name=name,
            title=self._text(title, "title"),
            outlet=self._optional_text(outlet),
            date=self._optional_text(date),
            paragraphs=paragraphs,
            length=length,
        )

    def document_headers(self) -> list[tuple[str, str, str | None, str | None]]:
        """(name, title, outlet, date) of every document: what a list of the stories shows."""
        return [
            (
                self._text(name, "document name"),
                self._text(title, "title"),
                self._optional_text(outlet),
                self._optional_text(date),
            )
            for name, title, outlet, date in self._query("SELECT name, title, outlet, date FROM documents ORDER BY id")
        ]

    def sentences(self, ids: Iterable[int]) -> dict[int, SentenceRow]:
        """Sentence rows by id, each checked against its paragraph; IndexDamagedError names a bad one."""
        found: dict[int, SentenceRow] = {}
        for sid, doc, paragraph, start, end, text, role, chunk, stems_ in self._passages(
            "sentence", ("role", "chunk", "stems"), ids
        ):
            if role not in _ROLES or not isinstance(chunk, int) or not isinstance(stems_, str):
                raise IndexDamagedError(self.path, f"sentence {sid} has a wrong role, chunk or stems")
            found[sid] = SentenceRow(
                sid, Sentence(doc, paragraph, start, end, text, role), chunk, frozenset(stems_.split())
            )
        return found

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """Chunk rows by id, each checked against its paragraph; IndexDamagedError names a bad one."""
        found: dict[int, Chunk] = {}
        for cid, doc, paragraph, start, end, text, sentence_ids in self._passages("chunk", ("sentence_ids",), ids):
            if not isinstance(sentence_ids, str) or not _IDS.match(sentence_ids):
                raise IndexDamagedError(self.path, f"chunk {cid} refers to sentences in a form storybot never writes")
            found[cid] = Chunk(cid, doc, paragraph, start, end, text, tuple(int(i) for i in sentence_ids.split(",")))
        return found

    def chunk_documents(self, ids: Iterable[int]) -> dict[int, str]:
        """The document name of each chunk asked for (ids not in the index are left out)."""
        found: dict[int, str] = {}
        for batch in _batches(sorted(set(ids))):
            found.update(
                self._query(
                    "SELECT c.id, d.name FROM chunks c JOIN documents d ON d.id = c.doc "  # noqa: S608
                    f"WHERE c.id IN ({','.join('?' * len(batch))})",
                    batch,
                )
            )
        return found

    def _passages(self, kind: str, extra: tuple[str, ...], ids: Iterable[int]) -> list[tuple[Any, ...]]:
        """(id, document name, paragraph, start, end, text, *extra) of the chunks or sentences asked for, in
        batches, each checked against its paragraph; IndexDamagedError when one is missing or wrong."""
        wanted = sorted(set(ids))
        table = f"{kind}s"
        columns = ", ".join(f"x.{column}" for column in extra)
        rows: list[tuple[Any, ...]] = []
        for batch in _batches(wanted):
            for row in self._query(
                f'SELECT x.id, d.name, x.paragraph, x.start, x."end", x.text, {columns}, p.start, p.text '  # noqa: S608
                f"FROM {table} x JOIN documents d ON d.id = x.doc "
                "JOIN paragraphs p ON p.doc = x.doc AND p.number = x.paragraph "
                f"WHERE x.id IN ({','.join('?' * len(batch))})",
                batch,
            ):
                item, _, _, start, end, text, *_, p_start, p_text = row
                self._check_passage(kind, item, start, end, text, p_start, p_text)
                rows.append(row[:-2])
        found = {row[0] for row in rows}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise IndexDamagedError(self.path, f"{kind} {missing[0]} or its document or paragraph is not there")
        return rows

    def passage_ids(self, documents: Iterable[str]) -> tuple[list[int], list[int]]:
        """(chunk ids, sentence ids) of the documents named."""
        names = sorted(set(documents))
        marks = ",".join("?" * len(names))
        ids = []
        for table in ("chunks", "sentences"):
            ids.append(
                [
                    int(i)
                    for (i,) in self._query(
                        f"SELECT x.id FROM {table} x JOIN documents d ON d.id = x.doc "  # noqa: S608 - fixed names
                        f"WHERE d.name IN ({marks}) ORDER BY x.id",
                        names,
                    )
                ]
            )
        return ids[0], ids[1]

    def chunk_terms(self, ids: Iterable[int]) -> dict[int, str]:
        """The stems BM25 indexed for each chunk asked for."""
        found: dict[int, str] = {}
        for batch in _batches(sorted(set(ids))):
            for chunk_id, stems_ in self._query(
                f"SELECT rowid, stems FROM chunk_terms WHERE rowid IN ({','.join('?' * len(batch))})",  # noqa: S608
                batch,
            ):
                found[int(chunk_id)] = self._text(stems_, "chunk's stems")
        return found

    def chunk_ids(self) -> list[int]:
        return [i for (i,) in self._query("SELECT id FROM chunks ORDER BY id")]

    def sentence_ids(self) -> list[int]:
        return [i for (i,) in self._query("SELECT id FROM sentences ORDER BY id")]

    # -- the inverted maps ------------------------------------------------------------------------

    def vocabulary(self) -> dict[str, str]:
        """Every word the articles use, with its stem: for spelling correction and "is it mentioned?"."""
        return {word: stem_ for word, stem_ in self._query("SELECT word, stem FROM words")}

    def documents_with(self, column: str, terms: Iterable[str], limit: int = -1) -> frozenset[str]:
        """Names of the documents whose `column` ("words", "stems" or "topics") holds any of the terms
        (at most `limit` of them, when given)."""
        assert column in ("words", "stems", "topics")
        terms = [t for t in dict.fromkeys(terms) if t]
        if not terms:
            return frozenset()
        rows = self._match(
            "SELECT d.name FROM doc_terms t JOIN documents d ON d.id = t.rowid WHERE doc_terms MATCH ? LIMIT ?",
            terms,
            lambda some: f"{column} : (" + " OR ".join(_match_term(t) for t in some) + ")",
            limit,
        )
        return frozenset(name for (name,) in rows)

    def sentence_frequencies(self, stems_: Iterable[str]) -> dict[str, int]:
        """How many sentences hold each stem (absent stems are left out)."""
        wanted = list(dict.fromkeys(stems_))
        if not wanted:
            return {}
        rows = self._query(
            f"SELECT stem, sentences FROM sentence_stems WHERE stem IN ({','.join('?' * len(wanted))})", wanted
        )
        return dict(rows)

    def bm25_chunks(self, stems_: Iterable[str], limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best chunks for any of the stems, best first."""
        wanted = list(dict.fromkeys(s for s in stems_ if s))
        if not wanted:
            return []
        # FTS5's bm25() is lower-is-better; negated so a higher score is a better chunk.
        rows = self._match(
            "SELECT rowid, -bm25(chunk_terms) AS score FROM chunk_terms WHERE chunk_terms MATCH ? "
            "ORDER BY bm25(chunk_terms) LIMIT ?",
            wanted,
            lambda some: " OR ".join(_match_term(s) for s in some),
            limit,
        )
        return [(int(i), float(score)) for i, score in rows]

    def officials(self, head_stems: Iterable[str], documents: Iterable[str] | None = None) -> list[Official]:
        """Officials whose title ends with one of the stems ("minist" for "foreign minister"), in the documents
        named (default: all)."""
        wanted = list(dict.fromkeys(head_stems))
        if not wanted:
            return []
        sql = f"SELECT DISTINCT title, qualifiers, name FROM officials WHERE head IN ({','.join('?' * len(wanted))})"
        parameters: list[str] = wanted
        if documents is not None:
            names = sorted(set(documents))
            sql += f" AND doc IN (SELECT id FROM documents WHERE name IN ({','.join('?' * len(names))}))"
            parameters = [*wanted, *names]
        rows = self._query(sql, parameters)
        return [
            Official(frozenset(title.split()), frozenset(qualifiers.split()), self._text(name, "official"))
            for title, qualifiers, name in rows
        ]

    # -- checks -----------------------------------------------------------------------------------

    def _check_passage(
        self, kind: str, item: object, start: object, end: object, text: object, p_start: object, p_text: object
    ) -> None:
        if not all(isinstance(v, int) for v in (start, end, p_start)) or not isinstance(text, str):
            raise IndexDamagedError(self.path, f"{kind} {item} has a wrong type of offset or text")
        assert isinstance(start, int) and isinstance(end, int) and isinstance(p_start, int)
        if not isinstance(p_text, str) or not p_start <= start <= end <= p_start + len(p_text):
            raise IndexDamagedError(self.path, f"{kind} {item} has offsets {start}-{end} outside its paragraph")
        if p_text[start - p_start : end - p_start] != text:
            raise IndexDamagedError(self.path, f"{kind} {item}'s text is not the paragraph's text at its offsets")

    def _text(self, value: object, what: str) -> str:
        if not isinstance(value, str):
            raise IndexDamagedError(self.path, f"a {what} is not text")
        return value

    def _optional_text(self, value: object) -> str | None:
        return None if value is None else self._text(value, "header field")


def _batches(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
