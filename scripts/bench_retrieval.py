#!/usr/bin/env python3
"""Search quality, every collection by every method, in one table.

Collections: Cranfield (1,400 abstracts, 225 queries, graded judgements:
gain = 5 - code for codes 1..4), and this machine's own text with the
questions in tests/data/eval/ (:mod:`eval_sets`): Debian changelogs
(paraphrased questions, and the same answers asked with no shared
content word) and the manual's pages. Each collection is written into a
backing folder and indexed by ``semfs index`` (MiniLM), once per work
dir; the questions then run in process through the index's ``Searcher``
(as ``semfs search`` does), once per method.

Every measure counts distinct texts, not files: files of identical content
(packages built from one source share a changelog), or of the same text
but for a few lines, are one answer, as semfs lists them.

- nDCG@10: over the ranked distinct texts (a text's gain is its best file's);
- top-1, top-5: whether a relevant text is first, or among the first five;
- distinct@5: how many distinct texts the first five listed entries show;
- opens: how many listed entries a reader opens, in order, before the first relevant one
  (mean, and worst; a miss in the first 20 counts 21).

The RRF row fuses the BM25 and dense runs (k = 60) as a reference point; it
is not something semfs serves.

    .venv/bin/python scripts/bench_retrieval.py [--collections cranfield,changelogs,manpages] [--work DIR]
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


# Cranfield by run (query number -> document numbers), for the scripts that score runs of `semfs search`
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


METHODS = ("bm25", "dense", "rrf", "hybrid")
DEPTH = 50  # entries asked of each method: enough for ten distinct texts


def _collections(names: list[str], work: Path, cranfield: Path):
    """(name, backing, [(set, question, {path: gain})]) for each collection."""
    import eval_sets

    out = []
    for name in names:
        if name == "cranfield":
            docs, queries, qrels = load(cranfield)
            backing = write_docs(work / "cranfield" / "backing", docs)
            qs = [("all", q, {doc_name(d): g for d, g in qrels.get(i + 1, {}).items()}) for i, q in enumerate(queries)]
        else:
            backing = eval_sets.build(name, work / name / "backing")
            rel = eval_sets.judgements(name, backing)
            qs = [(q.get("set", "all"), q["q"], {p: 1 for p in r}) for q, r in zip(eval_sets.questions(name), rel)]
        out.append((name, backing, qs))
    return out


def _index(backing: Path, home: Path) -> None:
    env = dict(os.environ, SEMFS_HOME=str(home))
    env.pop("SEMFS_EMBEDDER", None)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "semfs", "index", str(backing)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    print(f"indexed {backing} in {time.monotonic() - t0:.0f}s", file=sys.stderr)


def _rrf(a: list[str], b: list[str], k: int = 60) -> list[str]:
    score: dict[str, float] = collections.defaultdict(float)
    for run in (a, b):
        for rank, d in enumerate(run):
            score[d] += 1.0 / (k + rank + 1)
    return sorted(score, key=score.get, reverse=True)


def measure(ranked: list[str], gains: dict[str, int], key: dict[str, str]) -> dict[str, float]:
    """The measures of one ranked list of paths (see the module's doc)."""
    text_gain: dict[str, int] = {}
    for p, g in gains.items():
        k = key.get(p, p)
        text_gain[k] = max(text_gain.get(k, 0), g)
    seen: list[str] = []
    for p in ranked:
        k = key.get(p, p)
        if k not in seen:
            seen.append(k)
    dcg = sum(text_gain.get(k, 0) / math.log2(i + 2) for i, k in enumerate(seen[:10]))
    ideal = sorted(text_gain.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    first = next((i for i, k in enumerate(seen) if text_gain.get(k, 0) > 0), None)
    opens = next((i + 1 for i, p in enumerate(ranked[:20]) if gains.get(p, 0) > 0), 21)
    return {
        "nDCG@10": dcg / idcg if idcg else 0.0,
        "top-1": float(first == 0),
        "top-5": float(first is not None and first < 5),
        "distinct@5": float(len({key.get(p, p) for p in ranked[:5]})),
        "opens": float(opens),
    }


def run_method(searcher, method: str, q: str) -> list[str]:
    if method == "rrf":
        return _rrf(run_method(searcher, "bm25", q), run_method(searcher, "dense", q))
    return [h.path for h in searcher.search(q, k=DEPTH, mode=method)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"), help="Cranfield's folder")
    ap.add_argument("--collections", default="cranfield,changelogs,manpages")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--work", help="working folder (default: a new temp dir); reused if it holds the indexes")
    ap.add_argument("--json", help="also write every question's measures here")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(ROOT))
    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-retrieval-"))
    methods = args.methods.split(",")
    import eval_sets

    from semfs.core.index.service import Index
    from semfs.models.embedder import query_embedder

    rows, per_question = [], []
    for name, backing, qs in _collections(args.collections.split(","), work, Path(args.data)):
        home = work / name / "home"
        _index(backing, home)
        os.environ["SEMFS_HOME"] = str(home)
        idx = Index(str(backing), query_embedder(home))
        key = {p.relative_to(backing).as_posix(): h for p, h in _keys(backing, eval_sets).items()}
        for method in methods:
            t0 = time.monotonic()
            by_set: dict[str, list[dict]] = collections.defaultdict(list)
            for set_name, q, gains in qs:
                m = measure(run_method(idx.searcher, method, q), gains, key)
                by_set[set_name].append(m)
                per_question.append({"collection": name, "set": set_name, "method": method, "q": q, **m})
            took = time.monotonic() - t0
            for set_name, ms in by_set.items():
                rows.append((name, set_name, method, len(ms), _mean(ms), max(m["opens"] for m in ms), took / len(qs)))
    print(
        "| collection | set | questions | method | nDCG@10 | top-1 | top-5 | distinct@5 | opens mean | worst | ms/q |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, set_name, method, n, m, worst, per in rows:
        print(
            f"| {name} | {set_name} | {n} | {method} | {m['nDCG@10']:.3f} | {m['top-1']:.2f} | {m['top-5']:.2f} "
            f"| {m['distinct@5']:.2f} | {m['opens']:.1f} | {worst:.0f} | {per * 1000:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(per_question, indent=0))


def _keys(backing: Path, eval_sets=None) -> dict[Path, str]:
    """path -> a key its answer shares with every file of identical or near-identical text (the
    rule of semfs.core.query.search: NEAR of their distinct lines in common), as search folds them."""
    import hashlib

    from semfs.core.query.search import NEAR, NEAR_MIN_LINES, _jaccard

    by_sha: dict[str, list[Path]] = {}
    for p in backing.rglob("*.txt"):
        by_sha.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), []).append(p)
    shas = sorted(by_sha)
    lines = {}
    for sha in shas:
        text = by_sha[sha][0].read_text(errors="replace")
        got = frozenset(" ".join(ln.split()).lower() for ln in text.split("\n") if ln.strip())
        if len(got) >= NEAR_MIN_LINES:
            lines[sha] = got
    parent = {sha: sha for sha in shas}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    near = sorted(lines, key=lambda sha: len(lines[sha]))
    for i, a in enumerate(near):  # by size: a pair can only be near if their sizes are within NEAR
        for b in near[i + 1 :]:
            if len(lines[a]) < NEAR * len(lines[b]):
                break
            if _jaccard(lines[a], lines[b]) >= NEAR:
                parent[root(a)] = root(b)
    return {p: root(sha) for sha, ps in by_sha.items() for p in ps}


def _mean(ms: list[dict]) -> dict[str, float]:
    return {k: sum(m[k] for m in ms) / len(ms) for k in ms[0]}


if __name__ == "__main__":
    main()
