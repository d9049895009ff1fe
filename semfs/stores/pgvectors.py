"""The vectors of a PostgreSQL index: a pgvector column on ``chunks``, searched through HNSW.

The same methods as :class:`.vectors.VectorStore`, so the indexer and the
searcher use either. Nothing to save or rebuild: PostgreSQL keeps the
column and its graph (deletes are its business).

Embedding work is shared through the table itself: a chunk that should
have a vector and has none is work. :meth:`PgVectorStore.claim` takes a
batch with ``FOR UPDATE SKIP LOCKED`` and leases it to one worker (a mount
or ``semfs worker`` on any machine); a worker that dies loses its lease
after ``lease`` seconds and another takes the batch. A chunk whose text
already has a vector elsewhere in the folder (same SHA-256) gets a copy
instead of being embedded again. A vector is stored only while its
worker still holds the lease, so each chunk's vector is stored once.

Caveat: a lease is not renewed while its batch is embedded. A batch that
takes longer than the lease (60 s; a mount's batch of 512 chunks takes
about 15 s here) is embedded again by another worker, and the late vectors
are dropped.
"""

from __future__ import annotations

import hashlib
import time
from typing import Iterable, Optional

import numpy as np

from .pg import PgIndex
from .sql import ThreadConnections, write
from .vectors import as_matrix

HNSW_M = 16  # pgvector's defaults, measured in issue 14: recall@10 0.999 at 100k
HNSW_EF_CONSTRUCTION = 64
# one candidate per this many rows: FAISS's HNSW recall@10 fell to 0.966 at 1M with ef 128, 0.980 with 512
EF_PER = 2000
EF_SEARCH = 100
LEASE = 60.0  # seconds a claimed batch stays with its worker
_STORE = (
    "UPDATE chunks SET embedding = %s, text_hash = sha256(convert_to(text, 'UTF8')), "
    "lease_until = NULL, leased_by = NULL WHERE id = %s"
)


class PgVectorStore:
    kind = "pgvector"
    rebuilt = False  # set when the column had another dimension and was made again

    def __init__(self, index: PgIndex, dim: int, create: bool = True) -> None:
        self.index = index
        self.dim = dim
        self._conns = ThreadConnections(index.connect)
        self._len: tuple[float, int] = (0.0, -1)
        self.lease = LEASE
        if create:
            self._ensure_column()

    def _db(self):
        return self._conns.get()

    def close(self) -> None:
        self._conns.close_mine()

    def _ensure_column(self) -> None:
        db = self._db()
        with write(db):
            have = self._dim()
            if have == self.dim:
                return
            if have is not None:
                db.execute("DROP INDEX IF EXISTS chunks_hnsw")
                db.execute("ALTER TABLE chunks DROP COLUMN embedding")
                db.execute("UPDATE chunks SET text_hash = NULL")
                self.rebuilt = True
            db.execute(f"ALTER TABLE chunks ADD COLUMN embedding vector({int(self.dim)})")
            db.execute(
                "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
                f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
            db.execute(
                "CREATE INDEX IF NOT EXISTS chunks_unembedded ON chunks(id) WHERE embedding IS NULL AND has_vector = 1"
            )

    # -- the VectorStore surface ---------------------------------------------------

    def _dim(self) -> Optional[int]:
        row = (
            self._db()
            .execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding' "
                "AND NOT attisdropped"
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    def __len__(self) -> int:
        t, n = self._len
        if time.monotonic() - t > 1.0:  # every search asks; a count of a million rows is not free
            if self._dim() != self.dim:  # a reader before any mount made the column, or another embedder's
                return 0
            n = int(self._db().execute("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL").fetchone()[0])
            self._len = (time.monotonic(), n)
        return n

    def ids(self) -> np.ndarray:
        rows = self._db().execute("SELECT id FROM chunks WHERE embedding IS NOT NULL ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def add(self, ids: Iterable[int], vectors) -> None:
        id_list = [int(i) for i in ids]
        if not id_list:
            return
        self._store(_STORE, [(v, i) for v, i in zip(as_matrix(vectors, self.dim), id_list)])

    def remove(self, ids: Iterable[int]) -> int:
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        db = self._db()
        with write(db):
            n = db.execute(
                "UPDATE chunks SET embedding = NULL, text_hash = NULL WHERE id = ANY(?) AND embedding IS NOT NULL",
                [id_list],
            ).rowcount
        self._len = (0.0, -1)
        return n

    def search(self, query, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = as_matrix(query, self.dim)[0]
        db = self._db()
        # (pgvector returns at most ef_search rows; recall falls with size: one more per EF_PER rows)
        ef = min(max(EF_SEARCH, int(k), len(self) // EF_PER), 1000)
        if getattr(db, "ef_search", None) != ef:  # a session setting: one round trip per change, not per query
            db.execute(f"SET hnsw.ef_search = {ef}")
            db.ef_search = ef
        rows = db.execute(
            "SELECT id, embedding <=> ? AS d FROM chunks ORDER BY d LIMIT ?",
            [q, int(k)],
        ).fetchall()
        rows = [r for r in rows if r[1] is not None]  # (a plan without the HNSW index sorts the unembedded last)
        return np.array([1.0 - r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def reconstruct(self, id_: int) -> Optional[np.ndarray]:
        row = self._db().pg.execute("SELECT embedding FROM chunks WHERE id = %s", [int(id_)], binary=True).fetchone()
        return None if row is None or row[0] is None else _np(row[0])

    def has(self, id_: int) -> bool:
        return self.reconstruct(id_) is not None

    def present(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` have a vector (one query)."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return set()
        rows = self._db().execute("SELECT id FROM chunks WHERE id = ANY(?) AND embedding IS NOT NULL", [id_list])
        return {int(r[0]) for r in rows.fetchall()}

    def reconstruct_many(self, ids) -> tuple[np.ndarray, np.ndarray]:
        id_list = [int(i) for i in ids]
        rows = (
            self._db()  # binary: pgvector's text form takes longer to parse than the query takes to run
            .pg.execute(
                "SELECT id, embedding FROM chunks WHERE id = ANY(%s) AND embedding IS NOT NULL", [id_list], binary=True
            )
            .fetchall()
            if id_list
            else []
        )
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.array([r[0] for r in rows], dtype=np.int64), np.stack([_np(r[1]) for r in rows])

    def reconcile(self, wanted: set[int]) -> set[int]:
        return wanted - set(self.ids().tolist())

    def due(self) -> Optional[str]:
        return None

    def maintain(self) -> Optional[str]:
        return None

    def take_lost(self) -> int:
        return 0  # (PostgreSQL keeps its own pages whole)

    def save(self, force: bool = False) -> bool:
        return False

    def size_on_disk(self) -> Optional[int]:
        return None

    # -- shared work -----------------------------------------------------------------

    def claim(self, n: int, worker: str, lease: Optional[float] = None) -> list[tuple[int, str]]:
        """Lease up to ``n`` chunks that need a vector to ``worker``; returns (id, text) of those it
        must embed (chunks whose text already has a vector in the folder get a copy here)."""
        db = self._db()
        now = time.time()
        lease = self.lease if lease is None else lease
        rows = db.execute(
            """UPDATE chunks SET lease_until = ?, leased_by = ? WHERE id IN (
                 SELECT id FROM chunks WHERE embedding IS NULL AND has_vector = 1
                   AND (lease_until IS NULL OR lease_until < ? OR leased_by = ?)
                 ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id, text""",
            [now + lease, worker, now, worker, int(n)],
        ).fetchall()
        if not rows:
            return []
        hashes = {hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for _, t in rows}
        with write(db):
            copied = {
                r[0]
                for r in db.execute(
                    """UPDATE chunks c SET embedding = e.embedding, text_hash = e.text_hash,
                         lease_until = NULL, leased_by = NULL
                       FROM (SELECT DISTINCT ON (text_hash) text_hash, embedding FROM chunks
                             WHERE text_hash = ANY(?) AND embedding IS NOT NULL) e
                       WHERE c.id = ANY(?) AND c.leased_by = ? AND c.embedding IS NULL
                         AND sha256(convert_to(c.text, 'UTF8')) = e.text_hash
                       RETURNING c.id""",
                    [list(hashes), [r[0] for r in rows], worker],
                ).fetchall()
            }
        return [(int(i), t) for i, t in rows if i not in copied]

    def store_claimed(self, ids: list[int], vectors, worker: str) -> int:
        """Store the vectors of chunks ``worker`` still holds; returns how many it stored (a chunk
        whose lease ran out and went to another worker, or that was deleted, is left alone)."""
        if not ids:
            return 0
        rows = [(v, int(i), worker) for v, i in zip(as_matrix(vectors, self.dim), ids)]
        return self._store(_STORE + " AND leased_by = %s AND embedding IS NULL", rows)

    def _store(self, sql: str, rows: list) -> int:
        """Write vectors (and their text's hash, and end their claims); returns how many rows took one."""
        db = self._db()
        with write(db):
            with db.pg.cursor() as cur:
                cur.executemany(sql, rows)
                n = cur.rowcount
        self._len = (0.0, -1)
        return n

    def release(self, ids: list[int], worker: str) -> None:
        """Give back a claim that will not be embedded (the embedder failed): others may take it now."""
        if ids:
            self._db().execute(
                "UPDATE chunks SET lease_until = NULL, leased_by = NULL WHERE id = ANY(?) AND leased_by = ?",
                [ids, worker],
            )

    def waiting(self) -> tuple[int, int]:
        """(chunks without their vector, files they belong to), for ``semfs status``."""
        row = (
            self._db()
            .execute("SELECT count(*), count(DISTINCT file_id) FROM chunks WHERE embedding IS NULL AND has_vector = 1")
            .fetchone()
        )
        return int(row[0]), int(row[1])


def _np(v) -> np.ndarray:
    """pgvector's Vector (or an array) as float32."""
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32)


class ClaimedWork:
    """A PostgreSQL index's embedding work (:class:`semfs.stores.backlog.EmbeddingWork`): claimed
    from the table by whichever mount or worker asks first, so it is never only this mount's."""

    wanted = True  # another mount's chunks may be waiting: always worth a look

    def __init__(self, vectors: PgVectorStore) -> None:
        self.vectors = vectors

    def claim(self, n: int, worker: str, db=None) -> list[tuple[int, str]]:
        return self.vectors.claim(n, worker)

    def release(self, ids: list[int], worker: str) -> None:
        self.vectors.release(ids, worker)

    def store_claimed(self, ids: list[int], vectors, worker: str, db=None) -> int:
        return self.vectors.store_claimed(ids, vectors, worker)

    def waiting(self, db=None) -> tuple[int, int]:
        return self.vectors.waiting()

    def add(self, ids: Iterable[int]) -> None:
        pass  # the table says so already

    def want_all(self) -> None:
        pass

    def __len__(self) -> int:
        return 0  # (every mount's, not this one's to tell)
