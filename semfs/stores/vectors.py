"""The FAISS vector index: normalised float32 vectors keyed by chunk id.

``IndexIDMap2(IndexFlatIP)``: exact inner-product search, which on unit
vectors is cosine similarity. Inputs are normalised once, here at the
edge (contiguous float32, shape checked), so callers may hand in whatever
the embedder returns.

Saved atomically (temp file + ``os.replace``), so a crash leaves the last
saved index, never half of one; the SQLite chunk table stays the truth,
and :meth:`VectorStore.reconcile` brings the two back in line on open.

Caveat: ``remove_ids`` costs O(n) on a flat index; remove in batches.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..errors import SemfsError
from .atomic import write_atomic

log = logging.getLogger(__name__)

INDEX_NAME = "vectors.faiss"


class VectorError(SemfsError):
    pass


def as_matrix(vectors, dim: int) -> np.ndarray:
    """Contiguous float32 (n, dim) with unit rows (zero rows stay zero)."""
    m = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2 or m.shape[1] != dim:
        raise VectorError(f"vectors of shape {m.shape} do not match the index dimension {dim}")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    np.divide(m, norms, out=m, where=norms > 0)
    return m


class VectorStore:
    def __init__(self, state_dir: Path, dim: int) -> None:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it narrates its CPU probing
        import faiss  # imported here: only processes that search or index need it

        self._faiss = faiss
        self.path = state_dir / INDEX_NAME
        self.dim = dim
        self._lock = threading.RLock()
        self._changes = 0  # bumped by every add/remove
        self._saved = 0  # the value of _changes the file on disk reflects
        self.index = self._load()

    def _new(self):
        return self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))

    def _load(self):
        if not self.path.exists():
            return self._new()
        try:
            index = self._faiss.read_index(str(self.path))
        except Exception as e:  # faiss raises RuntimeError with a C++ message
            log.warning("vector index %s is unreadable (%s); starting a new one", self.path, str(e).splitlines()[0])
            self.rebuilt = True
            return self._new()
        if index.d != self.dim:
            log.warning("vector index %s has dimension %d, not %d; starting a new one", self.path, index.d, self.dim)
            self.rebuilt = True
            return self._new()
        return index

    rebuilt = False  # set when a corrupt or mismatched file was replaced

    def __len__(self) -> int:
        return self.index.ntotal

    def ids(self) -> np.ndarray:
        with self._lock:
            return self._faiss.vector_to_array(self.index.id_map).copy()

    def add(self, ids: Iterable[int], vectors) -> None:
        id_arr = np.ascontiguousarray(np.fromiter(ids, dtype=np.int64))
        if id_arr.size == 0:
            return
        m = as_matrix(vectors, self.dim)
        if m.shape[0] != id_arr.size:
            raise VectorError(f"{id_arr.size} ids for {m.shape[0]} vectors")
        with self._lock:
            self.index.add_with_ids(m, id_arr)
            self._changes += 1

    def remove(self, ids: Iterable[int]) -> int:
        id_arr = np.ascontiguousarray(np.fromiter(ids, dtype=np.int64))
        if id_arr.size == 0:
            return 0
        with self._lock:
            n = self.index.remove_ids(id_arr)
            self._changes += 1
        return int(n)

    def search(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector; ids of -1 are padding."""
        q = as_matrix(query, self.dim)
        with self._lock:
            if self.index.ntotal == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            scores, ids = self.index.search(q, min(k, self.index.ntotal))
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def reconstruct(self, id_: int) -> Optional[np.ndarray]:
        """The stored vector of ``id_``, or None if there is none."""
        with self._lock:
            try:
                return self.index.reconstruct(int(id_))
            except RuntimeError:  # faiss: id not found
                return None

    def has(self, id_: int) -> bool:
        return self.reconstruct(id_) is not None

    def reconstruct_many(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``ids`` that have a vector, their vectors as an (n, dim) matrix).

        A reader's ids come from SQLite, and the indexer may remove their
        vectors in between: those are left out rather than failing the query.
        """
        id_arr = np.ascontiguousarray(np.asarray(list(ids), dtype=np.int64))
        if id_arr.size == 0:
            return id_arr, np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            try:
                return id_arr, self.index.reconstruct_batch(id_arr)
            except RuntimeError:  # faiss: some id not found
                found = [(i, v) for i, v in ((int(i), self.reconstruct(i)) for i in id_arr) if v is not None]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.array([i for i, _ in found], dtype=np.int64), np.stack([v for _, v in found])

    def save(self, force: bool = False) -> bool:
        """Write the index if it changed (or ``force``); returns whether it wrote."""
        with self._lock:
            if self._changes == self._saved and not force:
                return False
            data = self._faiss.serialize_index(self.index).tobytes()
            changes = self._changes
        write_atomic(self.path, data)  # outside the lock: searches go on meanwhile
        self._saved = changes
        return True

    def reconcile(self, wanted: set[int]) -> set[int]:
        """Drop vectors whose chunk is gone; returns the chunk ids that have no vector."""
        have = set(self.ids().tolist())
        extra = have - wanted
        if extra:
            self.remove(extra)
        return wanted - have

    def size_on_disk(self) -> Optional[int]:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return None
