"""Vectors in a Qdrant collection: the store that scales past one machine (issue 9).

qdrant-client is the optional extra storybot[qdrant] and is imported only inside functions, so the bot runs
without it. Its local mode (`path:/some/dir` or `:memory:`) runs the same client API in-process, which is
how this store is tested without a server. Vectors are stored as given and compared by dot product: on
storybot's unit vectors that is the cosine, exactly as FAISS's inner product gives it (Qdrant's cosine
distance would renormalise them, and cannot hold the zero vector of a text without words).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import IndexError_

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from bot.indexing.store import VectorStore

UPSERT_BATCH = 1_000  # points per request: well under the server's 32 MB request limit for 384-d vectors
SCROLL_BATCH = 1_000
TIMEOUT_SECONDS = 30
URL_FORMS = "http(s)://host:port, path:/some/dir or :memory:"

# One client per location: local mode locks its folder to a single client, and the chunk and sentence
# stores live side by side in it.
_clients: dict[tuple[str, str | None], QdrantClient] = {}
_clients_lock = threading.Lock()
# API keys by server URL, from the settings (see register_api_key): the index code passes URLs only, and a
# key must never travel in a URL, which error messages and logs show.
_api_keys: dict[str, str] = {}


def register_api_key(url: str, api_key: str | None) -> None:
    """The key every later call to the server at `url` sends (None: none)."""
    if api_key:
        _api_keys[url] = api_key
    else:
        _api_keys.pop(url, None)


@atexit.register
def close_clients() -> None:
    """Close every client: local mode releases its folder and database (the client's own finaliser runs too
    late at exit, when it can no longer import what it needs, and prints an ignored exception)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


@contextlib.contextmanager
def _client_errors(url: str, doing: str) -> Iterator[None]:
    """Turn whatever the client raises into one line for the user; the cause stays chained for the log."""
    try:
        yield
    except IndexError_:
        raise
    # The client raises httpx, grpc, pydantic, ValueError or RuntimeError errors depending on the mode and
    # the failure; each one means the store cannot be used as asked.
    except Exception as error:
        lines = str(error).strip().splitlines()
        reason = lines[0][:160] if lines else type(error).__name__
        raise IndexError_(f"the vector store at {url} failed {doing}: {reason}") from error


def _client(url: str, api_key: str | None) -> QdrantClient:
    """The shared client for a location: a server URL, `path:/some/dir` or `:memory:`."""
    api_key = api_key or _api_keys.get(url)
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise IndexError_(f"the vector store at {url} needs qdrant-client: install storybot[qdrant]") from None
    with _clients_lock:
        client = _clients.get((url, api_key))
        if client is None:
            with _client_errors(url, "to open"):
                if url == ":memory:":
                    client = QdrantClient(location=":memory:")
                elif url.startswith("path:") and (folder := url.removeprefix("path:").strip()):
                    client = QdrantClient(path=folder)
                elif url.startswith(("http://", "https://")):
                    # No version check at start: it is one more request, and a failure shows on the first call.
                    client = QdrantClient(url=url, api_key=api_key, timeout=TIMEOUT_SECONDS, check_compatibility=False)
                else:
                    raise IndexError_(f"the vector store URL {url!r} is not one of {URL_FORMS}")
            _clients[(url, api_key)] = client
        return client


def open_qdrant(
    url: str, collection: str, dimension: int, create: bool = False, api_key: str | None = None
) -> QdrantVectorStore:
    """The store over `collection` at `url`, created empty when missing if `create`; IndexError_ otherwise."""
    client = _client(url, api_key)
    store = QdrantVectorStore(client, collection, dimension, url)
    with _client_errors(url, f"to open collection {collection!r}"):
        if not client.collection_exists(collection):
            if not create:
                raise IndexError_(
                    f"the vector store at {url} has no collection {collection!r}; "
                    "run `storybot rebuild --full` to build it"
                )
            store._create()
        store._check_config()
    return store


def drop_collection(url: str, collection: str, api_key: str | None = None) -> None:
    """Delete a collection if it is there (an old build's vectors)."""
    client = _client(url, api_key)
    with _client_errors(url, f"to delete collection {collection!r}"):
        if client.collection_exists(collection):
            client.delete_collection(collection)


class QdrantVectorStore:
    """Unit vectors in one Qdrant collection, as points whose ids are the metadata's ids (dot = cosine)."""

    def __init__(self, client: QdrantClient, collection: str, dimension: int, url: str) -> None:
        self.client = client
        self.collection = collection
        self.dimension = dimension
        self.url = url

    def __len__(self) -> int:
        with self._errors("to count vectors"):
            return int(self.client.count(self.collection, exact=True).count)

    def fits(self, count: int) -> bool:
        """One kind of store serves every corpus size (FaissVectorStore switches from flat to IVF)."""
        return True

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        from qdrant_client import models

        ids_list = np.asarray(ids, dtype=np.int64).tolist()
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._errors("to store vectors"):
            for start in range(0, len(ids_list), UPSERT_BATCH):
                batch = models.Batch(
                    ids=ids_list[start : start + UPSERT_BATCH],
                    vectors=vectors[start : start + UPSERT_BATCH].tolist(),
                )
                # wait: a search right after the build must see every vector
                self.client.upsert(self.collection, points=batch, wait=True)

    def delete(self, ids: Sequence[int]) -> None:
        from qdrant_client import models

        if not len(ids):
            return
        with self._errors("to delete vectors"):
            for start in range(0, len(ids), UPSERT_BATCH):
                selector = models.PointIdsList(points=[int(i) for i in ids[start : start + UPSERT_BATCH]])
                self.client.delete(self.collection, points_selector=selector, wait=True)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        with self._errors("to search"):
            found = self.client.query_points(self.collection, query=vector, limit=k, with_payload=False).points
        return [(int(point.id), float(point.score)) for point in found]

    def get(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        wanted = [int(i) for i in ids]
        with self._errors("to read vectors"):
            unique = list(dict.fromkeys(wanted))
            points = self.client.retrieve(self.collection, ids=unique, with_vectors=True, with_payload=False)
        by_id = {int(point.id): point.vector for point in points}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise IndexError_(
                f"the vector store at {self.url} has no vector for id {missing[0]} in collection "
                f"{self.collection!r}; run `storybot rebuild --full` to rebuild it"
            )
        return np.array([by_id[i] for i in wanted], dtype=np.float32)

    def ids(self) -> np.ndarray:
        return self._scroll(with_vectors=False)[0]

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored: for copying the store without re-embedding."""
        return self._scroll(with_vectors=True)

    def copy_to(self, collection: str) -> QdrantVectorStore:
        """A new collection beside this one (replacing any of that name) holding the same vectors, so a rebuild
        can change the copy while this one goes on answering."""
        if collection == self.collection:
            raise ValueError("a store cannot be copied onto itself")
        target = QdrantVectorStore(self.client, collection, self.dimension, self.url)
        with _client_errors(self.url, f"to create collection {collection!r}"):
            if self.client.collection_exists(collection):
                self.client.delete_collection(collection)
            target._create()
        for ids, vectors in self._batches(with_vectors=True):
            target.upsert(ids, vectors)
        return target

    def drop(self) -> None:
        """Delete the collection and every vector in it."""
        with _client_errors(self.url, f"to delete collection {self.collection!r}"):
            self.client.delete_collection(self.collection)

    def describe(self) -> dict[str, Any]:
        return {"type": "qdrant", "collection": self.collection, "vectors": len(self)}

    def _scroll(self, with_vectors: bool) -> tuple[np.ndarray, np.ndarray]:
        batches = list(self._batches(with_vectors))
        ids = [b[0] for b in batches] or [np.zeros(0, dtype=np.int64)]
        vectors = [b[1] for b in batches] or [np.zeros((0, self.dimension), dtype=np.float32)]
        return np.concatenate(ids), np.concatenate(vectors)

    def _batches(self, with_vectors: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every point, SCROLL_BATCH at a time, by id; no rows without vectors."""
        offset: Any = None
        while True:
            with self._errors("to read vectors"):
                points, offset = self.client.scroll(
                    self.collection, limit=SCROLL_BATCH, offset=offset, with_vectors=with_vectors, with_payload=False
                )
            ids = np.array([int(point.id) for point in points], dtype=np.int64)
            rows = [point.vector for point in points] if with_vectors else []
            yield ids, np.array(rows, dtype=np.float32).reshape(-1, self.dimension)
            if offset is None:
                return

    def _create(self) -> None:
        from qdrant_client import models

        params = models.VectorParams(size=self.dimension, distance=models.Distance.DOT)
        self.client.create_collection(self.collection, vectors_config=params)

    def _check_config(self) -> None:
        """The collection holds one unnamed vector of our dimension compared by dot product, as we create it."""
        from qdrant_client import models

        params = self.client.get_collection(self.collection).config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise IndexError_(
                f"the collection {self.collection!r} at {self.url} holds named vectors, not storybot's; "
                "run `storybot rebuild --full` to rebuild it"
            )
        if params.size != self.dimension or params.distance != models.Distance.DOT:
            raise IndexError_(
                f"the collection {self.collection!r} at {self.url} holds {params.size}-d vectors compared by "
                f"{params.distance.value}, storybot needs {self.dimension}-d by Dot; "
                "run `storybot rebuild --full` to rebuild it"
            )

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return _client_errors(self.url, f"{doing} in collection {self.collection!r}")


if TYPE_CHECKING:
    _conforms: type[VectorStore] = QdrantVectorStore  # mypy checks the store against the interface
