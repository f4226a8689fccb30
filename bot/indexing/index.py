"""Build, save (atomically) and load the FAISS index, checked against the manifest of how it was built.

Layout under the index directory:
    current -> build-20261128T040512-ab12cd   (a symlink, swapped atomically by os.replace)
    build-.../manifest.json    model, dimension, chunker version, sha256 of every corpus file, build time,
                               sha256 and size of the three files below (checked at every load)
    build-.../chunks.faiss     chunk vectors   (inner product on unit vectors = cosine)
    build-.../sentences.faiss  sentence vectors, for choosing the answer inside a passage
    build-.../metadata.json    documents, chunks and sentences with their offsets
A crash while building leaves `current` pointing at the previous build, which keeps answering; a failed
build removes its folder, and the next build removes any folder a killed one left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import CorpusError, IndexDamagedError
from bot.indexing.chunking import CHUNKER_VERSION, HEADER_PARAGRAPH, Chunk, Sentence, chunk_document
from bot.indexing.corpus import Corpus, CorpusRules, Document, SkippedFile, hash_corpus
from bot.indexing.embedding import Embedder, ProgressCallback

log = logging.getLogger(__name__)

INDEX_FORMAT = 2  # 2: the manifest records sha256 and size of every index file
CURRENT = "current"
MANIFEST = "manifest.json"
METADATA = "metadata.json"
CHUNK_VECTORS = "chunks.faiss"
SENTENCE_VECTORS = "sentences.faiss"
INDEX_FILES = (METADATA, CHUNK_VECTORS, SENTENCE_VECTORS)
# A test hook, not a setting: a file path; save_index writes its pid there and waits just before the swap,
# so a test can kill a rebuild inside the save/swap window.
PAUSE_BEFORE_SWAP = "STORYBOT_TEST_PAUSE_BEFORE_SWAP"


@dataclass(frozen=True)
class DocumentInfo:
    """What the index keeps of a document: enough to cite it and show a paragraph in full."""

    name: str
    title: str
    outlet: str | None
    date: str | None
    paragraphs: dict[int, tuple[int, int, str]]  # number -> (start, end, verbatim text)
    length: int = 0  # characters in the whole file: every offset lies within it

    @classmethod
    def from_document(cls, document: Document) -> DocumentInfo:
        return cls(
            name=document.name,
            title=document.title,
            outlet=document.outlet,
            date=document.date,
            paragraphs=_paragraphs(document),
            length=len(document.text),
        )


def _paragraphs(document: Document) -> dict[int, tuple[int, int, str]]:
    """Body paragraphs by number, and the header lines' stretch of the file as paragraph 0."""
    text = document.text
    paragraphs = {p.number: (p.start, p.end, text[p.start : p.end]) for p in document.paragraphs}
    if document.header_lines:
        start = min(line.start for line in document.header_lines)
        end = max(line.end for line in document.header_lines)
        paragraphs[HEADER_PARAGRAPH] = (start, end, text[start:end])
    return dict(sorted(paragraphs.items()))


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
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"sha256": ..., "size": ...}
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
    """Write the index into a fresh build folder, then point `current` at it in one atomic step.

    Call it holding build_lock. A failure removes the new folder; `current` is never touched before the swap.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    target = current_build_name(index_dir)
    _remove_old_builds(index_dir, keep=target)  # left behind by a killed build
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    build_dir = Path(tempfile.mkdtemp(prefix=f"build-{stamp}-", dir=index_dir))
    try:
        _write_build(index, build_dir)
        _pause_for_tests()
        _swap_current(index_dir, build_dir)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    _remove_old_builds(index_dir, keep=build_dir.name)
    index.path = build_dir
    return build_dir


def _write_build(index: StoredIndex, build_dir: Path) -> None:
    metadata = {
        "documents": [
            {**asdict(info), "paragraphs": [[n, *value] for n, value in info.paragraphs.items()]}
            for info in index.documents.values()
        ],
        "chunks": [asdict(c) for c in index.chunks],
        "sentences": [asdict(s) for s in index.sentences],
    }
    payloads = {
        METADATA: json.dumps(metadata, ensure_ascii=False).encode("utf-8"),
        CHUNK_VECTORS: faiss.serialize_index(index.chunk_vectors).tobytes(),
        SENTENCE_VECTORS: faiss.serialize_index(index.sentence_vectors).tobytes(),
    }
    files = {}
    for name, data in payloads.items():
        _write_synced(build_dir / name, data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    index.manifest.files = files
    # The manifest goes last: a build folder without one was never finished.
    _write_synced(build_dir / MANIFEST, json.dumps(asdict(index.manifest), indent=2).encode("utf-8"))


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _pause_for_tests() -> None:
    signal_file = os.environ.get(PAUSE_BEFORE_SWAP)
    if signal_file:
        Path(signal_file).write_text(str(os.getpid()))
        time.sleep(60)


def _swap_current(index_dir: Path, build_dir: Path) -> None:
    link = index_dir / CURRENT
    if link.is_dir() and not link.is_symlink():
        # Not ours (a copy, an unpacked backup): set it aside, since a link cannot replace a folder.
        aside = index_dir / f".broken-{CURRENT}-{os.getpid()}"
        os.replace(link, aside)
        shutil.rmtree(aside, ignore_errors=True)
    temp_link = index_dir / f".{CURRENT}-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temp_link.unlink()
    temp_link.symlink_to(build_dir.name)
    os.replace(temp_link, link)  # atomic: readers see the old build or the new one, never half


def _remove_old_builds(index_dir: Path, keep: str | None) -> None:
    for path in index_dir.glob("build-*"):
        if path.name != keep and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def current_build_name(index_dir: Path) -> str | None:
    """The name of the build folder `current` links to, when it is such a link."""
    link = index_dir / CURRENT
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    return target if "/" not in target and target.startswith("build-") else None


def current_build(index_dir: Path) -> Path | None:
    """The folder `current` points at, or None when no index has been built (or the link dangles)."""
    link = index_dir / CURRENT
    if not link.exists():
        return None
    name = current_build_name(index_dir)
    if name is None:
        raise IndexDamagedError(link, "not a link to a build folder of this index directory")
    return index_dir / name


class _Strict(BaseModel):
    # Types exactly as written (no "1" for 1, no null for text), no unknown fields, no NaN.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


NonNegative = Annotated[int, Field(ge=0)]
Number = Annotated[int, Field(ge=1)]


class _FileRecord(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: NonNegative


class _ManifestModel(_Strict):
    model: str
    dimension: int = Field(ge=1, le=65536)
    chunker_version: str
    chunk_max_chars: Number
    corpus: dict[str, str]
    documents: list[str]
    skipped: list[dict[str, str]]
    chunks: NonNegative
    sentences: NonNegative
    built_at: str
    build_seconds: float = Field(ge=0)
    files: dict[str, _FileRecord] = {}
    format: int


class _DocumentModel(_Strict):
    name: str
    title: str
    outlet: str | None
    date: str | None
    paragraphs: list[tuple[NonNegative, NonNegative, NonNegative, str]]  # paragraph 0: the header lines
    length: NonNegative


class _SentenceModel(_Strict):
    doc: str
    paragraph: NonNegative
    start: NonNegative
    end: NonNegative
    text: str


class _SentenceWithRoleModel(_SentenceModel):
    role: Literal["body", "title", "outlet", "date"]


class _ChunkModel(_SentenceModel):
    id: NonNegative
    sentence_ids: tuple[NonNegative, ...]


class _MetadataModel(_Strict):
    documents: list[_DocumentModel]
    chunks: list[_ChunkModel]
    sentences: list[_SentenceWithRoleModel]


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg']}"[:160]


def _read_regular(path: Path) -> bytes:
    """The bytes of an index file; IndexDamagedError when it is missing or not a plain file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise IndexDamagedError(path, "missing") from None
    except OSError as error:
        raise IndexDamagedError(path, f"unreadable: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise IndexDamagedError(path, "not a regular file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise IndexDamagedError(path, f"unreadable: {error.strerror}") from None


def read_manifest(build_dir: Path) -> Manifest:
    """The manifest of a build folder; IndexDamagedError when it is missing, unreadable or malformed."""
    path = build_dir / MANIFEST
    try:
        model = _ManifestModel.model_validate_json(_read_regular(path))
    except ValidationError as error:
        raise IndexDamagedError(path, f"unreadable: {_problem(error)}") from None
    data = model.model_dump()
    return Manifest(**data)


def verify_files(build_dir: Path, manifest: Manifest) -> dict[str, bytes]:
    """Read the index files and check each against the size and sha256 the manifest recorded."""
    contents = {}
    for name in INDEX_FILES:
        path = build_dir / name
        data = _read_regular(path)
        record = manifest.files.get(name)
        if record is None:
            raise IndexDamagedError(build_dir / MANIFEST, f"it records no checksum for {name}")
        if len(data) != record["size"]:
            raise IndexDamagedError(path, f"{len(data)} bytes, the manifest says {record['size']}")
        if hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise IndexDamagedError(path, "its sha256 differs from the manifest's: changed since the build")
        contents[name] = data
    return contents


def staleness(
    manifest: Manifest, corpus_dir: Path, model: str, chunk_max_chars: int, rules: CorpusRules | None = None
) -> str | None:
    """Why an index built as `manifest` no longer fits the corpus and settings, or None when it does."""
    if manifest.format != INDEX_FORMAT:
        return f"index format {manifest.format}, this storybot writes {INDEX_FORMAT}"
    if manifest.model != model:
        return f"built with model {manifest.model!r}, settings ask for {model!r}"
    if manifest.chunker_version != CHUNKER_VERSION:
        return f"built by chunker version {manifest.chunker_version}, this is {CHUNKER_VERSION}"
    if manifest.chunk_max_chars != chunk_max_chars:
        return f"built with chunks of {manifest.chunk_max_chars} chars, settings ask for {chunk_max_chars}"
    current = hash_corpus(corpus_dir, rules)
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


def _read_vectors(path: Path, data: bytes, dimension: int, count: int) -> faiss.Index:
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except Exception as error:  # faiss raises RuntimeError with a C++ message for any bad file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise IndexDamagedError(path, f"FAISS cannot read it: {first_line[:120]}") from None
    if not isinstance(index, faiss.IndexFlat) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexDamagedError(path, f"a {type(index).__name__}, not the flat inner-product index storybot writes")
    if index.d != dimension:
        raise IndexDamagedError(path, f"vectors have dimension {index.d}, the manifest says {dimension}")
    if index.ntotal != count:
        raise IndexDamagedError(path, f"holds {index.ntotal} vectors, the metadata lists {count}")
    vectors = index.reconstruct_n(0, count) if count else np.zeros((0, dimension), dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise IndexDamagedError(path, "holds NaN or infinite vectors")
    norms = np.linalg.norm(vectors, axis=1)
    # Every vector storybot writes has unit length (or is zero, for a text without words).
    if not np.all((np.abs(norms - 1.0) < 1e-3) | (norms == 0)):
        raise IndexDamagedError(path, "holds vectors that are not of unit length")
    return index


def _check_offsets(metadata: _MetadataModel) -> str | None:
    """What is inconsistent in the metadata (offsets outside their paragraph or file, bad references), or None."""
    paragraphs: dict[str, dict[int, tuple[int, int, str]]] = {}
    for document in metadata.documents:
        if document.name in paragraphs:
            return f"document {document.name!r} is listed twice"
        numbers = paragraphs[document.name] = {}
        for number, start, end, text in document.paragraphs:
            if not start <= end <= document.length or len(text) != end - start:
                return f"paragraph {number} of {document.name!r} has offsets {start}-{end} outside the text"
            numbers[number] = (start, end, text)
    passages: list[tuple[str, int, _SentenceModel]] = [("sentence", i, s) for i, s in enumerate(metadata.sentences)]
    passages += [("chunk", i, c) for i, c in enumerate(metadata.chunks)]
    for kind, position, passage in passages:
        paragraph = paragraphs.get(passage.doc, {}).get(passage.paragraph)
        if paragraph is None:
            return f"{kind} {position} refers to a paragraph that is not there"
        start, end, text = paragraph
        if not start <= passage.start <= passage.end <= end:
            return f"{kind} {position} has offsets {passage.start}-{passage.end} outside its paragraph"
        if text[passage.start - start : passage.end - start] != passage.text:
            return f"{kind} {position}'s text is not the paragraph's text at its offsets"
    for position, chunk in enumerate(metadata.chunks):
        if chunk.id != position or any(i >= len(metadata.sentences) for i in chunk.sentence_ids):
            return f"chunk {position} has a wrong id or refers to sentences that are not there"
    return None


def load_index(build_dir: Path) -> StoredIndex:
    """Load a build folder, checking every file against the manifest; IndexDamagedError names the bad file."""
    manifest = read_manifest(build_dir)
    contents = verify_files(build_dir, manifest)
    metadata_path = build_dir / METADATA
    try:
        metadata = _MetadataModel.model_validate_json(contents[METADATA])
    except ValidationError as error:
        raise IndexDamagedError(metadata_path, f"unreadable: {_problem(error)}") from None
    problem = _check_offsets(metadata)
    if problem:
        raise IndexDamagedError(metadata_path, problem)
    documents = {
        d.name: DocumentInfo(
            name=d.name,
            title=d.title,
            outlet=d.outlet,
            date=d.date,
            paragraphs={n: (start, end, text) for n, start, end, text in d.paragraphs},
            length=d.length,
        )
        for d in metadata.documents
    }
    chunks = [Chunk(**c.model_dump()) for c in metadata.chunks]
    sentences = [Sentence(**s.model_dump()) for s in metadata.sentences]
    if len(chunks) != manifest.chunks or len(sentences) != manifest.sentences:
        raise IndexDamagedError(metadata_path, "chunk or sentence count differs from the manifest")
    return StoredIndex(
        manifest=manifest,
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=_read_vectors(
            build_dir / CHUNK_VECTORS, contents[CHUNK_VECTORS], manifest.dimension, len(chunks)
        ),
        sentence_vectors=_read_vectors(
            build_dir / SENTENCE_VECTORS, contents[SENTENCE_VECTORS], manifest.dimension, len(sentences)
        ),
        path=build_dir,
    )
