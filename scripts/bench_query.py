#!/usr/bin/env python3
"""Query latency of ``semfs search`` in-process: p50/p95 at 1k and 100k chunks.

The 1k index is real: Cranfield documents indexed with all-MiniLM-L6-v2
(the first 600 files give about 1,000 chunks). The 100k index is built
from it, since embedding 100k chunks takes about an hour here: the real
chunks' texts and vectors are copied 100 times into new files, each copy's
vector perturbed with Gaussian noise and renormalised, and each copy's
text shuffled by sentence, so BM25 sees 100k distinct rows. Queries are
the 225 Cranfield queries; the model is loaded before timing (excluded),
but each query's embedding is included.

    .venv/bin/python scripts/bench_query.py [--copies 100]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def percentiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def time_queries(searcher, queries, k=10) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        searcher.search(q, k=k)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--work", help="build the indexes here (kept), or reuse them if built already")
    args = ap.parse_args()

    from semfs.core.index.indexer import Indexer
    from semfs.core.query.search import Searcher
    from semfs.models.embedder import MiniLMEmbedder
    from semfs.stores import metadata as md
    from semfs.stores.vectors import VectorStore

    import bench_retrieval as br

    docs, queries, _ = br.load(Path(args.data))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="semfs-bench-query-"))
    work.mkdir(parents=True, exist_ok=True)
    backing = work / "backing"
    emb = MiniLMEmbedder()
    emb.embed(["load the model"])
    small_state, big_state = work / "state-small", work / "state-big"
    if not (small_state / "built").exists():
        for n in sorted(docs)[: args.files]:
            title, body = docs[n]
            p = backing / br.doc_name(n)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{title}\n\n{body}\n")
        Indexer(backing, small_state, emb).run_once()
        (small_state / "built").touch()
    if not (big_state / "built").exists():
        shutil.rmtree(big_state, ignore_errors=True)
        shutil.copytree(small_state, big_state, ignore=shutil.ignore_patterns("built"))
        build = grow(big_state, backing, args.copies, emb.dim)
        print(f"(built the large index in {build:.0f}s)")
        (big_state / "built").touch()

    results = []
    for state in (small_state, big_state):
        db = md.open_db(state)
        vs = VectorStore(state, emb.dim)
        searcher = Searcher(backing, db, vs, emb, connect=lambda state=state: md.open_db_readonly(state))
        time_queries(searcher, queries[:20])  # warm caches
        results.append((md.counts(db)["chunks"], time_queries(searcher, queries)))
        db.conn.close()

    print(f"({len(queries)} queries each, k=10, hybrid with feedback)")
    print("| chunks | p50 ms | p95 ms | mean ms |")
    print("|---:|---:|---:|---:|")
    for n, lat in results:
        p50, p95 = percentiles(lat)
        print(f"| {n:,} | {p50:.1f} | {p95:.1f} | {statistics.mean(lat):.1f} |")


def grow(state: Path, backing: Path, copies: int, dim: int) -> float:
    """Copy every indexed file ``copies - 1`` times (texts shuffled by sentence, vectors perturbed)."""
    import numpy as np

    from semfs.stores import lexical
    from semfs.stores import metadata as md
    from semfs.stores.vectors import VectorStore

    db = md.open_db(state)
    vs = VectorStore(state, dim)
    rng = np.random.default_rng(0)
    rnd = random.Random(0)
    rows = db.execute(
        "SELECT c.id, c.text, f.path FROM chunks c JOIN files f ON f.id = c.file_id WHERE has_vector = 1"
    ).fetchall()
    base = {cid: vs.reconstruct(cid) for cid, _, _ in rows}
    by_file: dict[str, list] = {}
    for cid, text, path in rows:
        by_file.setdefault(path, []).append((cid, text))
    t0 = time.perf_counter()
    for copy in range(1, copies):
        ids, vecs = [], []
        with db.atomic():
            for path, chunks in by_file.items():
                new_path = f"copy{copy:03d}/{path}"
                fid = md.upsert_file(db, new_path, 0, 0, None, "text", 0, None)
                new = []
                for i, (cid, text) in enumerate(chunks):
                    sents = text.split(" . ")
                    rnd.shuffle(sents)
                    new.append(md.NewChunk(i, 0, 0, " . ".join(sents), True))
                ids += md.replace_chunks(db, fid, new)
                for cid, _ in chunks:
                    vecs.append(base[cid] + rng.normal(0, 0.02, dim).astype(np.float32))
            lexical.post_pending(db)
        vs.add(ids, np.array(vecs))
    lexical.maintain(db)
    for copy in range(1, copies):  # the files must exist: search checks the disk
        for path in by_file:
            p = backing / f"copy{copy:03d}" / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
    build = time.perf_counter() - t0
    db.conn.commit()
    vs.save()
    db.conn.close()
    return build


if __name__ == "__main__":
    main()
