#!/usr/bin/env python3
"""Query latency of ``semfs search``: p50/p95 at 1k, 100k and 1M chunks, where the time goes, memory, saves.

The 1k index is real: Cranfield documents indexed with all-MiniLM-L6-v2
(the first 600 files give about 1,000 chunks). The 100k index is built
from it, since embedding 100k chunks takes about an hour here: the real
chunks' texts and vectors are copied 100 times into new files, each copy's
vector perturbed with Gaussian noise and renormalised, and each copy's
text shuffled by sentence, so BM25 sees 100k distinct rows. Queries are
the 225 Cranfield queries; the model is loaded before timing (excluded),
but each query's embedding is included.

``--stages`` also runs each query as a query folder does (``pipeline.answer``:
the prompt read by the rules, the cut-off, passages for what is listed; k=10)
on a searcher without the second connection, so BM25 runs in line and every
stage's time is its own, and prints the mean milliseconds per query each stage
took (exclusive of the stages inside it) and the p50/p95 of the whole.

Then the resident memory each index added to this process (and the embedder worker's), and the
cost of a save after ``--changed`` files changed in the largest index (bytes written, time), on a
hard-linked copy of its vectors.

    .venv/bin/python scripts/bench_query.py [--copies 100 1000] [--work DIR] [--stages] [--embedder worker|inline]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
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


def rss_mb(pid: str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_embedder(emb_name: str):
    """The embedder as a mount has it: a supervised worker process, prompts to its ONNX graph."""
    from semfs.core.state import semfs_home
    from semfs.models.embedder import embedder_identity
    from semfs.models.onnx_minilm import cache_dir
    from semfs.models.remote import RemoteEmbedder
    from semfs.models.supervisor import Supervised

    name, dim = embedder_identity(emb_name)
    home = semfs_home()
    config = {"name": emb_name, "threads": os.cpu_count() or 2, "concurrency": 2, "nice": 10, "home": str(home)}
    config.update(backend_cache=str(home / "backend.json"), onnx_cache=str(cache_dir(home)))  # (as fs/daemon.py)
    w = Supervised("embedder", config)
    w.start()
    w.wait_ready(180)
    return RemoteEmbedder(w, name, dim, timeout=10.0, prompts=True), w


def save_cost(state: Path, files: int, dim: int) -> dict:
    """On a copy of the index's vectors (hard links: segments never change), ``files`` files changed
    as the indexer changes them: their chunks' vectors removed, as many new ones added; then a save."""

    from semfs.stores import metadata as md
    from semfs.stores import segments
    from semfs.stores.vectors import VectorStore

    copy = Path(tempfile.mkdtemp(prefix="semfs-bench-save-"))
    try:
        subprocess.run(["cp", "-al", str(state / segments.DIR), str(copy / segments.DIR)], check=True)
        db = md.open_db_readonly(state)
        fids = [r[0] for r in db.execute("SELECT id FROM files ORDER BY random() LIMIT ?", [files])]
        q = ",".join("?" * len(fids))
        gone = [r[0] for r in db.execute(f"SELECT id FROM chunks WHERE has_vector = 1 AND file_id IN ({q})", fids)]
        top = db.execute("SELECT max(id) FROM chunks").fetchone()[0]
        db.conn.close()
        t0 = time.perf_counter()
        vs = VectorStore(copy, dim)
        opened = time.perf_counter() - t0
        before = {e.name: e.stat().st_size for e in os.scandir(copy / segments.DIR)}
        _, vecs = vs.reconstruct_many(gone)
        vs.remove(gone)
        vs.add(range(top + 1, top + 1 + len(vecs)), vecs[::-1])
        t0 = time.perf_counter()
        vs.save()
        took = time.perf_counter() - t0
        after = {e.name: e.stat().st_size for e in os.scandir(copy / segments.DIR)}
        written = sum(v for n, v in after.items() if n not in before or n == segments.MANIFEST)
        merged = 0
        what = vs.due()
        if what == "compact":  # (a merge follows saves now and then: what this one would cost)
            before = after
            vs.maintain()
            after = {e.name: e.stat().st_size for e in os.scandir(copy / segments.DIR)}
            merged = sum(v for n, v in after.items() if n not in before or n == segments.MANIFEST)
        total = sum(after.values())
        vs.close()
        return {
            "chunks": len(gone),
            "written": written,
            "seconds": took,
            "total": total,
            "merged": merged,
            "opened": opened,
            "vectors": len(vs),
        }
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--copies", type=int, nargs="+", default=[100], help="large indexes: the small one copied N times")
    ap.add_argument("--work", help="build the indexes here (kept), or reuse them if built already")
    ap.add_argument("--stages", action="store_true", help="also the time of each stage of a query folder's answer")
    ap.add_argument(
        "--embedder",
        choices=["worker", "inline"],
        default="worker",
        help="worker: a supervised worker process, as a mount embeds prompts (default); inline: in this process",
    )
    ap.add_argument("--changed", type=int, default=1000, help="files changed before the timed save")
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
    small_state = work / "state-small"
    if not (small_state / "built").exists():
        for n in sorted(docs)[: args.files]:
            title, body = docs[n]
            p = backing / br.doc_name(n)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{title}\n\n{body}\n")
        Indexer(backing, small_state, MiniLMEmbedder()).run_once()
        (small_state / "built").touch()
    states = [small_state]
    for copies in args.copies:
        big_state = work / f"state-x{copies}"
        if not (big_state / "built").exists():
            shutil.rmtree(big_state, ignore_errors=True)
            shutil.copytree(small_state, big_state, ignore=shutil.ignore_patterns("built"))
            build = grow(big_state, backing, copies, MiniLMEmbedder().dim)
            print(f"(built the index of {copies} copies in {build:.0f}s)")
            (big_state / "built").touch()
        states.append(big_state)

    worker = None
    if args.embedder == "worker":
        emb, worker = worker_embedder("minilm")
    else:
        emb = MiniLMEmbedder()
    emb.embed(["load the model"])
    results, staged, memory = [], [], []
    for state in states:
        db = md.open_db(state)
        before = rss_mb()
        t0 = time.perf_counter()
        vs = VectorStore(state, emb.dim, writer=False)
        opened = time.perf_counter() - t0
        searcher = Searcher(backing, db, vs, emb, connect=lambda state=state: md.open_db_readonly(state))
        time_queries(searcher, queries[:20])  # warm caches
        n_chunks = md.counts(db)["chunks"]
        results.append((n_chunks, time_queries(searcher, queries)))
        if args.stages:
            staged.append((n_chunks, opened, vs.kind, stages(Searcher(backing, db, vs, emb), queries, backing)))
        memory.append((n_chunks, rss_mb() - before, rss_mb(), rss_mb(str(worker.pid)) if worker else None))
        db.conn.close()
        vs.close()
        del vs, searcher

    print(f"({len(queries)} queries each, k=10, hybrid with feedback; the embedder {args.embedder})")
    print("| chunks | p50 ms | p95 ms | mean ms |")
    print("|---:|---:|---:|---:|")
    for n, lat in results:
        p50, p95 = percentiles(lat)
        print(f"| {n:,} | {p50:.1f} | {p95:.1f} | {statistics.mean(lat):.1f} |")
    if staged:
        print_stages(staged)
    print("\nResident memory after the queries, MB (this process: SQLite, BM25, vectors, no model)")
    print("| chunks | this index added | this process | the embedder worker |")
    print("|---:|---:|---:|---:|")
    for n, added, total, wrk in memory:
        print(f"| {n:,} | {added:.0f} | {total:.0f} | {'-' if wrk is None else f'{wrk:.0f}'} |")
    cost = save_cost(states[-1], args.changed, emb.dim)
    print(
        f"\nA save after {args.changed:,} files changed ({cost['chunks']:,} chunks' vectors replaced) in an index of "
        f"{cost['vectors']:,} vectors ({cost['total'] / 2**20:,.0f} MB on disk; opened as a writer in "
        f"{cost['opened']:.1f} s): {cost['written'] / 2**20:.1f} MB written in {cost['seconds'] * 1000:.0f} ms"
        + (f"; the merge it made due, {cost['merged'] / 2**20:.1f} MB" if cost["merged"] else "")
    )
    if worker is not None:
        worker.stop()


STAGES = [
    ("prompt rules", "semfs.core.query.pipeline", "parse_rules"),
    ("query embedding", None, "embed"),
    ("BM25 postings (LexicalIndex.scored)", "semfs.stores.lexical", "LexicalIndex.scored"),
    ("BM25: chunks to files, file names", "semfs.core.query.search", "Searcher.words"),
    ("vector search (VectorStore.search)", "semfs.stores.vectors", "VectorStore.search"),
    ("vector hits to files", "semfs.core.query.search", "Searcher.dense"),
    ("unembedded check", "semfs.core.query.search", "Searcher._unembedded"),
    ("feedback: top files' vectors", "semfs.core.query.search", "Searcher.file_vector"),
    ("feedback: rescoring the candidates", "semfs.core.query.search", "Searcher._rescore"),
    ("fusion, the rest of rank()", "semfs.core.query.search", "Searcher.rank"),
    ("files: rows, disk checks, copies", "semfs.core.query.search", "Searcher._hits"),
    ("snippets", "semfs.core.query.search", "Searcher.snippet"),
    ("probability and cut-off", "semfs.core.query.pipeline", "listed"),
    ("passages of the listed files", "semfs.core.query.search", "Searcher.with_passages"),
    ("the rest of answer()", "semfs.core.query.pipeline", "answer"),
]


def stages(searcher, queries, backing: Path) -> tuple[dict[str, float], list[float]]:
    """(stage -> mean ms per query, exclusive of the stages it calls; each query's total ms)."""
    import importlib

    from semfs.core.query import pipeline
    from semfs.core.query.cutoff import for_embedder

    spent: dict[str, float] = {name: 0.0 for name, _, _ in STAGES}
    stack: list[float] = []  # time the stages inside the running one took

    def timed(name, fn):
        def run(*a, **kw):
            stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                took = time.perf_counter() - t0
                inner = stack.pop()
                spent[name] += took - inner
                if stack:
                    stack[-1] += took

        return run

    undo = []
    for name, module, attr in STAGES:
        if module is None:  # the embedder: this searcher's own object
            orig = searcher.embedder.embed
            searcher.embedder.embed = timed(name, orig)
            undo.append(lambda orig=orig: setattr(searcher.embedder, "embed", orig))
            continue
        owner = importlib.import_module(module)
        *path, leaf = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        orig = getattr(owner, leaf)
        setattr(owner, leaf, timed(name, orig))
        undo.append(lambda owner=owner, leaf=leaf, orig=orig: setattr(owner, leaf, orig))
    cut = for_embedder(searcher.embedder.name)
    totals = []
    try:
        for q in queries[:20]:  # warm caches
            pipeline.answer(searcher, q, 10, backing=backing, cut=cut)
        for name in spent:
            spent[name] = 0.0
        for q in queries:
            t0 = time.perf_counter()
            pipeline.answer(searcher, q, 10, backing=backing, cut=cut)
            totals.append((time.perf_counter() - t0) * 1000)
    finally:
        for fn in reversed(undo):
            fn()
    return {name: spent[name] * 1000 / len(queries) for name in spent}, totals


def print_stages(staged) -> None:
    print("\nA query folder's answer (k=10), in line, stage by stage: mean ms per query")
    print("| stage | " + " | ".join(f"{n:,} chunks" for n, _, _, _ in staged) + " |")
    print("|---|" + "---:|" * len(staged))
    for name, _, _ in STAGES:
        print(f"| {name} | " + " | ".join(f"{st[name]:.1f}" for _, _, _, (st, _) in staged) + " |")
    print("| **total, mean** | " + " | ".join(f"**{statistics.mean(t):.1f}**" for _, _, _, (_, t) in staged) + " |")
    for label, i in (("p50", 0), ("p95", 1)):
        print(f"| total, {label} | " + " | ".join(f"{percentiles(t)[i]:.1f}" for _, _, _, (_, t) in staged) + " |")
    print("| vector index kind; opened in | " + " | ".join(f"{kind}; {o:.1f} s" for _, o, kind, _ in staged) + " |")


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
