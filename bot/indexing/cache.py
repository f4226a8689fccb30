"""Embeddings cached by (model, chunker version, text): a rebuild embeds only texts it has not seen.

One SQLite file beside the builds (`index/embeddings.sqlite`), written only under the build lock. It is a
cache: a damaged or foreign file is set aside with a warning and the rebuild embeds from scratch.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite"
_LOOKUP_BATCH = 500


class EmbeddingCache:
    def __init__(self, index_dir: Path, model: str, chunker_version: str, dimension: int) -> None:
        self.path = index_dir / CACHE_FILE
        self.dimension = dimension
        self._salt = f"{model}\0{chunker_version}\0".encode()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection | None:
        for attempt in range(2):
            try:
                db = sqlite3.connect(self.path, isolation_level=None)
                db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
                )
                db.execute("PRAGMA synchronous = NORMAL")
                return db
            except sqlite3.Error as error:
                log.warning("the embedding cache %s is unusable (%s): starting a new one", self.path, error)
                if attempt == 0:
                    self.path.unlink(missing_ok=True)
        return None

    def key(self, text: str) -> bytes:
        return hashlib.sha256(self._salt + text.encode("utf-8", "surrogatepass")).digest()

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """(vectors, positions of texts not in the cache); rows of missing texts are zero."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if self._db is None:
            return vectors, list(range(len(texts)))
        keys = [self.key(t) for t in texts]
        position: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            position.setdefault(key, []).append(i)
        found: set[int] = set()
        unique = list(position)
        try:
            for start in range(0, len(unique), _LOOKUP_BATCH):
                batch = unique[start : start + _LOOKUP_BATCH]
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(batch))})", batch
                ).fetchall()
                for key, blob in rows:
                    vector = _checked(blob, self.dimension)
                    if vector is not None:
                        for i in position[key]:
                            vectors[i] = vector
                            found.add(i)
        except sqlite3.Error as error:
            log.warning("cannot read the embedding cache %s (%s): embedding everything", self.path, error)
            return vectors, list(range(len(texts)))
        return vectors, [i for i in range(len(texts)) if i not in found]

    def store(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if self._db is None or not len(texts):
            return
        rows = [(self.key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors, strict=True)]
        try:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            log.warning("cannot write the embedding cache %s (%s)", self.path, error)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _checked(blob: object, dimension: int) -> np.ndarray | None:
    """A cached vector, or None when it is not one storybot wrote (wrong size, NaN, not unit length)."""
    if not isinstance(blob, bytes) or len(blob) != dimension * 4:
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(vector).all() or not (abs(norm - 1.0) < 1e-3 or norm == 0):
        return None
    return vector
