"""Build, save (atomically) and load the FAISS index, checked against the manifest of how it was built.

Layout under the index directory:
    current -> build-20261128T040512-ab12cd   (a symlink, swapped atomically by os.replace)
    build-.../manifest.json    model, dimension, chunker version, sha256 of every corpus file, build time
    build-.../chunks.faiss     chunk vectors   (inner product on unit vectors = cosine)
    build-.../sentences.faiss  sentence vectors, for choosing the answer inside a passage
    build-.../metadata.json    documents, chunks and sentences with their offsets
A crash while building leaves `current` pointing at the previous build, which keeps answering.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.errors import CorpusError, IndexDamagedError
from bot.indexing.chunking import CHUNKER_VERSION, Chunk, Sentence, chunk_document
from bot.indexing.corpus import Corpus, Document, SkippedFile, hash_corpus
from bot.indexing.embedding import Embedder, ProgressCallback

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
CURRENT = "current"
MANIFEST = "manifest.json"
METADATA = "metadata.json"
CHUNK_VECTORS = "chunks.faiss"
SENTENCE_VECTORS = "sentences.faiss"


@dataclass(frozen=True)
class DocumentInfo:
    """What the index keeps of a document: enough to cite it and show a paragraph in full."""

    name: str
    title: str
    outlet: str | None
    date: str | None
    paragraphs: dict[int, tuple[int, int, str]]  # number -> (start, end, verbatim text)

    @classmethod
    def from_document(cls, document: Document) -> DocumentInfo:
        return cls(
            name=document.name,
            title=document.title,
            outlet=document.outlet,
            date=document.date,
            paragraphs={p.number: (p.start, p.end, document.text[p.start : p.end]) for p in document.paragraphs},
        )


@dataclass
class Manifest:
    model: str
    dimension: int
    chunker_version: str
    chunk_max_chars: int
    corpus: dict[str, str]  # file name -> sha256, every candidate file
    documents: list[str]
    skipped: list[dict[str, str]]
    chunks: int
    sentences: int
    built_at: str
    build_seconds: float
    format: int = INDEX_FORMAT


@dataclass
class StoredIndex:
    """A loaded (or freshly built) index: vectors in FAISS, everything else in plain lists."""

    manifest: Manifest
    documents: dict[str, DocumentInfo]
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_vectors: faiss.Index
    sentence_vectors: faiss.Index
    path: Path | None = None
    chunk_of_sentence: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.chunk_of_sentence = [0] * len(self.sentences)
        for chunk in self.chunks:
            for sentence_id in chunk.sentence_ids:
                self.chunk_of_sentence[sentence_id] = chunk.id


@dataclass(frozen=True)
class BuildReport:
    index: StoredIndex
    seconds: float
    skipped: list[SkippedFile]


def _flat_index(vectors: np.ndarray, dimension: int) -> faiss.Index:
    # Exact search: a news corpus is thousands of chunks at most, where flat search takes microseconds.
    index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_index(
    corpus: Corpus, embedder: Embedder, chunk_max_chars: int, progress: ProgressCallback | None = None
) -> BuildReport:
    """Chunk and embed a corpus into an in-memory index (nothing is written)."""
    if not corpus.documents:
        reasons = "; ".join(f"{s.name} {s.reason}" for s in corpus.skipped) or "no .txt or .md files in it"
        raise CorpusError(f"no readable article in the corpus directory ({reasons})")
    started = time.perf_counter()
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for document in corpus.documents:
        doc_chunks, doc_sentences = chunk_document(document, chunk_max_chars, len(chunks), len(sentences))
        chunks += doc_chunks
        sentences += doc_sentences
    texts = [c.text for c in chunks] + [s.text for s in sentences]
    vectors = embedder.encode(texts, progress=progress)
    manifest = Manifest(
        model=embedder.name,
        dimension=embedder.dimension,
        chunker_version=CHUNKER_VERSION,
        chunk_max_chars=chunk_max_chars,
        corpus=dict(corpus.file_hashes),
        documents=[d.name for d in corpus.documents],
        skipped=[asdict(s) for s in corpus.skipped],
        chunks=len(chunks),
        sentences=len(sentences),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=0.0,
    )
    index = StoredIndex(
        manifest=manifest,
        documents={d.name: DocumentInfo.from_document(d) for d in corpus.documents},
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=_flat_index(vectors[: len(chunks)], embedder.dimension),
        sentence_vectors=_flat_index(vectors[len(chunks) :], embedder.dimension),
    )
    seconds = time.perf_counter() - started
    manifest.build_seconds = round(seconds, 3)
    return BuildReport(index=index, seconds=seconds, skipped=list(corpus.skipped))


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so two rebuilds never write the same index at once."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def save_index(index: StoredIndex, index_dir: Path) -> Path:
    """Write the index into a fresh build folder, then point `current` at it in one atomic step."""
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    build_dir = Path(tempfile.mkdtemp(prefix=f"build-{stamp}-", dir=index_dir))
    metadata = {
        "documents": [
            {**asdict(info), "paragraphs": [[n, *value] for n, value in info.paragraphs.items()]}
            for info in index.documents.values()
        ],
        "chunks": [asdict(c) for c in index.chunks],
        "sentences": [asdict(s) for s in index.sentences],
    }
    (build_dir / METADATA).write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    faiss.write_index(index.chunk_vectors, str(build_dir / CHUNK_VECTORS))
    faiss.write_index(index.sentence_vectors, str(build_dir / SENTENCE_VECTORS))
    # The manifest goes last: a build folder without one was never finished.
    (build_dir / MANIFEST).write_text(json.dumps(asdict(index.manifest), indent=2), encoding="utf-8")
    for path in build_dir.iterdir():
        with open(path, "rb") as written:
            os.fsync(written.fileno())

    link = index_dir / CURRENT
    temp_link = index_dir / f".{CURRENT}-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temp_link.unlink()
    temp_link.symlink_to(build_dir.name)
    os.replace(temp_link, link)  # atomic: readers see the old build or the new one, never half
    _remove_old_builds(index_dir, keep=build_dir.name)
    index.path = build_dir
    return build_dir


def _remove_old_builds(index_dir: Path, keep: str) -> None:
    for path in index_dir.glob("build-*"):
        if path.name != keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def current_build(index_dir: Path) -> Path | None:
    """The folder `current` points at, or None when no index has been built."""
    link = index_dir / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def read_manifest(build_dir: Path) -> Manifest:
    """The manifest of a build folder; IndexDamagedError when it is missing or unreadable."""
    path = build_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**data)
        if not isinstance(manifest.dimension, int) or not isinstance(manifest.corpus, dict):
            raise TypeError("wrong field types")
        return manifest
    except FileNotFoundError:
        raise IndexDamagedError(path, "missing") from None
    except (OSError, ValueError, TypeError) as error:
        raise IndexDamagedError(path, f"unreadable: {error}") from None


def staleness(manifest: Manifest, corpus_dir: Path, model: str, chunk_max_chars: int) -> str | None:
    """Why an index built as `manifest` no longer fits the corpus and settings, or None when it does."""
    if manifest.format != INDEX_FORMAT:
        return f"index format {manifest.format}, this storybot writes {INDEX_FORMAT}"
    if manifest.model != model:
        return f"built with model {manifest.model!r}, settings ask for {model!r}"
    if manifest.chunker_version != CHUNKER_VERSION:
        return f"built by chunker version {manifest.chunker_version}, this is {CHUNKER_VERSION}"
    if manifest.chunk_max_chars != chunk_max_chars:
        return f"built with chunks of {manifest.chunk_max_chars} chars, settings ask for {chunk_max_chars}"
    current = hash_corpus(corpus_dir)
    if current != manifest.corpus:
        added = sorted(set(current) - set(manifest.corpus))
        removed = sorted(set(manifest.corpus) - set(current))
        changed = sorted(n for n in set(current) & set(manifest.corpus) if current[n] != manifest.corpus[n])
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        return "corpus changed (" + "; ".join(parts) + ")"
    return None


def _read_vectors(path: Path, dimension: int, count: int) -> faiss.Index:
    if not path.is_file():
        raise IndexDamagedError(path, "missing")
    try:
        index = faiss.read_index(str(path))
    except Exception as error:  # faiss raises RuntimeError with a C++ message for any bad file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise IndexDamagedError(path, f"FAISS cannot read it: {first_line[:120]}") from None
    if index.d != dimension:
        raise IndexDamagedError(path, f"vectors have dimension {index.d}, the manifest says {dimension}")
    if index.ntotal != count:
        raise IndexDamagedError(path, f"holds {index.ntotal} vectors, the metadata lists {count}")
    return index


def load_index(build_dir: Path) -> StoredIndex:
    """Load a build folder, checking every file against the manifest; IndexDamagedError names the bad file."""
    manifest = read_manifest(build_dir)
    metadata_path = build_dir / METADATA
    try:
        metadata: dict[str, Any] = json.loads(metadata_path.read_text(encoding="utf-8"))
        documents = {
            d["name"]: DocumentInfo(
                name=d["name"],
                title=d["title"],
                outlet=d["outlet"],
                date=d["date"],
                paragraphs={int(n): (int(s), int(e), str(t)) for n, s, e, t in d["paragraphs"]},
            )
            for d in metadata["documents"]
        }
        chunks = [Chunk(**{**c, "sentence_ids": tuple(c["sentence_ids"])}) for c in metadata["chunks"]]
        sentences = [Sentence(**s) for s in metadata["sentences"]]
        if any(c.doc not in documents for c in chunks) or any(
            i >= len(sentences) for c in chunks for i in c.sentence_ids
        ):
            raise ValueError("chunks refer to documents or sentences that are not there")
    except FileNotFoundError:
        raise IndexDamagedError(metadata_path, "missing") from None
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise IndexDamagedError(metadata_path, f"unreadable: {type(error).__name__}: {error}"[:200]) from None
    if len(chunks) != manifest.chunks or len(sentences) != manifest.sentences:
        raise IndexDamagedError(metadata_path, "chunk or sentence count differs from the manifest")
    return StoredIndex(
        manifest=manifest,
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=_read_vectors(build_dir / CHUNK_VECTORS, manifest.dimension, len(chunks)),
        sentence_vectors=_read_vectors(build_dir / SENTENCE_VECTORS, manifest.dimension, len(sentences)),
        path=build_dir,
    )
