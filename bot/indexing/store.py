"""Vectors behind a small interface (upsert, delete, search, get by id), like txtai's ANN backends.

FaissVectorStore is the embedded default: exact flat search for a small corpus, IVF (inverted lists of
exact vectors) above IVF_MIN_VECTORS. IVF rather than HNSW because it deletes and re-adds by id, which an
incremental rebuild needs, and keeps exact vectors, so the dense feature the scorer was fitted on (the
cosine of question and sentence) does not change with the corpus size; PQ codes would make it approximate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from bot.errors import IndexDamagedError

_HASHTABLE: Any = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]  # by-id map: get() and delete
IVF_MIN_VECTORS = 50_000  # below this, flat search of every vector takes a few milliseconds
IVF_PROBE_SHARE = 1 / 16  # share of the inverted lists searched per question: recall@10 is in `storybot bench`
IVF_TRAINING_POINTS_PER_LIST = 40  # k-means sample size, as FAISS recommends (39 to 256 per list)


class VectorStore(Protocol):
    """What the index needs from a vector engine; ids are the metadata's chunk or sentence ids."""

    dimension: int

    def __len__(self) -> int: ...

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids, replacing any already stored under the same ids."""
        ...

    def delete(self, ids: Sequence[int]) -> None: ...

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(id, inner product) of the k nearest vectors, best first."""
        ...

    def get(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ids, in that order."""
        ...

    def describe(self) -> dict[str, Any]:
        """How the store is built, for the manifest."""
        ...

    def fits(self, count: int) -> bool:
        """Whether this kind of store suits `count` vectors (else a build makes a new one from all_vectors)."""
        ...

    def ids(self) -> np.ndarray: ...

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored."""
        ...


class FaissVectorStore:
    """A FAISS index of unit vectors with the metadata's ids (inner product = cosine)."""

    def __init__(self, index: Any) -> None:  # faiss's SWIG classes are typed too loosely to check
        self.index = index
        self.dimension = int(index.d)
        self._ivf: Any = faiss.try_extract_index_ivf(index) if not isinstance(index, faiss.IndexIDMap) else None
        if self._ivf is not None:
            self._ivf.nprobe = max(1, math.ceil(self._ivf.nlist * IVF_PROBE_SHARE))

    @classmethod
    def build(cls, dimension: int, ids: np.ndarray, vectors: np.ndarray, seed: int = 7) -> FaissVectorStore:
        """A new store for these vectors: flat when few, IVF (trained on a sample of them) when many."""
        if len(vectors) < IVF_MIN_VECTORS:
            store = cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))
        else:
            nlist = int(math.sqrt(len(vectors)))
            quantizer: Any = faiss.IndexFlatIP(dimension)
            ivf: Any = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.own_fields = True
            quantizer.this.disown()
            sample = np.random.default_rng(seed).choice(
                len(vectors), min(len(vectors), nlist * IVF_TRAINING_POINTS_PER_LIST), replace=False
            )
            ivf.train(np.ascontiguousarray(vectors[np.sort(sample)]))
            ivf.set_direct_map_type(_HASHTABLE)  # get() by id, and delete by id
            store = cls(ivf)
        store.upsert(ids, vectors)
        return store

    def fits(self, count: int) -> bool:
        """Whether this kind of store suits a corpus of `count` vectors (else a build makes a new one)."""
        return (self._ivf is not None) == (count >= IVF_MIN_VECTORS)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(self):
            self.delete(ids.tolist())
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def delete(self, ids: Sequence[int]) -> None:
        if not len(ids):
            return
        ids_array = np.ascontiguousarray(ids, dtype=np.int64)
        # IVF's by-id map deletes only through an explicit id array; the flat id map takes a set.
        selector = (
            faiss.IDSelectorArray(len(ids_array), faiss.swig_ptr(ids_array))
            if self._ivf is not None
            else (faiss.IDSelectorBatch(ids_array))
        )
        self.index.remove_ids(selector)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, len(self))
        if k <= 0:
            return []
        scores, ids = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def get(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self.index.reconstruct(int(i)) for i in ids])

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored: for changing the kind of store without re-embedding."""
        ids = self.ids()
        return ids, self.get(ids.tolist())

    def ids(self) -> np.ndarray:
        if self._ivf is None:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        invlists: Any = self._ivf.invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(n), invlists.list_size(n)).copy()
            for n in range(self._ivf.nlist)
            if invlists.list_size(n)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        if self._ivf is None:
            return {"type": "flat", "vectors": len(self)}
        return {"type": "ivf", "vectors": len(self), "nlist": int(self._ivf.nlist), "nprobe": int(self._ivf.nprobe)}

    def write(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path, dimension: int, count: int, check_vectors: bool = True) -> FaissVectorStore:
        """Load and check a store file: the kind storybot writes, the dimension and count the manifest says,
        finite unit vectors. IndexDamagedError names the file otherwise."""
        try:
            index: Any = faiss.read_index(str(path))
        except Exception as error:  # faiss raises RuntimeError with a C++ message for any bad file
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise IndexDamagedError(path, f"FAISS cannot read it: {first_line[:120]}") from None
        flat = isinstance(index, faiss.IndexIDMap2) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlatIP)
        ivf = isinstance(index, faiss.IndexIVFFlat)
        if not (flat or ivf) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexDamagedError(path, f"a {type(index).__name__}, not an inner-product index storybot writes")
        if index.d != dimension:
            raise IndexDamagedError(path, f"vectors have dimension {index.d}, the manifest says {dimension}")
        if index.ntotal != count:
            raise IndexDamagedError(path, f"holds {index.ntotal} vectors, the metadata lists {count}")
        if ivf:
            index.set_direct_map_type(_HASHTABLE)
        store = cls(index)
        for block in store._stored_blocks() if check_vectors else []:
            if not np.isfinite(block).all():
                raise IndexDamagedError(path, "holds NaN or infinite vectors")
            norms = np.linalg.norm(block, axis=1)
            # Every vector storybot writes has unit length (or is zero, for a text without words).
            if not np.all((np.abs(norms - 1.0) < 1e-3) | (norms == 0)):
                raise IndexDamagedError(path, "holds vectors that are not of unit length")
        return store

    def _stored_blocks(self) -> list[np.ndarray]:
        """Views (no copies) of the stored vectors, for checking them."""
        d = self.dimension
        if self._ivf is None:
            flat: Any = faiss.downcast_index(self.index.index)
            return [faiss.rev_swig_ptr(flat.get_xb(), len(self) * d).reshape(-1, d)] if len(self) else []
        invlists: Any = self._ivf.invlists
        blocks = []
        for n in range(self._ivf.nlist):
            size = invlists.list_size(n)
            if size:
                codes = faiss.rev_swig_ptr(invlists.get_codes(n), size * d * 4)
                blocks.append(codes.view(np.float32).reshape(size, d))
        return blocks
