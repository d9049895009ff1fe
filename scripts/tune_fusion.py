#!/usr/bin/env python3
"""How the hybrid's fusion was chosen: candidate fusions side by side on every collection.

Reads the indexes ``bench_retrieval.py --work DIR`` built (run it first), takes
each question's two candidate lists once (BM25 with file names, and the
query's cosine per file), and ranks them again with each fusion below,
feedback included as :mod:`semfs.core.query.search` does it. Questions are
split in two by their position: the fusion is chosen on the odd ones and
checked on the even ones (``--half``).

    .venv/bin/python scripts/tune_fusion.py --work /tmp/semfs-ret [--half odd|even|all]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from semfs.core.query.fusion import FEEDBACK_BETA, Scores, by_max, feedback_beta, fuse, mix  # noqa: E402

# -- the fusions measured side by side --------------------------------------------------------
# Each: (lex, den, coverage, final, bare, first_den) -> scores, and the feedback's beta by coverage.


def _before(lex, den, coverage, final, bare, first_den):
    return mix(by_max(lex), by_max(den), 0.8 if final else 0.6, bare)


def _served(lex, den, coverage, final, bare, first_den):
    return fuse(lex, den, coverage, final, bare)


def _words(lex, den, coverage, final, bare, first_den):
    return by_max(lex)


def _meaning(lex, den, coverage, final, bare, first_den):
    return by_max(first_den if final and first_den is not None else den)  # (no feedback: as mode "dense")


def _z(scores: Scores) -> dict[int, float]:
    vals = [s for s, _ in scores.values()]
    if not vals:
        return {}
    mean = sum(vals) / len(vals)
    sd = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5 or 1.0
    return {fid: (s - mean) / sd for fid, (s, _) in scores.items()}


def _z_fixed(lex, den, coverage, final, bare, first_den):
    lz, dz = _z(lex), _z(den)
    a, low_l, low_d = (0.7 if final else 0.6), min(lz.values(), default=0.0), min(dz.values(), default=0.0)
    return {
        f: lz.get(f, low_l) if f in bare else a * dz.get(f, low_d) + (1 - a) * lz.get(f, low_l)
        for f in lz.keys() | dz.keys()
    }


Beta = Callable[[float], float]
CANDIDATES: dict[str, tuple[Callable, Optional[Beta]]] = {
    "bm25": (_words, None),
    "dense": (_meaning, None),
    "before (0.6/0.8, feedback always)": (_before, lambda c: FEEDBACK_BETA),
    "z-scores 0.6/0.7, feedback always": (_z_fixed, lambda c: FEEDBACK_BETA),
    "served (by coverage)": (_served, feedback_beta),
}


def candidates(searcher, q: str, n: int = 200):
    """(lex, den, qv, bare, coverage): one question's two raw candidate lists, as rank() sees them."""
    lex, coverage = searcher.words(q, n)
    qv = searcher.embedder.embed([q])
    den = searcher.dense(qv, n)
    bare = searcher._unembedded(lex.keys() - den.keys())
    return lex, den, qv, bare, coverage


def rank_with(searcher, fusion, beta, lex, den, qv, bare, coverage, vec_cache: dict) -> list[int]:
    """File ids ranked by ``fusion`` (first pass), feedback on its top files by ``beta``, ``fusion`` again."""
    from semfs.core.query import search as S

    first = fusion(lex, den, coverage, False, bare, None)
    ranked = sorted(first, key=first.get, reverse=True)
    b = beta(coverage) if beta is not None else 0.0
    if b <= 0:
        return ranked
    top = []
    for f in ranked[: S.PRF_DOCS]:
        if f not in vec_cache:
            vec_cache[f] = searcher.file_vector(f)
        if vec_cache[f] is not None:
            top.append(vec_cache[f])
    if not top:
        return ranked
    moved = qv[0] + b * np.mean(top, axis=0)
    den2 = searcher._rescore(moved, lex.keys() | den.keys())
    final = fusion(lex, den2, coverage, True, bare, den)
    return sorted(final, key=final.get, reverse=True)


def main() -> None:
    from semfs.core.index.service import Index
    from semfs.models.embedder import query_embedder
    from semfs.stores.reads import file_row

    import bench_retrieval as br

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--collections", default="cranfield,changelogs,manpages")
    ap.add_argument("--half", default="all", choices=["odd", "even", "all"])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "cranfield"))
    args = ap.parse_args()
    work = Path(args.work)
    fusions = CANDIDATES
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for name, backing, qs in br._collections(args.collections.split(","), work, Path(args.data)):
        home = work / name / "home"
        os.environ["SEMFS_HOME"] = str(home)
        idx = Index(str(backing), query_embedder(home))
        s = idx.searcher
        key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, None).items()}
        path_of: dict[int, str] = {}
        cache: dict = {}
        for i, (set_name, q, gains) in enumerate(qs):
            if args.half == "odd" and i % 2 == 1 or args.half == "even" and i % 2 == 0:
                continue
            lex, den, qv, bare, coverage = candidates(s, q)
            for fname, (fusion, beta) in fusions.items():
                ids = rank_with(s, fusion, beta, lex, den, qv, bare, coverage, cache)[: br.DEPTH]
                for f in ids:
                    if f not in path_of:
                        row = file_row(s.db, f)
                        path_of[f] = row[0] if row else ""
                m = br.measure([path_of[f] for f in ids], gains, key)
                results.setdefault((name, set_name), {}).setdefault(fname, []).append(m["nDCG@10"])
                results.setdefault((name, set_name), {}).setdefault(fname + ":top5", []).append(m["top-5"])
    names = list(fusions)
    print("| collection | set | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    avg = {f: [] for f in names}
    for (c, st), by in results.items():
        cells = []
        for f in names:
            v = float(np.mean(by[f]))
            avg[f].append(v)
            cells.append(f"{v:.3f} ({np.mean(by[f + ':top5']):.2f})")
        print(f"| {c} | {st} | " + " | ".join(cells) + " |")
    print("| mean | | " + " | ".join(f"{np.mean(avg[f]):.3f}" for f in names) + " |")


if __name__ == "__main__":
    main()
