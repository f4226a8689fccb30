"""Build (incrementally), save atomically and load the index, checked against the manifest of how it was built.

Layout under the index directory:
    current -> build-20261128T040512-ab12cd   (a symlink, swapped atomically by os.replace)
    embeddings.sqlite          vectors cached by (model, chunker version, text): see bot.indexing.cache
    build-.../manifest.json    model, dimension, chunker version, sha256, size and mtime of every corpus file,
                               the kind of vector store, build time, sha256 and size of the three files below
    build-.../chunks.faiss     chunk vectors    (inner product on unit vectors = cosine), by chunk id
    build-.../sentences.faiss  sentence vectors, for choosing the answer inside a passage, by sentence id
    build-.../metadata.sqlite  documents, chunks, sentences and the inverted maps: see bot.indexing.metadata
A crash while building leaves `current` pointing at the previous build, which keeps answering; a failed
build removes its folder, and the next build removes any folder a killed one left behind.

A build starts from the previous one when it was made the same way: it copies the metadata, deletes the
articles that changed or went, and chunks and embeds only the new and changed ones. Ids are never reused,
so the vectors of unchanged articles stay where they are.
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
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import CorpusError, IndexDamagedError, IndexError_
from bot.indexing.cache import EmbeddingCache
from bot.indexing.chunking import CHUNKER_VERSION, Chunk, Sentence, chunk_document
from bot.indexing.corpus import Corpus, CorpusRules, KnownFile, SkippedFile, hash_corpus, read_corpus
from bot.indexing.embedding import Embedder, ProgressCallback
from bot.indexing.metadata import DocumentInfo, MetadataStore
from bot.indexing.store import FaissVectorStore, VectorStore

log = logging.getLogger(__name__)

INDEX_FORMAT = 4  # 3: SQLite metadata, vectors by id, incremental builds; 4: topics are title words
CURRENT = "current"
MANIFEST = "manifest.json"
METADATA = "metadata.sqlite"
CHUNK_VECTORS = "chunks.faiss"
SENTENCE_VECTORS = "sentences.faiss"
INDEX_FILES = (METADATA, CHUNK_VECTORS, SENTENCE_VECTORS)
EMBED_GROUP = 4096  # texts embedded (and their vectors held) at a time: rebuild memory stays flat
# A test hook, not a setting: a file path; save_index writes its pid there and waits just before the swap,
# so a test can kill a rebuild inside the save/swap window.
PAUSE_BEFORE_SWAP = "STORYBOT_TEST_PAUSE_BEFORE_SWAP"

__all__ = ["DocumentInfo"]  # re-exported: front ends read documents from the index


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
    corpus_stats: dict[str, list[int]] = field(default_factory=dict)  # article -> [size, mtime_ns]
    vectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> the kind of store it holds
    incremental: bool = False  # built from the previous build (False: from scratch)

    @property
    def in_engine(self) -> bool:
        """Whether the vectors live in a vector engine rather than in FAISS files of the build."""
        return any(record["type"] == "qdrant" for record in self.vectors.values())

    def known_files(self) -> dict[str, KnownFile]:
        """The articles this build read, with what a later build needs to tell whether they changed."""
        return {
            name: KnownFile(self.corpus[name], size, mtime_ns)
            for name, (size, mtime_ns) in self.corpus_stats.items()
            if name in self.corpus
        }


Item = TypeVar("Item", Chunk, Sentence)


class Rows(Generic[Item]):
    """Chunks or sentences by id, read from the metadata when asked for (a start-up reads none)."""

    def __init__(self, metadata: MetadataStore, kind: str, count: int) -> None:
        self._metadata = metadata
        self._kind = kind
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, item_id: int) -> Item:
        return self.many([item_id])[item_id]

    def many(self, ids: list[int]) -> dict[int, Item]:
        if self._kind == "chunk":
            return self._metadata.chunks(ids)  # type: ignore[return-value]
        return {i: row.sentence for i, row in self._metadata.sentences(ids).items()}  # type: ignore[misc]

    def ids(self) -> list[int]:
        return self._metadata.chunk_ids() if self._kind == "chunk" else self._metadata.sentence_ids()

    def __iter__(self) -> Iterator[Item]:
        ids = self.ids()
        for start in range(0, len(ids), 1000):
            batch = self.many(ids[start : start + 1000])
            yield from (batch[i] for i in ids[start : start + 1000])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rows | list):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Documents(Mapping[str, DocumentInfo]):
    """Documents by name, each read from the metadata the first time it is cited."""

    def __init__(self, metadata: MetadataStore, names: list[str]) -> None:
        self._metadata = metadata
        self._names = names
        self._read = lru_cache(maxsize=256)(self._read_document)

    def _read_document(self, name: str) -> DocumentInfo | None:
        return self._metadata.document(name)

    def __getitem__(self, name: str) -> DocumentInfo:
        info = self._read(name)
        if info is None:
            raise KeyError(name)
        return info

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class StoredIndex:
    """A loaded (or freshly built) index: vectors in their stores, everything else in the metadata."""

    manifest: Manifest
    metadata: MetadataStore
    chunk_vectors: VectorStore
    sentence_vectors: VectorStore
    path: Path | None = None
    documents: Documents = field(init=False)
    chunks: Rows[Chunk] = field(init=False)
    sentences: Rows[Sentence] = field(init=False)

    def __post_init__(self) -> None:
        self.documents = Documents(self.metadata, list(self.manifest.documents))
        self.chunks = Rows(self.metadata, "chunk", self.manifest.chunks)
        self.sentences = Rows(self.metadata, "sentence", self.manifest.sentences)


@dataclass(frozen=True)
class BuildReport:
    index: StoredIndex
    seconds: float
    skipped: list[SkippedFile]
    embedded: int = 0  # texts encoded by the model in this build (the rest came from the previous build or cache)
    reused: int = 0  # articles taken over unchanged from the previous build


# -- building -----------------------------------------------------------------------------------------------


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    chunk_max_chars: int,
    rules: CorpusRules | None = None,
    progress: ProgressCallback | None = None,
    full: bool = False,
    store_url: str = "",
) -> BuildReport:
    """Build the index of `corpus_dir` into a new build folder of `index_dir` and swap it in atomically.

    Call it holding build_lock. Starts from the current build when it was made the same way and its files
    pass their checksums, unless `full`: then every article is chunked again (vectors still come from the
    embedding cache when their text was embedded before), which also repairs a build damaged in ways its
    checksums cannot see.
    """
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    previous = None if full else _previous_build(index_dir, embedder, chunk_max_chars, store_url)
    corpus = read_corpus(corpus_dir, rules, previous[1].manifest.known_files() if previous else None)
    if not corpus.documents and not corpus.unchanged:
        reasons = "; ".join(f"{s.name} {s.reason}" for s in corpus.skipped) or "no .txt or .md files in it"
        raise CorpusError(f"no readable article in the corpus directory ({reasons})")
    target = current_build_name(index_dir)
    _remove_old_builds(index_dir, keep=target, store_url=store_url)  # left behind by a killed build
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    build_dir = Path(tempfile.mkdtemp(prefix=f"build-{stamp}-", dir=index_dir))
    try:
        cache = EmbeddingCache(index_dir, embedder.name, CHUNKER_VERSION, embedder.dimension)
        try:
            index, embedded, reused = _build(
                corpus, build_dir, embedder, chunk_max_chars, cache, previous, progress, store_url
            )
        finally:
            cache.close()
        index.manifest.build_seconds = round(time.perf_counter() - started, 3)
        _write_manifest(index, build_dir)
        _pause_for_tests()
        _swap_current(index_dir, build_dir)
    except BaseException:
        _drop_engine_collections(build_dir, store_url, quiet=True)  # the error raised says what went wrong
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    _remove_old_builds(index_dir, keep=build_dir.name, store_url=store_url)
    index.path = build_dir
    return BuildReport(index, time.perf_counter() - started, list(corpus.skipped), embedded, reused)


def _previous_build(
    index_dir: Path, embedder: Embedder, chunk_max_chars: int, store_url: str
) -> tuple[Path, StoredIndex] | None:
    """The current build, loaded, when a new build can start from it (made the same way, files intact)."""
    try:
        build_dir = current_build(index_dir)
        if build_dir is None:
            return None
        manifest = read_manifest(build_dir)
    except IndexDamagedError:
        return None
    same = (
        manifest.format == INDEX_FORMAT
        and manifest.model == embedder.name
        and manifest.dimension == embedder.dimension
        and manifest.chunker_version == CHUNKER_VERSION
        and manifest.chunk_max_chars == chunk_max_chars
        and manifest.in_engine == bool(store_url)
    )
    if not same:
        return None
    try:
        return build_dir, load_index(build_dir, check_vectors=False, store_url=store_url)
    except IndexDamagedError as error:
        log.warning("cannot start from the previous build (%s): building from scratch", error)
        return None


def _build(
    corpus: Corpus,
    build_dir: Path,
    embedder: Embedder,
    chunk_max_chars: int,
    cache: EmbeddingCache,
    previous: tuple[Path, StoredIndex] | None,
    progress: ProgressCallback | None,
    store_url: str,
) -> tuple[StoredIndex, int, int]:
    metadata_path = build_dir / METADATA
    stores: tuple[VectorStore, VectorStore] | None = None
    reused = list(corpus.unchanged)
    new_documents = corpus.documents
    if previous is not None:
        old = previous[1]
        stores = (old.chunk_vectors, old.sentence_vectors)
        if store_url:  # the previous build goes on answering from its collections: this build edits copies
            chunk_copy = old.chunk_vectors.copy_to(_collection(build_dir, "chunks"))  # type: ignore[attr-defined]
            sentence_copy = old.sentence_vectors.copy_to(_collection(build_dir, "sentences"))  # type: ignore[attr-defined]
            stores = (chunk_copy, sentence_copy)
        old.metadata.close()
        shutil.copyfile(previous[0] / METADATA, metadata_path)
        metadata = MetadataStore(metadata_path, writable=True)
        old_manifest = old.manifest
        # An article read again with the same content (touched, copied back) keeps its chunks and vectors.
        same = {d.name for d in corpus.documents if old_manifest.corpus.get(d.name) == corpus.file_hashes[d.name]}
        reused += sorted(same & set(old_manifest.documents))
        kept = set(reused)
        new_documents = [d for d in corpus.documents if d.name not in kept]
        gone = (set(old_manifest.documents) - kept) | {d.name for d in new_documents}
        for name in sorted(gone & set(old_manifest.documents)):
            chunk_ids, sentence_ids = metadata.remove_document(name)
            stores[0].delete(chunk_ids)
            stores[1].delete(sentence_ids)
    else:
        metadata = MetadataStore.create(metadata_path)
        reused = []
    texts: list[str] = []
    kinds: list[tuple[str, int]] = []  # ("chunk" or "sentence", id) of each text
    for document in new_documents:
        first_chunk, first_sentence = metadata.next_ids()
        chunks, sentences = chunk_document(document, chunk_max_chars, first_chunk, first_sentence)
        metadata.add_document(document, chunks, sentences, first_sentence)
        texts += [c.text for c in chunks] + [s.text for s in sentences]
        kinds += [("chunk", c.id) for c in chunks] + [("sentence", first_sentence + i) for i in range(len(sentences))]
    names, counts = metadata.document_names(), metadata.counts()
    metadata.close()

    def new_store(kind: str, ids: np.ndarray, vectors: np.ndarray) -> VectorStore:
        if not store_url:
            return FaissVectorStore.build(embedder.dimension, ids, vectors)
        from bot.indexing.qdrant_store import open_qdrant

        store = open_qdrant(store_url, _collection(build_dir, kind), embedder.dimension, create=True)
        store.upsert(ids, vectors)
        return store

    chunk_store, sentence_store, embedded = _store_vectors(
        texts, kinds, embedder, cache, stores, counts, progress, new_store
    )
    manifest = Manifest(
        model=embedder.name,
        dimension=embedder.dimension,
        chunker_version=CHUNKER_VERSION,
        chunk_max_chars=chunk_max_chars,
        corpus=dict(corpus.file_hashes),
        documents=names,
        skipped=[asdict(s) for s in corpus.skipped],
        chunks=counts[1],
        sentences=counts[2],
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=0.0,
        corpus_stats={name: list(value) for name, value in corpus.file_stats.items()},
        vectors={CHUNK_VECTORS: chunk_store.describe(), SENTENCE_VECTORS: sentence_store.describe()},
        incremental=previous is not None,
    )
    for store, name in ((chunk_store, CHUNK_VECTORS), (sentence_store, SENTENCE_VECTORS)):
        if isinstance(store, FaissVectorStore):
            _write_vectors(store, build_dir / name)
    _fsync(metadata_path)
    index = StoredIndex(manifest, MetadataStore(metadata_path), chunk_store, sentence_store)
    return index, embedded, len(reused)


def _store_vectors(
    texts: list[str],
    kinds: list[tuple[str, int]],
    embedder: Embedder,
    cache: EmbeddingCache,
    previous: tuple[VectorStore, VectorStore] | None,
    counts: tuple[int, int, int],
    progress: ProgressCallback | None,
    new_store: Callable[[str, np.ndarray, np.ndarray], VectorStore],
) -> tuple[VectorStore, VectorStore, int]:
    """Embed the new texts in groups (cache first, then the model) into the chunk and sentence stores.

    The new vectors are written into one array per kind as each group is embedded, and each array is freed
    once its store holds it: a rebuild holds at most one extra copy of the new vectors beside the store.
    """
    is_chunk = np.array([kind == "chunk" for kind, _ in kinds], dtype=bool)
    ids = np.array([item_id for _, item_id in kinds], dtype=np.int64)
    row = np.cumsum(is_chunk) - 1  # a text's row in its kind's array
    row[~is_chunk] = np.cumsum(~is_chunk)[~is_chunk] - 1
    by_kind = {
        True: np.empty((int(is_chunk.sum()), embedder.dimension), dtype=np.float32),
        False: np.empty((int((~is_chunk).sum()), embedder.dimension), dtype=np.float32),
    }
    embedded = done = 0
    for start in range(0, len(texts), EMBED_GROUP):
        group = texts[start : start + EMBED_GROUP]
        vectors, missing = cache.lookup(group)
        if missing:
            # The same text twice (a repeated line, a sentence that is a chunk of its own) is embedded once.
            unique = list(dict.fromkeys(group[i] for i in missing))

            def report(count: int, _total: int, offset: int = done + len(group) - len(unique)) -> None:
                if progress:
                    progress(offset + count, len(texts))

            fresh = embedder.encode(unique, progress=report)
            row_of = {text: position for position, text in enumerate(unique)}
            vectors[missing] = fresh[[row_of[group[i]] for i in missing]]
            cache.store(unique, fresh)
            embedded += len(unique)
        done += len(group)
        if progress:
            progress(done, len(texts))
        span = slice(start, start + len(group))
        for kind in (True, False):
            mask = is_chunk[span] == kind
            by_kind[kind][row[span][mask]] = vectors[mask]
    stores = []
    for position, (store_kind, kind, count) in enumerate(
        (("chunks", True, counts[1]), ("sentences", False, counts[2]))
    ):
        new_ids, new_vectors = ids[is_chunk == kind], by_kind.pop(kind)
        store = previous[position] if previous is not None else None
        if store is not None and store.fits(count):
            store.upsert(new_ids, new_vectors)
        else:
            if store is not None:  # grown past (or shrunk below) the size where another kind of store is better
                old_ids, old_vectors = store.all_vectors()
                new_ids = np.concatenate([old_ids, new_ids])
                new_vectors = np.concatenate([old_vectors, new_vectors])
            store = new_store(store_kind, new_ids, new_vectors)
        del new_vectors  # this kind's copy goes before the next kind's store is built
        stores.append(store)
    return stores[0], stores[1], embedded


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


def _write_vectors(store: FaissVectorStore, path: Path) -> None:
    store.write(path)
    _fsync(path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _file_record(path: Path) -> dict[str, Any]:
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return {"sha256": digest, "size": path.stat().st_size}


def _write_manifest(index: StoredIndex, build_dir: Path) -> None:
    index.manifest.files = {name: _file_record(build_dir / name) for name in _index_files(index.manifest)}
    # The manifest goes last: a build folder without one was never finished.
    _write_synced(build_dir / MANIFEST, json.dumps(asdict(index.manifest), indent=2).encode("utf-8"))


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


def _remove_old_builds(index_dir: Path, keep: str | None, store_url: str = "") -> None:
    for path in index_dir.glob("build-*"):
        if path.name != keep and path.is_dir() and not path.is_symlink():
            _drop_engine_collections(path, store_url)
            shutil.rmtree(path, ignore_errors=True)


def _collection(build_dir: Path, kind: str) -> str:
    """The engine collection of one build's vectors: a build never writes another build's collection."""
    return f"storybot-{build_dir.name}-{kind}"


def _drop_engine_collections(build_dir: Path, store_url: str, quiet: bool = False) -> None:
    """Delete the vector-engine collections a build folder made (nothing for FAISS files)."""
    if not store_url:
        return
    from bot.indexing.qdrant_store import drop_collection

    for kind in ("chunks", "sentences"):
        try:
            drop_collection(store_url, _collection(build_dir, kind))
        except IndexError_ as error:  # an old build's vectors left behind must not fail the new build
            log.log(logging.DEBUG if quiet else logging.WARNING, "could not delete a build's vectors: %s", error)
            return


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


# -- loading ------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    # Types exactly as written (no "1" for 1, no null for text), no unknown fields, no NaN.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


NonNegative = Annotated[int, Field(ge=0)]
Number = Annotated[int, Field(ge=1)]


class _FileRecord(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: NonNegative


class _StoreRecord(_Strict):
    type: str = Field(pattern=r"^(flat|ivf|qdrant)$")
    vectors: NonNegative
    nlist: Number | None = None
    nprobe: Number | None = None
    collection: str | None = None


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
    corpus_stats: dict[str, tuple[NonNegative, NonNegative]] = {}
    vectors: dict[str, _StoreRecord] = {}
    incremental: bool = False


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg']}"[:160]


def _check_regular(path: Path) -> os.stat_result:
    """The file's stat; IndexDamagedError when it is missing or not a plain file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise IndexDamagedError(path, "missing") from None
    except OSError as error:
        raise IndexDamagedError(path, f"unreadable: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise IndexDamagedError(path, "not a regular file")
    return info


def _read_regular(path: Path) -> bytes:
    _check_regular(path)
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
    data["corpus_stats"] = {name: list(value) for name, value in data["corpus_stats"].items()}
    return Manifest(**data)


def _engine_store(build_dir: Path, kind: str, manifest: Manifest, store_url: str, count: int) -> VectorStore:
    """A build's vectors in the vector engine, checked to hold as many vectors as its metadata has rows."""
    if not store_url:
        raise IndexDamagedError(
            build_dir / MANIFEST, "its vectors are in a vector engine, but STORYBOT_VECTOR_STORE_URL is not set"
        )
    from bot.indexing.qdrant_store import open_qdrant

    store = open_qdrant(store_url, _collection(build_dir, kind), manifest.dimension)
    if len(store) != count:
        raise IndexDamagedError(build_dir / MANIFEST, f"the engine holds {len(store)} {kind} vectors, not {count}")
    return store


def _index_files(manifest: Manifest) -> tuple[str, ...]:
    """The files of a build: the vector files only when the vectors are not in an engine."""
    if manifest.in_engine:
        return (METADATA,)
    return INDEX_FILES


def verify_files(build_dir: Path, manifest: Manifest) -> None:
    """Check each index file against the size and sha256 the manifest recorded (streamed, not held)."""
    check_file_sizes(build_dir, manifest)
    for name in _index_files(manifest):
        _check_digest(build_dir / name, manifest.files[name]["sha256"])


def check_file_sizes(build_dir: Path, manifest: Manifest) -> None:
    """The cheap part of verify_files: every index file is there, a plain file, of the size recorded."""
    for name in _index_files(manifest):
        path = build_dir / name
        info = _check_regular(path)
        record = manifest.files.get(name)
        if record is None:
            raise IndexDamagedError(build_dir / MANIFEST, f"it records no checksum for {name}")
        if info.st_size != record["size"]:
            raise IndexDamagedError(path, f"{info.st_size} bytes, the manifest says {record['size']}")


def _check_digest(path: Path, sha256: str) -> None:
    try:
        digest = _file_record(path)["sha256"]
    except OSError as error:
        raise IndexDamagedError(path, f"unreadable: {error.strerror}") from None
    if digest != sha256:
        raise IndexDamagedError(path, "its sha256 differs from the manifest's: changed since the build")


def staleness(
    manifest: Manifest,
    corpus_dir: Path,
    model: str,
    chunk_max_chars: int,
    rules: CorpusRules | None = None,
    store_url: str = "",
) -> str | None:
    """Why an index built as `manifest` no longer fits the corpus and settings, or None when it does.

    Only files whose size or mtime changed since the build are read and hashed.
    """
    if manifest.format != INDEX_FORMAT:
        return f"index format {manifest.format}, this storybot writes {INDEX_FORMAT}"
    if manifest.model != model:
        return f"built with model {manifest.model!r}, settings ask for {model!r}"
    if manifest.chunker_version != CHUNKER_VERSION:
        return f"built by chunker version {manifest.chunker_version}, this is {CHUNKER_VERSION}"
    if manifest.chunk_max_chars != chunk_max_chars:
        return f"built with chunks of {manifest.chunk_max_chars} chars, settings ask for {chunk_max_chars}"
    if manifest.in_engine != bool(store_url):
        where = "a vector engine" if manifest.in_engine else "FAISS files"
        return f"its vectors are in {where}, settings ask for {store_url or 'FAISS files'}"
    current = hash_corpus(corpus_dir, rules, manifest.known_files())
    if current != manifest.corpus:
        added = sorted(set(current) - set(manifest.corpus))
        removed = sorted(set(manifest.corpus) - set(current))
        changed = sorted(n for n in set(current) & set(manifest.corpus) if current[n] != manifest.corpus[n])
        parts = [
            f"{label}: {', '.join(names[:5])}{f' and {len(names) - 5} more' if len(names) > 5 else ''}"
            for label, names in (("added", added), ("removed", removed), ("changed", changed))
            if names
        ]
        return "corpus changed (" + "; ".join(parts) + ")"
    return None


def load_index(build_dir: Path, check_vectors: bool = True, store_url: str = "") -> StoredIndex:
    """Load a build folder, checking every file against the manifest; IndexDamagedError names the bad file.

    Metadata rows are checked as they are read (see MetadataStore); the vectors are all checked here.
    """
    manifest = read_manifest(build_dir)
    check_file_sizes(build_dir, manifest)
    # The files are hashed on other threads (hashlib leaves the GIL) while this one reads them: at 10,000
    # articles that is 700 MB, half a second of hashing. Nothing read is used before every hash matched.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="index-hash") as hashing:
        digests = [
            hashing.submit(_check_digest, build_dir / name, manifest.files[name]["sha256"])
            for name in _index_files(manifest)
        ]
        try:
            index = _open_build(build_dir, manifest, check_vectors, store_url)
        except IndexDamagedError:
            for digest in digests:
                digest.result()  # a file changed since the build is the better explanation
            raise
        for digest in digests:
            digest.result()
    return index


def _open_build(build_dir: Path, manifest: Manifest, check_vectors: bool, store_url: str) -> StoredIndex:
    metadata_path = build_dir / METADATA
    metadata = MetadataStore(metadata_path)
    metadata.check_schema()
    documents, chunks, sentences = metadata.counts()
    if (chunks, sentences) != (manifest.chunks, manifest.sentences) or documents != len(manifest.documents):
        raise IndexDamagedError(metadata_path, "document, chunk or sentence count differs from the manifest")
    stores: list[VectorStore] = []
    for name, kind, count in ((CHUNK_VECTORS, "chunks", chunks), (SENTENCE_VECTORS, "sentences", sentences)):
        if manifest.in_engine:
            stores.append(_engine_store(build_dir, kind, manifest, store_url, count))
        else:
            stores.append(FaissVectorStore.read(build_dir / name, manifest.dimension, count, check_vectors))
    chunk_vectors, sentence_vectors = stores
    return StoredIndex(manifest, metadata, chunk_vectors, sentence_vectors, path=build_dir)
