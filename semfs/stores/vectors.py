"""The FAISS vector index: normalised float32 vectors keyed by chunk id.

Below ``HNSW_FROM`` vectors, ``IndexIDMap2(IndexFlatIP)``: exact
inner-product search, which on unit vectors is cosine similarity. From
there on, ``IndexIDMap2(IndexHNSWFlat)``: a graph search whose time hardly
grows with the index, at a recall@10 above 0.98 against exact search
(docs/BENCHMARKS.md, where the crossover is measured). Inputs are
normalised once, here at the edge (contiguous float32, shape checked), so
callers may hand in whatever the embedder returns.

HNSW cannot remove a vector: a removed id is masked (left out of every
search, reconstruct and count) until :meth:`VectorStore.maintain`
rebuilds the graph without them. ``maintain`` also switches between the
two kinds; it builds outside the lock, so searches, adds and removes go on
meanwhile, and what they changed is replayed on the new index before it
takes over.

Saved atomically (temp file + ``os.replace``), so a crash leaves the last
saved index, never half of one; the SQLite chunk table stays the truth,
and :meth:`VectorStore.reconcile` brings the two back in line on open.
The mask is not saved: reconcile masks again, on open, what SQLite no
longer has, and a reader maps every hit through SQLite anyway.

Caveats: ``remove_ids`` costs O(n) on a flat index; remove in batches. A
rebuild holds the live vectors twice in memory for its duration (1.5 GB
a copy at a million chunks).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..errors import SemfsError
from .atomic import write_atomic

log = logging.getLogger(__name__)

INDEX_NAME = "vectors.faiss"
HNSW_FROM = 50_000  # vectors: exact search up to here, HNSW from here (the crossover, docs/BENCHMARKS.md)
FLAT_BELOW = HNSW_FROM // 2  # back to exact search below this: not to and fro around one size
REBUILD_MASKED = 0.2  # rebuild the graph once this share of its vectors is masked
HNSW_M = 32  # neighbours per node
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # candidates a search keeps (at least k) ...
# ... and one per this many vectors: recall@10 fell to 0.966 at 1M with 128, 0.980 with 512 (BENCHMARKS.md)
HNSW_EF_PER = 2000


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


_SUM = b"semfs-sha256"  # then the 32-byte SHA-256 of what precedes it


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
        self._masked: set[int] = set()  # removed from an HNSW index, still in its graph
        self._selector: Optional[tuple] = None  # (mask size, selector of the ids a search may return, ...)
        self._journal: Optional[list] = None  # adds and removes made while maintain() builds
        self._use(self._load())

    def _use(self, index) -> None:
        self.index = index
        self.kind = "hnsw" if isinstance(self._faiss.downcast_index(index.index), self._faiss.IndexHNSW) else "flat"

    def _new(self):
        return self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))

    def _new_hnsw(self):
        inner = self._faiss.IndexHNSWFlat(self.dim, HNSW_M, self._faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return self._faiss.IndexIDMap2(inner)

    def _load(self):
        if not self.path.exists():
            return self._new()
        try:
            data = self.path.read_bytes()
        except OSError as e:
            log.warning("vector index %s is unreadable (%s); starting a new one", self.path, e)
            self.rebuilt = True
            return self._new()
        # faiss reads a damaged file without a word, and serves wrong rankings: the SHA-256
        # written after the index, in the same file, says (a file from before it has none)
        if len(data) > len(_SUM) + 32 and data[-32 - len(_SUM) : -32] == _SUM:
            data, want = data[: -32 - len(_SUM)], data[-32:]
            if hashlib.sha256(data).digest() != want:
                log.warning("vector index %s is damaged (its SHA-256 differs); re-embedding every chunk", self.path)
                self.rebuilt = True
                return self._new()
        try:
            index = self._faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
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
        return self.index.ntotal - len(self._masked)

    def ids(self) -> np.ndarray:
        with self._lock:
            all_ids = self._faiss.vector_to_array(self.index.id_map).copy()
            if not self._masked:
                return all_ids
            return all_ids[~np.isin(all_ids, self._masked_ids())]

    def add(self, ids: Iterable[int], vectors) -> None:
        id_arr = np.ascontiguousarray(np.fromiter(ids, dtype=np.int64))
        if id_arr.size == 0:
            return
        m = as_matrix(vectors, self.dim)
        if m.shape[0] != id_arr.size:
            raise VectorError(f"{id_arr.size} ids for {m.shape[0]} vectors")
        with self._lock:
            if self._masked and self._masked.intersection(id_arr.tolist()):
                raise VectorError("an id removed from the HNSW index cannot come back before it is rebuilt")
            self.index.add_with_ids(m, id_arr)
            self._changes += 1
            if self._journal is not None:
                self._journal.append(("add", id_arr, m))

    def remove(self, ids: Iterable[int]) -> int:
        id_arr = np.ascontiguousarray(np.fromiter(ids, dtype=np.int64))
        if id_arr.size == 0:
            return 0
        with self._lock:
            if self._journal is not None:
                self._journal.append(("remove", id_arr, None))
            if self.kind == "flat":
                n = int(self.index.remove_ids(id_arr))
            else:
                present = self.ids()
                gone = id_arr[np.isin(id_arr, present)]
                self._masked.update(gone.tolist())
                n = int(gone.size)
            self._changes += 1
        return n

    def search(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector; ids of -1 are padding."""
        q = as_matrix(query, self.dim)
        with self._lock:
            if len(self) == 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            k = min(k, len(self))
            if self.kind == "flat":
                scores, ids = self.index.search(q, k)
            else:
                params = self._faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                params.efSearch = max(HNSW_EF_SEARCH, k, self.index.ntotal // HNSW_EF_PER)
                if self._masked:
                    params.sel = self._mask_selector()
                scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def _masked_ids(self) -> np.ndarray:
        return np.fromiter(self._masked, dtype=np.int64, count=len(self._masked))

    def _mask_selector(self):
        """A selector of the ids not masked, made again only when the mask changes (under the lock)."""
        if self._selector is None or self._selector[0] != len(self._masked):
            batch = self._faiss.IDSelectorBatch(self._masked_ids())
            self._selector = (len(self._masked), self._faiss.IDSelectorNot(batch), batch)  # batch kept alive
        return self._selector[1]

    def reconstruct(self, id_: int) -> Optional[np.ndarray]:
        """The stored vector of ``id_``, or None if there is none."""
        with self._lock:
            if int(id_) in self._masked:
                return None
            try:
                return self.index.reconstruct(int(id_))
            except RuntimeError:  # faiss: id not found
                return None

    def has(self, id_: int) -> bool:
        return self.reconstruct(id_) is not None

    def present(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` have a vector."""
        return {int(i) for i in ids if self.has(i)}

    def reconstruct_many(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``ids`` that have a vector, their vectors as an (n, dim) matrix).

        A reader's ids come from SQLite, and the indexer may remove their
        vectors in between: those are left out rather than failing the query.
        """
        id_arr = np.ascontiguousarray(np.asarray(list(ids), dtype=np.int64))
        with self._lock:
            if self._masked and id_arr.size:
                id_arr = id_arr[~np.isin(id_arr, self._masked_ids())]
            if id_arr.size == 0:
                return id_arr, np.zeros((0, self.dim), dtype=np.float32)
            try:
                return id_arr, self.index.reconstruct_batch(id_arr)
            except RuntimeError:  # faiss: some id not found
                found = [(i, v) for i, v in ((int(i), self.reconstruct(i)) for i in id_arr) if v is not None]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.array([i for i, _ in found], dtype=np.int64), np.stack([v for _, v in found])

    def due(self) -> Optional[str]:
        """What :meth:`maintain` would do now: "hnsw", "rebuild", "flat", or None."""
        live = len(self)
        if self.kind == "flat":
            return "hnsw" if live >= HNSW_FROM else None
        if live < FLAT_BELOW:
            return "flat"
        return "rebuild" if len(self._masked) > REBUILD_MASKED * self.index.ntotal else None

    def maintain(self) -> Optional[str]:
        """Switch to HNSW past ``HNSW_FROM`` vectors, back to exact search below ``FLAT_BELOW``,
        or rebuild the graph without its masked ids; returns what it did, if anything.

        Slow at scale (a million vectors: minutes), so it runs in the thread that embeds,
        never in one that serves a caller. The new index is built outside the lock from a
        snapshot; adds and removes made meanwhile are replayed on it before it takes over."""
        with self._lock:
            what = self.due()
            if what is None or self._journal is not None:
                return None
            ids = self.ids()
            vecs = self.index.reconstruct_batch(ids) if ids.size else np.zeros((0, self.dim), np.float32)
            self._journal = []
        try:
            new = self._new() if what == "flat" else self._new_hnsw()
            for start in range(0, ids.size, 65536):  # in slices: a reader's lock waits on none of this
                new.add_with_ids(vecs[start : start + 65536], ids[start : start + 65536])
            del vecs
            with self._lock:
                masked: set[int] = set()
                for op, op_ids, op_vecs in self._journal:
                    if op == "add":
                        new.add_with_ids(op_vecs, op_ids)
                    elif what == "flat":
                        new.remove_ids(op_ids)
                    else:
                        masked.update(op_ids.tolist())
                if masked:  # removed meanwhile: masked in the new graph too, if it holds them
                    arr = np.fromiter(masked, dtype=np.int64)
                    masked = set(arr[np.isin(arr, self._faiss.vector_to_array(new.id_map))].tolist())
                self._masked = masked
                self._selector = None
                self._use(new)
                self._changes += 1
        finally:
            with self._lock:
                self._journal = None
        log.info("vector index: %s (%d vectors)", "exact" if what == "flat" else f"HNSW, {what}", len(self))
        return what

    def save(self, force: bool = False) -> bool:
        """Write the index if it changed (or ``force``); returns whether it wrote."""
        with self._lock:
            if self._changes == self._saved and not force:
                return False
            data = self._faiss.serialize_index(self.index).tobytes()
            changes = self._changes
        # outside the lock: searches go on meanwhile; one file, so a reader never sees the
        # index of one save with the sum of another
        write_atomic(self.path, data + _SUM + hashlib.sha256(data).digest())
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
