"""One contract for every vector store (FAISS flat, FAISS IVF, Qdrant local mode), and Qdrant's failures."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import bot.indexing.qdrant_store as qdrant_module
import bot.indexing.store as store_module
from bot.errors import IndexError_
from bot.indexing.chunking import split_sentences
from bot.indexing.embedding import SentenceTransformerEmbedder
from bot.indexing.qdrant_store import QdrantVectorStore, close_clients, open_qdrant, register_api_key
from bot.indexing.store import FaissVectorStore
from bot.service import StorybotService

from .conftest import SEED_ARTICLE, FakeEmbedder, make_settings

DIMENSION = 32
COUNT = 120  # Qdrant's local mode commits each point to SQLite on its own: keep it small

MakeStore = Callable[[np.ndarray, np.ndarray], FaissVectorStore | QdrantVectorStore]


def unit_vectors(count: int, dimension: int = DIMENSION, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def qdrant_store(path: Path, ids: np.ndarray, vectors: np.ndarray, collection: str = "vectors") -> QdrantVectorStore:
    store = open_qdrant(f"path:{path}", collection, vectors.shape[1], create=True)
    store.upsert(ids, vectors)
    return store


@pytest.fixture(autouse=True)
def closed_clients() -> Iterator[None]:
    """Each test opens its own Qdrant folders and releases them."""
    yield
    close_clients()


@pytest.fixture(params=["flat", "ivf", "qdrant"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeStore:
    """A factory of stores of one kind holding the given ids and vectors."""
    if request.param == "ivf":
        monkeypatch.setattr(store_module, "IVF_MIN_VECTORS", 50)
        monkeypatch.setattr(store_module, "IVF_PROBE_SHARE", 1.0)  # every list searched: exact, like flat
    if request.param == "qdrant":
        return lambda ids, vectors: qdrant_store(tmp_path / "qdrant", ids, vectors)

    def faiss_store(ids: np.ndarray, vectors: np.ndarray) -> FaissVectorStore:
        store = FaissVectorStore.build(vectors.shape[1], ids, vectors)
        assert store.describe()["type"] == request.param
        return store

    return faiss_store


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """Ids that are neither 0.. nor contiguous, as after incremental rebuilds, and their vectors."""
    return np.arange(COUNT, dtype=np.int64) * 3 + 5, unit_vectors(COUNT)


def test_search_finds_each_vector_itself_first(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    for row in range(0, COUNT, 13):
        found = store.search(vectors[row], 5)
        assert len(found) == 5
        assert found[0][0] == ids[row]
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


def test_k_larger_than_the_store_returns_everything_best_first(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids[:60], vectors[:60])
    found = store.search(vectors[3], 1_000)
    assert sorted(i for i, _ in found) == sorted(ids[:60].tolist())
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert store.search(vectors[3], 0) == []


def test_len_counts_stored_vectors(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    assert len(store) == COUNT
    assert store.dimension == DIMENSION
    assert store.describe()["vectors"] == COUNT


def test_delete_removes_vectors(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    gone = ids[10:20].tolist()
    store.delete(gone)
    store.delete([])
    assert len(store) == COUNT - 10
    assert gone[0] not in [i for i, _ in store.search(vectors[10], COUNT)]
    assert set(store.ids().tolist()) == set(ids.tolist()) - set(gone)


def test_upsert_replaces_an_existing_id(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    replacement = unit_vectors(2, seed=99)
    store.upsert(ids[[4, 7]], replacement)
    assert len(store) == COUNT
    assert np.allclose(store.get(ids[[4, 7]].tolist()), replacement, atol=1e-6)
    assert store.search(replacement[0], 1)[0][0] == ids[4]
    assert store.search(vectors[4], 1)[0][0] != ids[4]  # the old vector is gone
    store.upsert(np.zeros(0, dtype=np.int64), np.zeros((0, DIMENSION), dtype=np.float32))
    assert len(store) == COUNT


def test_get_returns_vectors_in_the_order_asked(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    rows = [110, 3, 77, 3, 0]
    got = store.get(ids[rows].tolist())
    assert got.dtype == np.float32
    assert np.allclose(got, vectors[rows], atol=1e-6)
    assert store.get([]).shape == (0, DIMENSION)


def test_all_vectors_round_trips_the_store(make_store: MakeStore, data) -> None:
    ids, vectors = data
    store = make_store(ids, vectors)
    stored_ids, stored = store.all_vectors()
    order = np.argsort(stored_ids)
    assert stored_ids[order].tolist() == ids.tolist()
    assert np.allclose(stored[order], vectors, atol=1e-6)


# Qdrant against FAISS flat search, which is exact: the same ids in the same order.


def test_qdrant_finds_what_flat_faiss_finds_on_random_vectors(tmp_path: Path, data) -> None:
    ids, vectors = data
    flat = FaissVectorStore.build(DIMENSION, ids, vectors)
    qdrant = qdrant_store(tmp_path, ids, vectors)
    for query in unit_vectors(25, seed=1):
        expected, found = flat.search(query, 10), qdrant.search(query, 10)
        assert [i for i, _ in found] == [i for i, _ in expected]
        assert np.allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)


def test_qdrant_finds_what_flat_faiss_finds_on_real_embeddings(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    text = SEED_ARTICLE.read_text(encoding="utf-8")
    sentences = sorted({text[s.start : s.end] for s in split_sentences(text)})  # no duplicates: no ties
    vectors = real_embedder.encode(sentences)
    ids = np.arange(len(sentences), dtype=np.int64) + 1
    flat = FaissVectorStore.build(real_embedder.dimension, ids, vectors)
    qdrant = qdrant_store(tmp_path, ids, vectors)
    questions = ["Who did Putin call?", "What did Ryabkov warn?", "What would the sanctions be like?"]
    for query in real_embedder.encode(questions):
        expected, found = flat.search(query, 8), qdrant.search(query, 8)
        assert [i for i, _ in found] == [i for i, _ in expected]
        assert np.allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)


# Qdrant only: batches, copies, the collection on disk, and failures as one line naming the URL.


def test_qdrant_batches_and_reopens_from_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data) -> None:
    monkeypatch.setattr(qdrant_module, "UPSERT_BATCH", 7)
    monkeypatch.setattr(qdrant_module, "SCROLL_BATCH", 5)
    ids, vectors = data
    store = qdrant_store(tmp_path, ids, vectors)
    store.delete(ids[:50].tolist())
    close_clients()  # read back from the folder, not from the client's memory
    reopened = open_qdrant(f"path:{tmp_path}", "vectors", DIMENSION)
    assert len(reopened) == COUNT - 50
    stored_ids, stored = reopened.all_vectors()
    assert stored_ids.tolist() == ids[50:].tolist()
    assert np.allclose(stored, vectors[50:], atol=1e-6)
    assert reopened.describe() == {"type": "qdrant", "collection": "vectors", "vectors": COUNT - 50}


def test_qdrant_copy_is_changed_apart_from_the_original(tmp_path: Path, data) -> None:
    ids, vectors = data
    original = qdrant_store(tmp_path, ids, vectors)
    copy = original.copy_to("vectors-next")
    copy.delete(ids[:10].tolist())
    assert (len(original), len(copy)) == (COUNT, COUNT - 10)
    assert np.allclose(copy.get([int(ids[20])]), vectors[[20]], atol=1e-6)
    original.drop()
    with pytest.raises(IndexError_, match="no collection 'vectors'"):
        open_qdrant(f"path:{tmp_path}", "vectors", DIMENSION)


def assert_one_line(error: pytest.ExceptionInfo[IndexError_], *parts: str) -> None:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    for part in parts:
        assert part in message


def test_qdrant_server_that_does_not_answer_is_one_line_naming_the_url() -> None:
    url = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused
    with pytest.raises(IndexError_) as error:
        open_qdrant(url, "vectors", DIMENSION)
    assert_one_line(error, url, "vectors")


def test_server_that_is_not_qdrant_is_one_line_naming_the_url() -> None:
    class NotQdrant(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404, "Not Found", "<html>\n<body>no such page</body>\n</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotQdrant)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(IndexError_) as error:
            open_qdrant(url, "vectors", DIMENSION)
        assert_one_line(error, url, "'vectors'", "404")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", ["qdrant.example.org:6333", "path:", "ftp://host:6333", ""])
def test_qdrant_url_that_is_not_a_store_is_one_line(url: str) -> None:
    with pytest.raises(IndexError_) as error:
        open_qdrant(url, "vectors", DIMENSION)
    assert_one_line(error, repr(url), "path:/some/dir")


def test_qdrant_missing_or_different_collection_says_to_rebuild(tmp_path: Path, data) -> None:
    url = f"path:{tmp_path}"
    with pytest.raises(IndexError_) as error:
        open_qdrant(url, "chunks", DIMENSION)
    assert_one_line(error, url, "'chunks'", "storybot rebuild --full")
    qdrant_store(tmp_path, *data)
    with pytest.raises(IndexError_) as error:
        open_qdrant(url, "vectors", 384)
    assert_one_line(error, url, "32-d", "384-d", "storybot rebuild --full")


def test_qdrant_missing_id_is_reported_not_returned(tmp_path: Path, data) -> None:
    ids, vectors = data
    store = qdrant_store(tmp_path, ids, vectors)
    with pytest.raises(IndexError_) as error:
        store.get([int(ids[0]), 4])
    assert_one_line(error, "no vector for id 4", "storybot rebuild --full")


def test_qdrant_folder_held_by_another_client_is_one_line(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    holder = QdrantClient(path=str(tmp_path))
    try:
        with pytest.raises(IndexError_) as error:
            open_qdrant(f"path:{tmp_path}", "vectors", DIMENSION, create=True)
        assert_one_line(error, f"path:{tmp_path}")
    finally:
        holder.close()


def test_qdrant_without_the_client_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # import fails as if not installed
    with pytest.raises(IndexError_) as error:
        open_qdrant(":memory:", "vectors", DIMENSION)
    assert_one_line(error, "install storybot[qdrant]")


def test_the_api_key_setting_reaches_the_server_and_no_message(tmp_path: Path, caplog) -> None:
    seen: list[str | None] = []

    class Recording(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("api-key"))
            self.send_error(403, "Forbidden")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    secret = "s3cret-qdrant-key-0123456789"
    settings = make_settings(tmp_path, vector_store_url=url, vector_store_api_key=secret)
    try:
        with pytest.raises(IndexError_) as error:
            StorybotService.load(settings, FakeEmbedder())
    finally:
        server.shutdown()
        server.server_close()
        register_api_key(url, None)
    assert seen and all(key == secret for key in seen)
    assert secret not in str(error.value) and secret not in caplog.text
