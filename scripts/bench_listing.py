#!/usr/bin/env python3
"""What a query folder lists, measured on Cranfield: the LLM's keywords, and the score cut-off.

1. Ranking: every Cranfield query is searched as the rules read it (the
   prompt's own words) and as the mount read it until now (the rules plus
   the LLM's keywords, gemma-3-270m); nDCG@10 of both, and how many of
   the 20 listed names the keywords change.
2. Set quality: the listed set (fixed 20, or the cut-off of
   ``semfs.core.query.cutoff``) against the judgements: precision, recall
   and F1 of the set, averaged over queries, and nDCG@10 of what is
   listed. ``--grid`` searches the cut-off's parameters on the odd-numbered
   queries and reports the best on both halves (the even ones held out).

Runs are cached in the work dir (``runs.json``), so a second run with
other cut-off parameters takes seconds.

    .venv/bin/python scripts/bench_listing.py [--work DIR] [--no-llm] [--grid]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_retrieval import load, write_docs  # noqa: E402

LISTED = 20


def index(work: Path, docs) -> tuple[Path, dict]:
    backing = write_docs(work / "backing", docs)
    env = dict(os.environ, SEMFS_HOME=str(work / "state"), SEMFS_EMBEDDER="minilm")
    subprocess.run([sys.executable, "-m", "semfs", "index", str(backing)], check=True, env=env)
    return backing, env


def runs(work: Path, backing: Path, queries: list[str], use_llm: bool) -> dict:
    """{"rules": [[hit, ...] per query], "llm": ...}; a hit is [doc, score, bm25, dense, cosine]."""
    cache = work / "runs.json"
    out = json.loads(cache.read_text()) if cache.exists() else {}
    from semfs.core.index.service import Index
    from semfs.core.query.prompts import merge_readings, parse_llm, parse_rules
    from semfs.models.embedder import make_embedder

    os.environ["SEMFS_HOME"] = str(work / "state")
    idx = Index(str(backing), make_embedder("minilm"))

    def row(h):
        return [int(Path(h.path).stem), h.score, h.bm25, h.dense, h.cosine]

    if "rules" not in out:
        t0 = time.monotonic()
        out["rules"] = [[row(h) for h in idx.search(parse_rules(q).text, k=100)] for q in queries]
        print(f"rules: {len(queries)} queries in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        cache.write_text(json.dumps(out))
    if use_llm and "llm" not in out:
        from semfs.models.llm import LocalLLM, ensure_default_model

        llm = LocalLLM(ensure_default_model(work / "models"))
        llm.preload()
        t0 = time.monotonic()
        out["llm"], out["keywords"] = [], []
        for q in queries:
            rules = parse_rules(q)
            try:
                reading = merge_readings(rules, parse_llm(q, llm, timeout=60.0))
            except Exception as e:  # as the mount does: the rules stand
                print(f"  no reading: {e}", file=sys.stderr)
                reading = rules
            out["keywords"].append(reading.keywords)
            out["llm"].append([row(h) for h in idx.search(reading.text, k=100)])
        print(f"llm: {len(queries)} queries in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        cache.write_text(json.dumps(out))
    return out


def ndcg10(ranked: list[int], gains: dict[int, int]) -> float:
    dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(gains.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def set_quality(listed: list[list[int]], qrels, qs) -> dict[str, float]:
    p = r = f = nd = size = empty = 0.0
    for q in qs:
        got, rel = listed[q - 1], qrels.get(q, {})
        tp = sum(1 for d in got if d in rel)
        prec = tp / len(got) if got else 0.0
        rec = tp / len(rel) if rel else 0.0
        p, r = p + prec, r + rec
        f += 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        nd += ndcg10(got, rel)
        size += len(got)
        empty += not got
    n = len(qs)
    return {"P": p / n, "R": r / n, "F1": f / n, "nDCG@10": nd / n, "listed": size / n, "empty": empty}


def cut(run, params) -> list[list[int]]:
    from semfs.core.query.cutoff import Cutoff, listed
    from semfs.core.query.search import Hit

    c = Cutoff(**params)
    return [
        [int(h.path) for h in listed([Hit(str(d), s, "", b, dn, cs) for d, s, b, dn, cs in hits], LISTED, c)]
        for hits in run
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--work", help="working folder (default: a new temp dir); reused if it holds runs")
    ap.add_argument("--no-llm", action="store_true", help="skip the LLM's keywords (part 1)")
    ap.add_argument("--grid", action="store_true", help="search the cut-off's parameters on the odd queries")
    args = ap.parse_args()
    docs, queries, qrels = load(Path(args.data))
    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-listing-"))
    work.mkdir(parents=True, exist_ok=True)
    backing, _ = index(work, docs)
    out = runs(work, backing, queries, not args.no_llm)
    every, odd, even = range(1, 226), range(1, 226, 2), range(2, 226, 2)

    def docs_of(run):
        return [[h[0] for h in hits] for hits in run]

    print(f"work dir {work}\n")
    if "llm" in out:
        print("| query read as | nDCG@10 all | odd | even | top-20 names changed (mean) |")
        print("|---|---:|---:|---:|---:|")
        base = docs_of(out["rules"])
        for name, key in (("rules (the prompt's words)", "rules"), ("rules + the LLM's keywords", "llm")):
            d = docs_of(out[key])
            changed = sum(len(set(a[:LISTED]) ^ set(b[:LISTED])) / 2 for a, b in zip(base, d)) / len(d)
            cells = [set_quality([x[:10] for x in d], qrels, qs)["nDCG@10"] for qs in (every, odd, even)]
            print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {changed:.1f} |")
        print()

    from semfs.core.query.cutoff import Cutoff

    rows = [("fixed 20", [d[:LISTED] for d in docs_of(out["rules"])])]
    rows.append(("cut-off (semfs defaults)", cut(out["rules"], {})))
    if args.grid:
        base = set_quality(rows[0][1], qrels, odd)["nDCG@10"]
        best = kept = None
        for rel, cos, lex in itertools.product(
            [0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
            [0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5],
            [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01],
        ):
            params = {"relative": rel, "min_cosine": cos, "min_bm25": lex}
            m = set_quality(cut(out["rules"], params), qrels, odd)
            if best is None or m["F1"] > best[0]:
                best = (m["F1"], params)
            if m["nDCG@10"] >= base - 0.01 and (kept is None or m["F1"] > kept[0]):
                kept = (m["F1"], params)
        assert best is not None and kept is not None
        rows.append((f"cut-off, best F1 on the odd queries: {best[1]}", cut(out["rules"], best[1])))
        rows.append((f"... with nDCG@10 kept within 0.01: {kept[1]}", cut(out["rules"], kept[1])))
    print(f"defaults: {Cutoff()}\n")
    print("| listed set | queries | P | R | F1 | nDCG@10 | files listed (mean) | empty folders |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, listed in rows:
        for half, qs in (("all", every), ("odd", odd), ("even (held out)", even)):
            m = set_quality(listed, qrels, qs)
            print(
                f"| {name} | {half} | {m['P']:.3f} | {m['R']:.3f} | {m['F1']:.3f} | {m['nDCG@10']:.3f} "
                f"| {m['listed']:.1f} | {m['empty']:.0f} |"
            )


if __name__ == "__main__":
    main()
