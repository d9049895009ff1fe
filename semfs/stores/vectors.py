"""The vector index of the state dir: unit float32 vectors keyed by chunk id.

On disk (:mod:`.segments`): write-once segment files under one manifest.
A save writes one segment of what changed since the last (the ids
removed, the ids added and their vectors) and then the manifest, so it
costs what changed; a crash between the two loses only the segment, whose
chunks SQLite still holds as text (:meth:`VectorStore.reconcile` finds
them at open). :meth:`VectorStore.maintain` merges small segments and
rewrites those mostly dead, outside the lock.

In memory, two kinds by size:

- below ``IVF_FROM`` vectors, ``flat``: every vector in an exact
  inner-product index (on unit vectors, cosine similarity);
- from there on, ``ivf``: an inverted-file index over 4-bit product
  codes scanned with SIMD (FAISS's IVF-PQ fast scan: 98 bytes a vector
  where floats take 1,536), whose candidates are ranked again on their
  float vectors, read from the segment files by row (so they stay on disk,
  in the page cache, not in this process). The codes are kept beside each
  segment under the codec they were made with, so an open reads them
  instead of encoding (a million vectors: about a second). The codec is
  trained again once the index has grown fourfold. Why not 8-bit scalar
  codes: on vectors drawn like real ones, IVF-SQ8 needed a quarter of its
  lists visited for recall@10 0.98 at 100k, four times the bytes to scan
  (docs/BENCHMARKS.md).

Inputs are normalised once, here at the edge (contiguous float32, shape
checked), so callers may hand in whatever the embedder returns.

Caveats: a flush writes under the lock, so a search waits for that
segment's fsync (a save of 30 s of changes: milliseconds); switching kind
or training again reads every vector once and holds the codes twice for
the moment of the swap.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from ..errors import SemfsError
from . import segments as sg

log = logging.getLogger(__name__)

INDEX_NAME = "vectors.faiss"  # the whole-index file of before segments, read once and replaced
IVF_FROM = 50_000  # vectors: exact search up to here, IVF-PQ from here (docs/BENCHMARKS.md)
FLAT_BELOW = IVF_FROM // 2  # back to exact search below this: not to and fro around one size
CODEC = "ivf-pq4"  # the kind of codec this code trains and reads (another is trained again)
RETRAIN_GROWTH = 4  # train the codec again once the index holds this many times what it was trained on
TRAIN_PER_LIST = 64  # training sample: this many vectors per inverted list
NPROBE_SHARE = 4  # lists a search visits: one in this many (recall@10 0.99 at 1M, BENCHMARKS.md)
RERANK_MIN = 200  # candidates ranked again on their floats, at least (and twice k)
FLUSH_ROWS = 65_536  # vectors held in memory before they go to a segment, saved or not
MAX_SEGMENTS = 16  # more than this and the smallest neighbours are merged ...
MERGE_FAN = 4  # ... this many at a time
DEAD_SHARE = 0.3  # rewrite every segment once this share of their rows is removed


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


def saved(state_dir: Path) -> bool:
    """Whether ``state_dir`` holds saved vectors (segments, or the one file of before them)."""
    return (Path(state_dir) / sg.DIR / sg.MANIFEST).exists() or (Path(state_dir) / INDEX_NAME).exists()


def drop(state_dir: Path) -> None:
    """Remove every vector file of ``state_dir``."""
    import shutil

    (Path(state_dir) / INDEX_NAME).unlink(missing_ok=True)
    shutil.rmtree(Path(state_dir) / sg.DIR, ignore_errors=True)


def bytes_on_disk(state_dir: Path) -> int:
    """The size of ``state_dir``'s vector files."""
    try:
        old = (Path(state_dir) / INDEX_NAME).stat().st_size
    except FileNotFoundError:
        old = 0
    return sg.size_on_disk(Path(state_dir) / sg.DIR) + old


def lists_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: a power of two near sqrt(n) (1,024 at a million)."""
    return int(2 ** max(6, round(np.log2(max(n, 1)) / 2)))


def pq_parts(dim: int) -> int:
    """Sub-vectors of the product codes: one 4-bit code per two dimensions (a divisor of ``dim``)."""
    return next(m for m in range(dim // 2, 0, -1) if dim % m == 0)


def _name_of(codec: Optional[dict]) -> Optional[str]:
    return codec["name"] if codec else None


def _encoded(seg: sg.Segment, template) -> np.ndarray:
    """A segment's rows encoded by the codec ``template``, a block of its vectors at a time."""
    blocks = [template.sa_encode(seg.block(s, min(seg.rows, s + sg.BLOCK))) for s in range(0, seg.rows, sg.BLOCK)]
    return np.concatenate(blocks) if blocks else np.zeros((0, template.sa_code_size()), np.uint8)


class Layout:
    """Where each live vector of the segments is: ids sorted, beside (segment key << 32 | row)."""

    def __init__(self, ids: np.ndarray, loc: np.ndarray) -> None:
        self.ids, self.loc = ids, loc

    @classmethod
    def replay(cls, segs: list[sg.Segment], keys: list[int]) -> "Layout":
        """The live rows once every segment has applied, in order (removes before adds)."""
        if not segs:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        ids, order, loc = [], [], []
        for i, (s, key) in enumerate(zip(segs, keys)):
            ids += [s.removes, s.ids]
            order += [np.full(s.removes.size, 2 * i), np.full(s.rows, 2 * i + 1)]
            loc += [np.full(s.removes.size, -1), (key << 32) | np.arange(s.rows, dtype=np.int64)]
        all_ids, all_order, all_loc = np.concatenate(ids), np.concatenate(order), np.concatenate(loc)
        by = np.lexsort((all_order, all_ids))
        all_ids, all_loc = all_ids[by], all_loc[by]
        last = np.ones(all_ids.size, bool)
        last[:-1] = all_ids[1:] != all_ids[:-1]  # each id's last event
        keep = last & (all_loc >= 0)
        return cls(all_ids[keep].astype(np.int64), all_loc[keep].astype(np.int64))

    def find(self, ids: np.ndarray) -> np.ndarray:
        """Each id's location, or -1."""
        if self.ids.size == 0 or ids.size == 0:
            return np.full(ids.size, -1, np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.size - 1)
        return np.where(self.ids[pos] == ids, self.loc[pos], -1)

    def applied(self, removes: np.ndarray, ids: np.ndarray, loc: np.ndarray) -> "Layout":
        keep = ~np.isin(self.ids, np.concatenate([removes, ids]))
        all_ids = np.concatenate([self.ids[keep], ids])
        all_loc = np.concatenate([self.loc[keep], loc])
        by = np.argsort(all_ids, kind="stable")
        return Layout(all_ids[by], all_loc[by])

    def of(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, rows) of the live rows of the segment ``key``."""
        mine = (self.loc >> 32) == key
        return self.ids[mine], (self.loc[mine] & 0xFFFFFFFF)


class VectorStore:
    def __init__(self, state_dir: Path, dim: int, writer: bool = True) -> None:
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it narrates its CPU probing
        import faiss  # imported here: only processes that search or index need it

        self._faiss = faiss
        self.dir = Path(state_dir) / sg.DIR
        self.legacy = Path(state_dir) / INDEX_NAME
        self.dim = dim
        self.writer = writer
        self._lock = threading.RLock()
        self._segs: list[sg.Segment] = []  # in the order they apply
        self._keys: list[int] = []  # each segment's key in the layout's locations
        self._next_key = 0
        self._layout = Layout.replay([], [])
        self._added: dict[int, np.ndarray] = {}  # since the last flush
        self._removed: set[int] = set()  # ids of the layout removed since the last flush
        self._listed = True  # the manifest names every segment
        self._sweep = False  # files the manifest no longer names are to go at the next save
        self._codec: Optional[dict[str, Any]] = None  # manifest entry of the codec, when ivf
        self._template: Any = None  # the trained, empty IVF-PQ index of the codec
        self._plain: Any = None  # the IVF-PQ index whose coarse quantizer the fast-scan one uses
        self._unverified: list[sg.Segment] = []  # segments whose vectors the writer has not checked yet
        self._next = 1  # the number of the next file
        self.lost = 0  # rows dropped as damaged since the indexer last asked (take_lost)
        self.rebuilt = False  # set when the manifest was unreadable or of another dimension
        self.kind = "flat"
        self.index = self._new_flat()
        self._load()

    # -- opening ---------------------------------------------------------------

    def _new_flat(self):
        return self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))

    def _load(self) -> None:
        for attempt in range(3):
            try:
                manifest = sg.read_manifest(self.dir)
                if manifest is not None and manifest.get("dim") != self.dim:
                    raise sg.Damaged(f"its dimension is {manifest.get('dim')}, not {self.dim}")
            except sg.Damaged as e:
                log.warning("vector index %s: %s; re-embedding every chunk", self.dir, e)
                self.rebuilt = self._sweep = True
                self._listed = False  # (a new manifest at the first save)
                return
            if manifest is None:
                if self.legacy.exists():
                    self._sweep = True  # (what a move cut short left)
                    self._migrate()
                return
            missing = self._open(manifest)
            if not missing or self.writer or attempt == 2:
                break
            self._close_all()  # a reader racing a compaction: its new manifest names the new files
        if self.writer:
            self._listed = self._listed and not self.lost
            sg.sweep(self.dir, self._manifest())  # a flush's segment that no manifest named, a damaged one
            self._unverified = list(self._segs)

    def _open(self, manifest: dict) -> bool:
        """Open the manifest's files; returns whether any was missing."""
        self._next = int(manifest.get("next", 1))
        missing = False
        for entry in manifest["segments"]:
            try:
                seg = sg.Segment(self.dir, entry, self.dim)
            except sg.Damaged as e:
                missing = True
                if self.writer:
                    log.warning("vector index: %s; its %d vectors are embedded again", e, entry.get("rows", 0))
                self.lost += int(entry.get("rows", 0))
                continue
            self._segs.append(seg)
            self._keys.append(self._key())
        self._layout = Layout.replay(self._segs, self._keys)
        codec = manifest.get("codec")
        if codec:
            try:
                if codec.get("kind") != CODEC:
                    raise sg.Damaged(f"the codec {codec['name']} is not of the kind {CODEC}")
                self._template = self._faiss.deserialize_index(
                    np.frombuffer(sg.read_codec(self.dir, codec["name"], codec["sha"]), dtype=np.uint8)
                )
                self._codec = codec
            except sg.Damaged as e:
                log.warning("vector index: %s; training it again", e)
        if self._codec is not None:
            self.index, self.kind = self._build_ivf(self._template), "ivf"
        else:
            self.index, self.kind = self._build_flat(), "flat"
        return missing

    def _codec_name(self) -> Optional[str]:
        return _name_of(self._codec)

    def _key(self) -> int:
        self._next_key += 1
        return self._next_key

    def _close_all(self) -> None:
        for s in self._segs:
            s.close()
        self._segs, self._keys, self.lost = [], [], 0

    def _build_flat(self):
        index = self._new_flat()
        for seg, key in zip(self._segs, self._keys):
            ids, rows = self._layout.of(key)
            for start in range(0, ids.size, sg.BLOCK):
                index.add_with_ids(seg.read(rows[start : start + sg.BLOCK]), ids[start : start + sg.BLOCK])
        if self._added:
            index.add_with_ids(np.stack(list(self._added.values())), np.fromiter(self._added, np.int64))
        return index

    def _codes(self, seg: sg.Segment, template) -> np.ndarray:
        """The segment's codes under the codec: from its file, or made again from its vectors."""
        size = template.sa_code_size()
        sha = seg.entry.get("codes")
        if sha:
            try:
                return sg.read_codes(self.dir, seg.name, self._codec["name"], sha, seg.rows, size)  # type: ignore[index]
            except sg.Damaged as e:
                log.warning("vector index: %s; encoding them again", e)
        codes = _encoded(seg, template)
        if self.writer and self._codec is not None:
            seg.entry["codes"] = sg.write_codes(self.dir, seg.name, self._codec["name"], codes)
            self._listed = False
        return codes

    def _build_ivf(self, template):
        """The search index: the segments' codes into a copy of the codec, then laid out for fast scan.

        (FAISS's fast-scan index takes codes only through an ordinary IVF-PQ one: its own
        ``add_sa_codes`` stores them unpacked, and finds nothing.)"""
        plain = self._faiss.clone_index(template)
        for seg, key in zip(self._segs, self._keys):
            ids, rows = self._layout.of(key)
            if ids.size:
                plain.add_sa_codes(np.ascontiguousarray(self._codes(seg, template)[rows]), ids)
        if self._added:
            plain.add_with_ids(np.stack(list(self._added.values())), np.fromiter(self._added, np.int64))
        index = self._faiss.IndexIVFPQFastScan(plain)
        plain.reset()  # its codes are copied; its coarse quantizer, which the new index uses, stays
        self._plain = plain
        return index

    def _migrate(self) -> None:
        """Read the whole-index file of before segments; a writer stores it as segments and removes it."""
        import hashlib

        data = b""
        try:
            data = self.legacy.read_bytes()
            if data[-44:-32] == b"semfs-sha256":
                data, want = data[:-44], data[-32:]
                if hashlib.sha256(data).digest() != want:
                    raise ValueError("its SHA-256 differs")
            old: Any = self._faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            if old.d != self.dim:
                raise ValueError(f"it has dimension {old.d}, not {self.dim}")
        except (OSError, ValueError, RuntimeError) as e:
            log.warning(
                "vector index %s is unusable (%s); re-embedding every chunk", self.legacy, str(e).splitlines()[0]
            )
            self.rebuilt = True
            if self.writer:
                self.legacy.unlink(missing_ok=True)
            return
        del data
        ids = self._faiss.vector_to_array(old.id_map).copy()
        inner = self._faiss.downcast_index(old.index)
        for start in range(0, ids.size, sg.BLOCK):
            part = ids[start : start + sg.BLOCK]
            self.add(part, inner.reconstruct_n(start, part.size))  # (flushed to a segment every FLUSH_ROWS)
        del old, inner
        if self.writer:
            self.save()
            self.legacy.unlink(missing_ok=True)
            log.info("vector index: %d vectors moved from %s to segments", ids.size, INDEX_NAME)

    # -- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        return self._layout.ids.size - len(self._removed) + len(self._added)

    def ids(self) -> np.ndarray:
        with self._lock:
            base = self._layout.ids
            if self._removed:
                base = base[~np.isin(base, self._removed_ids())]
            return np.concatenate([base, np.fromiter(self._added, np.int64, len(self._added))])

    def _removed_ids(self) -> np.ndarray:
        return np.fromiter(self._removed, np.int64, len(self._removed))

    def _live(self, id_arr: np.ndarray) -> np.ndarray:
        """Which of ``id_arr`` have a vector (under the lock)."""
        found = self._layout.find(id_arr) >= 0
        if self._removed:
            found &= ~np.isin(id_arr, self._removed_ids())
        if self._added:
            found |= np.isin(id_arr, np.fromiter(self._added, np.int64, len(self._added)))
        return found

    def _vectors(self, id_arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``id_arr`` that have a vector, their vectors), under the lock."""
        if self.kind == "flat":
            keep = id_arr[self._live(id_arr)]
            if keep.size == 0:
                return keep, np.zeros((0, self.dim), np.float32)
            return keep, self.index.reconstruct_batch(keep)
        out = np.zeros((id_arr.size, self.dim), np.float32)
        have = np.zeros(id_arr.size, bool)
        loc = self._layout.find(id_arr)
        if self._removed:
            loc[np.isin(id_arr, self._removed_ids())] = -1
        by_key = {k: s for k, s in zip(self._keys, self._segs)}
        for key in np.unique(loc[loc >= 0] >> 32).tolist():
            at = np.flatnonzero((loc >= 0) & ((loc >> 32) == key))
            out[at] = by_key[key].read(loc[at] & 0xFFFFFFFF)
            have[at] = True
        if self._added:
            for i, id_ in enumerate(id_arr.tolist()):
                v = self._added.get(id_)
                if v is not None:
                    out[i], have[i] = v, True
        return id_arr[have], out[have]

    def search(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for one query vector, best first."""
        q = as_matrix(query, self.dim)
        with self._lock:
            if len(self) == 0 or k <= 0:
                return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
            if self.kind == "flat":
                scores, ids = self.index.search(q, min(k, len(self)))
                keep = ids[0] >= 0
                return scores[0][keep], ids[0][keep]
            params = self._faiss.SearchParametersIVF()
            params.nprobe = max(1, self.index.nlist // NPROBE_SHARE)
            _, cand = self.index.search(q, min(max(RERANK_MIN, 2 * k), len(self)), params=params)
            cand_ids, vecs = self._vectors(cand[0][cand[0] >= 0])
        scores = vecs @ q[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return scores[best], cand_ids[best]

    def reconstruct(self, id_: int) -> Optional[np.ndarray]:
        """The stored vector of ``id_``, or None if there is none."""
        with self._lock:
            ids, vecs = self._vectors(np.array([int(id_)], np.int64))
        return vecs[0] if ids.size else None

    def has(self, id_: int) -> bool:
        with self._lock:
            return bool(self._live(np.array([int(id_)], np.int64))[0])

    def present(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` have a vector."""
        id_arr = np.fromiter((int(i) for i in ids), np.int64)
        with self._lock:
            return set(id_arr[self._live(id_arr)].tolist())

    def reconstruct_many(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of ``ids`` that have a vector, their vectors as an (n, dim) matrix).

        A reader's ids come from SQLite, and the indexer may remove their
        vectors in between: those are left out rather than failing the query.
        """
        id_arr = np.ascontiguousarray(np.asarray(list(ids), dtype=np.int64))
        with self._lock:
            return self._vectors(id_arr)

    # -- changing --------------------------------------------------------------

    def add(self, ids: Iterable[int], vectors) -> None:
        id_arr = np.ascontiguousarray(np.fromiter(ids, dtype=np.int64))
        if id_arr.size == 0:
            return
        m = as_matrix(vectors, self.dim)
        if m.shape[0] != id_arr.size:
            raise VectorError(f"{id_arr.size} ids for {m.shape[0]} vectors")
        if np.unique(id_arr).size != id_arr.size:
            raise VectorError("an id given twice in one add")
        with self._lock:
            again = id_arr[self._live(id_arr)]
            if again.size:  # a vector replaced: the old one goes first
                self.remove(again.tolist())
            self._removed.update(id_arr[self._layout.find(id_arr) >= 0].tolist())
            for i, v in zip(id_arr.tolist(), m):
                self._added[i] = v
            self.index.add_with_ids(m, id_arr)
            if len(self._added) >= FLUSH_ROWS and self.writer:
                self._flush()

    def remove(self, ids: Iterable[int]) -> int:
        id_arr = np.ascontiguousarray(np.unique(np.fromiter(ids, dtype=np.int64)))
        if id_arr.size == 0:
            return 0
        with self._lock:
            gone = id_arr[self._live(id_arr)]
            if gone.size == 0:
                return 0
            for i in gone.tolist():
                self._added.pop(i, None)
            self._removed.update(gone[self._layout.find(gone) >= 0].tolist())
            self.index.remove_ids(self._faiss.IDSelectorBatch(gone))
            if self.writer and self._layout.ids.size and len(self._removed) == self._layout.ids.size:
                self._flush()  # all gone (another embedder): the segments go now, not at the next save
            return int(gone.size)

    def _flush(self) -> bool:
        """What changed since the last flush, written as one segment (under the lock)."""
        if not self._added and not self._removed:
            return False
        removes = np.fromiter(sorted(self._removed), np.int64, len(self._removed))
        ids = np.fromiter(sorted(self._added), np.int64, len(self._added))
        vecs = np.stack([self._added[i] for i in ids.tolist()]) if ids.size else np.zeros((0, self.dim), np.float32)
        if removes.size and removes.size == self._layout.ids.size:
            removes = removes[:0]  # every vector replaced (another embedder): the old segments simply go
            for s in self._segs:
                s.unlink(self._codec_name())
            self._segs, self._keys, self._layout = [], [], Layout.replay([], [])
        name = sg.new_name(self._next, "seg")
        self._next += 1
        entry = sg.write_segment(self.dir, name, removes, ids, vecs)
        if self._codec is not None:
            entry["codes"] = sg.write_codes(self.dir, name, self._codec["name"], self._template.sa_encode(vecs))
        seg, key = sg.Segment(self.dir, entry, self.dim), self._key()
        self._segs.append(seg)
        self._keys.append(key)
        self._layout = self._layout.applied(removes, ids, (key << 32) | np.arange(ids.size, dtype=np.int64))
        self._added, self._removed = {}, set()
        self._listed = False
        return True

    def _manifest(self) -> dict:
        return {
            "dim": self.dim,
            "next": self._next,
            "codec": self._codec,
            "segments": [s.entry for s in self._segs],
        }

    def save(self, force: bool = False) -> bool:
        """Write what changed since the last save (or, with ``force``, the manifest again); returns
        whether it wrote."""
        if not self.writer:
            return False
        with self._lock:
            flushed = self._flush()
            if not (flushed or force or not self._listed):
                return False
            sg.write_manifest(self.dir, self._manifest())
            self._listed = True
            if self._sweep:  # files of before a damage found, a new codec, or a move from vectors.faiss
                sg.sweep(self.dir, self._manifest())
                self._sweep = False
        return True

    def take_lost(self) -> int:
        """Vectors dropped as damaged since the last call (their chunks are to be embedded again)."""
        with self._lock:
            n, self.lost = self.lost, 0
            return n

    def reconcile(self, wanted: set[int]) -> set[int]:
        """Drop vectors whose chunk is gone; returns the chunk ids that have no vector."""
        have = set(self.ids().tolist())
        extra = have - wanted
        if extra:
            self.remove(extra)
        return wanted - have

    def size_on_disk(self) -> Optional[int]:
        if not self.dir.exists():
            return None
        return sg.size_on_disk(self.dir)

    def close(self) -> None:
        with self._lock:
            for s in self._segs:
                s.close()

    # -- upkeep ------------------------------------------------------------------

    def due(self) -> Optional[str]:
        """What :meth:`maintain` would do now: "ivf", "retrain", "flat", "compact", "verify" or None."""
        if not self.writer:
            return None
        live = len(self)
        if self.kind == "flat" and live >= IVF_FROM:
            return "ivf"
        if self.kind == "ivf" and live < FLAT_BELOW:
            return "flat"
        if self.kind == "ivf" and self._codec and live >= RETRAIN_GROWTH * self._codec["trained"]:
            return "retrain"
        if self._span() is not None:
            return "compact"
        if self._unverified:
            return "verify"
        return None

    def maintain(self) -> Optional[str]:
        """Do what :meth:`due` says, if anything; returns what it did.

        Slow at scale (training and encoding a million vectors: some 10 s), so it runs in the
        thread that embeds, never in one that serves a caller. Searches, adds and removes go on
        meanwhile: the work is done outside the lock on segments, which never change, and only
        the swap takes the lock."""
        what = self.due()
        if what in ("ivf", "retrain"):
            self._train()
        elif what == "flat":
            with self._lock:
                self.save()
                old = self._codec
                self._codec = self._template = None
                self.index, self.kind = self._build_flat(), "flat"
                self._plain = None
                self._sweep = bool(old)
                self.save(force=True)
        elif what == "compact":
            self._compact()
        elif what == "verify":
            self._verify()
        if what:  # (a check that found nothing wrong is not news)
            (log.debug if what == "verify" else log.info)(
                "vector index: %s (%d vectors, %s)", what, len(self), self.kind
            )
        return what

    def _sample(self, n: int) -> np.ndarray:
        with self._lock:
            ids = self.ids()
        pick = np.sort(np.random.default_rng(0).choice(ids, min(n, ids.size), replace=False))
        with self._lock:
            return self._vectors(pick)[1]

    def _train(self) -> None:
        faiss = self._faiss
        with self._lock:
            self.save()  # every vector in a segment
            segs, live = list(self._segs), len(self)
        nlist = lists_for(live)
        quantizer = faiss.IndexFlatIP(self.dim)
        template = faiss.IndexIVFPQ(quantizer, self.dim, nlist, pq_parts(self.dim), 4, faiss.METRIC_INNER_PRODUCT)
        template.cp.niter = 10
        template.train(self._sample(TRAIN_PER_LIST * nlist))
        name = sg.new_name(self._next, "ivf")
        with self._lock:
            self._next += 1
        sha = sg.write_codec(self.dir, name, faiss.serialize_index(template).tobytes())
        codec: dict[str, Any] = {"name": name, "kind": CODEC, "sha": sha, "nlist": nlist, "trained": live}
        shas = {}
        for seg in segs:  # the long part, outside the lock
            shas[seg.name] = sg.write_codes(self.dir, seg.name, name, _encoded(seg, template))
        with self._lock:
            self._codec, self._template = codec, template
            for seg in self._segs:
                seg.entry = {**seg.entry, "codes": shas.get(seg.name)}  # (segments flushed since: encoded now)
            self.index, self.kind = self._build_ivf(template), "ivf"
            self._sweep = True
            self.save(force=True)

    def _span(self) -> Optional[tuple[int, int]]:
        """The segments to merge now, as a slice, or None."""
        n = len(self._segs)
        if n == 0:
            return None
        rows = np.array([s.rows for s in self._segs])
        if n > 1 and rows.sum() - self._layout.ids.size > DEAD_SHARE * rows.sum():
            return 0, n
        if n <= MAX_SEGMENTS:
            return None
        sums = np.convolve(rows, np.ones(MERGE_FAN, int), "valid")
        start = int(np.argmin(sums))
        return start, start + MERGE_FAN

    def _compact(self) -> None:
        with self._lock:
            span = self._span()
            if span is None:
                return
            a, b = span
            segs, keys, layout, codec = self._segs[a:b], self._keys[a:b], self._layout, self._codec
        parts = [(layout.of(k), s) for k, s in zip(keys, segs)]
        ids = np.concatenate([p[0][0] for p in parts])
        by = np.argsort(ids)
        vecs = np.concatenate([s.read(rows) for (_, rows), s in parts])[by]
        removes = np.zeros(0, np.int64) if a == 0 else np.unique(np.concatenate([s.removes for s in segs]))
        with self._lock:
            name = sg.new_name(self._next, "seg")
            self._next += 1
        entry = sg.write_segment(self.dir, name, removes, ids[by], vecs)
        if codec is not None:
            codes = np.concatenate([self._codes(s, self._template)[rows] for (_, rows), s in parts])[by]
            entry["codes"] = sg.write_codes(self.dir, name, codec["name"], codes)
        merged = sg.Segment(self.dir, entry, self.dim)
        with self._lock:
            if self._segs[a:b] != segs or self._codec is not codec:  # retrained meanwhile: next time
                merged.unlink(_name_of(codec))
                return
            key = self._key()
            old = set(keys)
            inside = np.isin(self._layout.loc >> 32, list(old))
            rows = np.searchsorted(merged.ids, self._layout.ids[inside])
            self._layout.loc = self._layout.loc.copy()
            self._layout.loc[inside] = (key << 32) | rows
            self._segs[a:b], self._keys[a:b] = [merged], [key]
            self.save(force=True)
        for s in segs:
            s.unlink(_name_of(codec))

    def _verify(self) -> None:
        with self._lock:
            if not self._unverified:
                return
            seg = self._unverified.pop(0)
        if seg.fd < 0 or seg.vectors_intact():
            return
        with self._lock:
            if seg not in self._segs:
                return
            i = self._segs.index(seg)
            ids, _ = self._layout.of(self._keys[i])
            log.warning(
                "vector index: %s's vectors differ from their SHA-256; its %d vectors are embedded again",
                seg.name,
                ids.size,
            )
            self.index.remove_ids(self._faiss.IDSelectorBatch(ids))
            self._layout = Layout(
                self._layout.ids[(self._layout.loc >> 32) != self._keys[i]],
                self._layout.loc[(self._layout.loc >> 32) != self._keys[i]],
            )
            self._removed.difference_update(ids.tolist())
            del self._segs[i], self._keys[i]
            self.lost += ids.size
            self.save(force=True)
        seg.unlink(self._codec_name())
