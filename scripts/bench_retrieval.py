#!/usr/bin/env python3
"""Search quality on the Cranfield collection: BM25, dense, RRF and semfs hybrid.

Writes the 1400 Cranfield documents (title + abstract) as one file each
into a backing folder, indexes it with ``semfs index`` and runs all 225
queries through ``semfs search --queries`` once per mode, then scores the
runs against the graded judgements (gain = 5 - code for codes 1..4).
The RRF row fuses the BM25 and dense runs (k = 60) as the reference
point; it is not something semfs serves.

    .venv/bin/python scripts/bench_retrieval.py [--data ../shared/data/cranfield] [--work DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_fields(text: str) -> list[dict[str, str]]:
    """Records of a Cranfield file: .I starts one; .T/.A/.B/.W fields follow."""
    records, cur, field = [], None, None
    for line in text.splitlines():
        m = re.match(r"^\.([ITABW])\b ?(.*)$", line)
        if m:
            tag, rest = m.groups()
            if tag == "I":
                cur = {"I": rest.strip()}
                records.append(cur)
                field = None
            else:
                field = tag
                cur[field] = rest
            continue
        if cur is not None and field is not None:
            cur[field] = (cur.get(field, "") + "\n" + line).strip("\n")
    return records


def load(data: Path):
    docs = {
        int(r["I"]): (r.get("T", "").strip(), r.get("W", "").strip())
        for r in parse_fields((data / "cran.all.1400").read_text())
    }
    queries = [" ".join(r.get("W", "").split()) for r in parse_fields((data / "cran.qry").read_text())]
    qrels: dict[int, dict[int, int]] = collections.defaultdict(dict)
    for line in (data / "cranqrel").read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # two lines carry no code
        q, d, code = int(parts[0]), int(parts[1]), int(parts[2])
        if 1 <= code <= 4:
            qrels[q][d] = 5 - code
    return docs, queries, qrels


def doc_name(n: int) -> str:
    return f"cran/{n:04d}.txt"


def write_docs(backing: Path, docs) -> Path:
    """The documents as files, one each (title, blank line, abstract); a file already right is left alone."""
    for n, (title, body) in docs.items():
        p = backing / doc_name(n)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = f"{title}\n\n{body}\n"
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
    return backing


def evaluate(run: dict[int, list[int]], qrels, k: int = 10) -> dict[str, float]:
    ndcg = recall = mrr = 0.0
    qs = range(1, len(run) + 1)
    for q in qs:
        ranked = run.get(q, [])[:k]
        gains = qrels.get(q, {})
        dcg = sum(gains.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(gains.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg += dcg / idcg if idcg else 0.0
        recall += (sum(1 for d in ranked if d in gains) / len(gains)) if gains else 0.0
        mrr += next((1.0 / (i + 1) for i, d in enumerate(ranked) if d in gains), 0.0)
    n = len(run)
    return {"nDCG@10": ndcg / n, "Recall@10": recall / n, "MRR@10": mrr / n}


def run_queries(
    semfs: list[str], backing: Path, queries: list[str], mode: str, depth: int, env
) -> dict[int, list[int]]:
    qfile = backing.parent / "queries.txt"
    qfile.write_text("\n".join(queries) + "\n")
    out = subprocess.run(
        [*semfs, "search", str(backing), "--queries", str(qfile), "--json", "-k", str(depth), "--mode", mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    by_query: dict[str, list[int]] = collections.defaultdict(list)
    for line in out.splitlines():
        obj = json.loads(line)
        by_query[obj["query"]].append(int(Path(obj["path"]).stem))
    return {i + 1: by_query.get(q, []) for i, q in enumerate(queries)}


def rrf(a: dict[int, list[int]], b: dict[int, list[int]], k: int = 60) -> dict[int, list[int]]:
    out = {}
    for q in a:
        score: dict[int, float] = collections.defaultdict(float)
        for run in (a, b):
            for rank, d in enumerate(run.get(q, [])):
                score[d] += 1.0 / (k + rank + 1)
        out[q] = sorted(score, key=score.get, reverse=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--work", help="working folder (default: a new temp dir); reused if it holds an index")
    args = ap.parse_args()
    data = Path(args.data)
    docs, queries, qrels = load(data)
    assert len(docs) == 1400 and len(queries) == 225, (len(docs), len(queries))

    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-cranfield-"))
    backing = write_docs(work / "backing", docs)
    env = dict(os.environ, SEMFS_HOME=str(work / "state"))
    env.pop("SEMFS_EMBEDDER", None)
    semfs = [sys.executable, "-m", "semfs"]
    t0 = time.monotonic()
    subprocess.run([*semfs, "index", str(backing)], check=True, env=env, stdout=subprocess.DEVNULL)
    print(f"indexed in {time.monotonic() - t0:.0f}s (work dir {work})", file=sys.stderr)

    runs = {}
    for mode in ("bm25", "dense", "hybrid"):
        t0 = time.monotonic()
        runs[mode] = run_queries(semfs, backing, queries, mode, 100, env)
        print(f"{mode}: 225 queries in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    rows = [
        ("BM25 (semfs segments, porter, content words)", runs["bm25"]),
        ("dense (all-MiniLM-L6-v2, best chunk per file)", runs["dense"]),
        ("reciprocal rank fusion of the two, k=60 (reference)", rrf(runs["bm25"], runs["dense"])),
        ("semfs hybrid (normalised score fusion)", runs["hybrid"]),
    ]
    print("| method | nDCG@10 | Recall@10 | MRR@10 |")
    print("|---|---:|---:|---:|")
    for name, run in rows:
        m = evaluate(run, qrels)
        print(f"| {name} | {m['nDCG@10']:.3f} | {m['Recall@10']:.3f} | {m['MRR@10']:.3f} |")
    # The fusion and feedback parameters were tuned on the odd-numbered
    # queries; the even-numbered ones are the held-out check.
    for half, start in (("odd (tuning)", 1), ("even (held out)", 2)):
        qs = range(start, 226, 2)
        print(
            f"\nnDCG@10 on the {half} queries: "
            + ", ".join(f"{name.split(' (')[0]} {_ndcg_on(run, qrels, qs):.3f}" for name, run in rows)
        )


def _ndcg_on(run, qrels, qs) -> float:
    sub = {i + 1: run.get(q, []) for i, q in enumerate(qs)}
    sub_qrels = {i + 1: qrels.get(q, {}) for i, q in enumerate(qs)}
    return evaluate(sub, sub_qrels)["nDCG@10"]


if __name__ == "__main__":
    main()
