#!/usr/bin/env python3
"""Scores that mean something (issue 24, item 5): P(relevant) fitted on the evaluation sets, and the listed set.

Every question of every collection of ``bench_retrieval.py`` (Cranfield,
the Debian changelogs in both forms, the manual's pages) is searched as a
query folder searches (``Searcher.find``, hybrid, a pool of 40 distinct
texts). Each hit gives its evidence, the features of
``semfs.core.query.calibration``: the raw cosine of its best chunk to the
prompt, its BM25 score as a share of the most the prompt could score, its
fused score (relative to the best), and its rank. A hit is relevant when
its text is judged so.

A logistic regression is fitted on the odd-numbered questions of each
collection (each collection weighted alike), and checked on the even ones:

- calibration: log-loss and Brier score, and the share of relevant hits
  in bins of the fitted probability (a calibrated score's bin of 0.3
  holds about 30% relevant hits);
- the listed set (P, R, F1 per question, averaged): today's cut-off
  (``cutoff.listed``) against "p at least t", for the t of best F1 on the
  odd questions.

The features of every hit are kept in the work dir (``scores.json``), so
a second run fits in seconds. ``--write`` prints the coefficients as
``calibration.py`` holds them.

    .venv/bin/python scripts/fit_scores.py [--work DIR] [--collections ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

POOL = 40
LISTED = 20


def gather(work: Path, names: list[str], cranfield: Path) -> list[dict]:
    """One record per question: its collection, set, number, relevant texts, and its hits' evidence."""
    import eval_sets

    from semfs.core.index.service import Index
    from semfs.models.embedder import query_embedder

    import bench_retrieval as br

    out = []
    for name, backing, qs in br._collections(names, work, cranfield):
        home = work / name / "home"
        br._index(backing, home)
        os.environ["SEMFS_HOME"] = str(home)
        idx = Index(str(backing), query_embedder(home))
        key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, eval_sets).items()}
        for i, (set_name, q, gains) in enumerate(qs):
            relevant = {key.get(p, p) for p, g in gains.items() if g > 0}
            found = idx.searcher.find(q, k=POOL, mode="hybrid")
            hits = []
            for rank, h in enumerate(found.hits, 1):
                texts = {key.get(p, p) for p in (h.path, *h.also, *h.alike)}
                hits.append(
                    {
                        "rank": rank,
                        "score": h.score,
                        "bm25": h.bm25,
                        "dense": h.dense,
                        "cosine": h.cosine,
                        "unembedded": h.unembedded,
                        "text": sorted(texts)[0],
                        "relevant": bool(texts & relevant),
                    }
                )
            out.append(
                {
                    "collection": name if name == "cranfield" else f"{name}/{set_name}",
                    "n": i,
                    "coverage": found.coverage,
                    "share": found.share(),
                    "relevant": len(relevant),
                    "hits": hits,
                }
            )
        print(f"{name}: {len(qs)} questions", file=sys.stderr)
    return out


def hits_of(q: dict) -> list:
    """The question's hits as the served code holds them (paths: their positions)."""
    from semfs.core.query.search import Hit

    return [
        Hit(str(i), h["score"], "", h["bm25"], h["dense"], h["cosine"], unembedded=h.get("unembedded", False))
        for i, h in enumerate(q["hits"])
    ]


def evidence(q: dict) -> list[list[float]]:
    """The features of the question's hits, as calibration.with_probability reads them."""
    from semfs.core.query.calibration import evidence as of

    return of(hits_of(q), q["coverage"])


def set_quality(listed: list[list[dict]], qs: list[dict]) -> dict[str, float]:
    p = r = f = size = empty = 0.0
    for got, q in zip(listed, qs):
        tp = sum(h["relevant"] for h in got)
        prec = tp / len(got) if got else 0.0
        rec = tp / q["relevant"] if q["relevant"] else 0.0
        p, r = p + prec, r + rec
        f += 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        size += len(got)
        empty += not got
    n = len(qs)
    return {"P": p / n, "R": r / n, "F1": f / n, "listed": size / n, "empty": empty}


def cut_off(q: dict, coef=None, **params) -> list[dict]:
    """What a query folder lists of the question's hits: by the probabilities of ``coef``
    (default: the served ones; ``False``: none, the relative cut-off as before), with the
    cut-off's ``params``."""
    from semfs.core.query import calibration
    from semfs.core.query.cutoff import Cutoff, listed

    hits = hits_of(q)
    if coef is not False:
        hits = calibration.with_probability(hits, q["coverage"], *([coef] if coef is not None else []))
    share = q["share"]
    return [q["hits"][int(h.path)] for h in listed(hits, LISTED, Cutoff(**params), False, q["coverage"], lambda: share)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--collections", default="cranfield,changelogs,manpages")
    ap.add_argument("--work", help="working folder (default: a new temp dir); reused if it holds the indexes")
    ap.add_argument("--again", action="store_true", help="search again, not from scores.json")
    ap.add_argument("--grid", action="store_true", help="mean F1 of other cut-off settings")
    ap.add_argument("--write", action="store_true", help="print the fitted coefficients for calibration.py")
    args = ap.parse_args()
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-scores-"))
    cache = work / "scores.json"
    if cache.exists() and not args.again:
        qs = json.loads(cache.read_text())
    else:
        qs = gather(work, args.collections.split(","), Path(args.data))
        cache.write_text(json.dumps(qs))
    colls = sorted({q["collection"] for q in qs})
    odd = [q for q in qs if q["n"] % 2 == 0]  # the first, third, ... question of each collection
    even = [q for q in qs if q["n"] % 2 == 1]

    def xy(part):
        xs, ys, ws = [], [], []
        per = collections.Counter(q["collection"] for q in part for _ in q["hits"])
        for q in part:
            xs.extend(evidence(q))
            for h in q["hits"]:
                ys.append(h["relevant"])
                ws.append(1.0 / per[q["collection"]])
        return np.array(xs), np.array(ys), np.array(ws)

    x, y, w = xy(odd)
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, y, sample_weight=w * len(w))
    from semfs.core.query import calibration

    if args.write:
        print(f"INTERCEPT = {model.intercept_[0]:.4f}")
        print(f"WEIGHTS = ({', '.join(f'{c:.4f}' for c in model.coef_[0])})")
    fitted = (float(model.intercept_[0]), tuple(float(c) for c in model.coef_[0]))
    served = (calibration.INTERCEPT, calibration.WEIGHTS)

    def probs(q, coef):
        return [calibration.probability(x, coef) for x in evidence(q)]

    print(f"fitted on {len(odd)} odd questions: intercept {fitted[0]:.3f}, weights {[round(c, 3) for c in fitted[1]]}")
    print(f"served (calibration.py): intercept {served[0]:.3f}, weights {[round(c, 3) for c in served[1]]}\n")
    for label, coef in (("served", served),):
        print(f"### calibration of the served coefficients ({label}), held-out (even) questions\n")
        print("| collection | hits | relevant | log-loss | Brier | " + " | ".join(
            f"p {a:.1f}-{a + 0.2:.1f}" for a in (0.0, 0.2, 0.4, 0.6, 0.8)) + " |")  # fmt: skip
        print("|---|---:|---:|---:|---:|" + "---:|" * 5)
        for c in [*colls, "all"]:
            part = [q for q in even if c in ("all", q["collection"])]
            ps = [p for q in part for p in probs(q, coef)]
            ys = [h["relevant"] for q in part for h in q["hits"]]
            ll = -sum(math.log(p if yv else 1 - p) for p, yv in zip(ps, ys)) / len(ps)
            brier = sum((p - yv) ** 2 for p, yv in zip(ps, ys)) / len(ps)
            cells = []
            for a in (0.0, 0.2, 0.4, 0.6, 0.8):
                inbin = [yv for p, yv in zip(ps, ys) if a <= p < a + 0.2 or (a == 0.8 and p == 1.0)]
                cells.append(f"{sum(inbin) / len(inbin):.2f} ({len(inbin)})" if inbin else "-")
            print(f"| {c} | {len(ps)} | {sum(ys)} | {ll:.3f} | {brier:.3f} | " + " | ".join(cells) + " |")
    # the threshold of best mean F1 over the collections, on the odd questions (by p alone)
    grid = [round(0.05 * i, 2) for i in range(1, 19)]

    def mean_f1(part, **params):
        return sum(
            set_quality([cut_off(q, **params) for q in pq], pq)["F1"]
            for pq in ([q for q in part if q["collection"] == c] for c in colls)
        ) / len(colls)

    best_t = max(grid, key=lambda t: mean_f1(odd, min_p=t, min_words=math.inf))
    if args.grid:
        print("\n| listed set | mean F1 over the collections, odd | even |\n|---|---:|---:|")
        print(f"| before: relative cut-off | {mean_f1(odd, coef=False):.3f} | {mean_f1(even, coef=False):.3f} |")
        for mp in (0.05, 0.1, 0.15, 0.2, 0.3):
            for mw in (0.3, 0.4, 0.5, math.inf):
                kw = dict(min_p=mp, min_words=mw)
                print(f"| p >= {mp} or words >= {mw} | {mean_f1(odd, **kw):.3f} | {mean_f1(even, **kw):.3f} |")
    print(f"\n### the listed set, before and after (p alone is best on the odd questions at t = {best_t})\n")
    rules = (
        ("before: relative cut-off (010c23d)", dict(coef=False)),
        (f"p >= {best_t} alone", dict(min_p=best_t, min_words=math.inf)),
        ("served (cutoff.Cutoff())", {}),
    )
    print("| collection | questions | listed set | P | R | F1 | listed (mean) | empty folders |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for c in [*colls, "all"]:
        for half, part in (("odd", odd), ("even", even)):
            pq = [q for q in part if c in ("all", q["collection"])]
            for label, params in rules:
                m = set_quality([cut_off(q, **params) for q in pq], pq)
                print(f"| {c} | {half} ({len(pq)}) | {label} | {m['P']:.3f} | {m['R']:.3f} | {m['F1']:.3f} "
                      f"| {m['listed']:.1f} | {m['empty']:.0f} |")  # fmt: skip
    if any(c.startswith("changelogs") for c in colls):
        keywords(work, Path(args.data))


def keywords(work: Path, cranfield: Path) -> None:
    """An agent's keyword guesses: two words of each distinct changelog answer line, as the agent
    of the issue grepped ("HUP avahi"); is the answer listed, and how many files, against grep -il?"""
    import re

    import eval_sets

    from semfs.core.index.service import Index
    from semfs.core.query import calibration
    from semfs.core.query.cutoff import Cutoff
    from semfs.core.query.pipeline import answer
    from semfs.models.embedder import query_embedder

    import bench_retrieval as br

    ((_, backing, qs),) = br._collections(["changelogs"], work, cranfield)
    home = work / "changelogs" / "home"
    os.environ["SEMFS_HOME"] = str(home)
    idx = Index(str(backing), query_embedder(home))
    key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, eval_sets).items()}
    texts = {p: (backing / p).read_text(errors="replace").lower() for p in key}
    rows: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    seen: set[str] = set()
    for q, (_, _, gains) in zip(eval_sets.questions("changelogs"), qs):
        if q["answer"] in seen:
            continue
        seen.add(q["answer"])
        # the two longest, the first written first among equals (a set's order changes with each run)
        words = sorted(dict.fromkeys(re.findall(r"[A-Za-z][A-Za-z0-9_+.-]{3,}", q["answer"])), key=len, reverse=True)[
            :2
        ]
        answers = {key.get(p, p) for p, g in gains.items() if g > 0}
        grep = {key.get(p, p) for p, t in texts.items() if all(w.lower() in t for w in words)}
        rows["grep -il, all the words"] = [
            a + b for a, b in zip(rows["grep -il, all the words"], (bool(grep & answers), len(grep), not grep))
        ]
        for label, cut in (
            ("before: relative cut-off", None),
            ("served", Cutoff()),
            ("words >= 0.5", Cutoff(min_words=0.5)),
            ("p alone", Cutoff(min_words=math.inf)),
        ):
            if cut is None:  # no probabilities: the hits are cut as before calibration.py
                calibration.CALIBRATED, served = "(none)", calibration.CALIBRATED
                got = answer(idx.searcher, " ".join(words), LISTED, backing=idx.backing, cut=Cutoff()).hits
                calibration.CALIBRATED = served
            else:
                got = answer(idx.searcher, " ".join(words), LISTED, backing=idx.backing, cut=cut).hits
            hit = any(key.get(p, p) in answers for h in got for p in (h.path, *h.also, *h.alike))
            rows[label] = [a + b for a, b in zip(rows[label], (hit, len(got), not got))]
    n = len(seen)
    print(f"\n### {n} keyword prompts (two words of each changelog answer)\n")
    print("| listed set | answer listed | files listed (mean) | empty |\n|---|---:|---:|---:|")
    for label, (hit, listed, empty) in rows.items():
        print(f"| {label} | {hit}/{n} | {listed / n:.1f} | {empty} |")  # fmt: skip


if __name__ == "__main__":
    main()
