#!/usr/bin/env python3
"""Chunk size against meaning without shared words (issue 24, item 2): smaller chunks, every set, at what cost.

For each collection of ``bench_retrieval.py`` and each ``max words:overlap``
setting, the collection is indexed in process from an empty state dir with
MiniLM (the chunker's defaults patched), then every question runs by BM25,
dense and hybrid: nDCG@10 and top-5 by distinct texts, the chunks made and
the seconds the first pass took (one run each; run nothing beside it).

    .venv/bin/python scripts/bench_granularity.py --collections changelogs,cranfield --settings 160:15 80:10 48:8
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--collections", default="changelogs,cranfield")
    ap.add_argument("--settings", nargs="+", default=["160:15", "80:10", "48:8"])
    ap.add_argument("--work", help="working folder for the backing folders (default: a new temp dir)")
    args = ap.parse_args()
    import eval_sets

    from semfs.core.index import chunking
    from semfs.core.index.service import Index, index_folder
    from semfs.models.embedder import make_embedder, query_embedder

    import bench_retrieval as br

    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-granularity-"))
    print("| collection | max words:overlap | set | method | nDCG@10 | top-5 | chunks | first pass s |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for name, backing, qs in br._collections(args.collections.split(","), work, Path(args.data)):
        key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, eval_sets).items()}
        for setting in args.settings:
            words, overlap = (int(x) for x in setting.split(":"))
            chunking.chunk_text.__defaults__ = (words, overlap)
            home = Path(tempfile.mkdtemp(prefix=f"{name}-{words}-", dir=work))
            os.environ["SEMFS_HOME"] = str(home)
            t0 = time.monotonic()
            index_folder(str(backing), make_embedder("minilm"))
            took = time.monotonic() - t0
            idx = Index(str(backing), query_embedder(home))
            chunks = idx.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            for method in ("bm25", "dense", "hybrid"):
                by_set = collections.defaultdict(list)
                for set_name, q, gains in qs:
                    by_set[set_name].append(br.measure(br.run_method(idx.searcher, method, q), gains, key))
                for set_name, ms in by_set.items():
                    m = br._mean(ms)
                    print(f"| {name} | {setting} | {set_name} | {method} | {m['nDCG@10']:.3f} | {m['top-5']:.2f} "
                          f"| {chunks} | {took:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
