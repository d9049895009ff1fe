#!/usr/bin/env python3
"""Does similar/ earn its place? (issue 24, item 6): following it against reading on down a query's list.

For every question of the evaluation sets (``bench_retrieval.py``'s
collections), the query service answers as a mount does
(``QueryService``: ``query/<prompt>/``'s listed files, ``.more/``'s whole
ranking of 70, ``similar/<file>/``'s files with its cut-off), and two
readers look for an answer, opening one file at a time:

- **down the list**: the prompt's ranking in order (``query/`` then
  ``.more/``); opens = the rank of the first relevant text;
- **similar of the first**: opens the first file; if it is not an answer,
  opens what ``similar/<first>/`` lists, in order; then goes on down the
  ranking (skipping what it opened).

A miss in 50 opens counts 51. Files of identical or near-identical text
are one answer, as search folds them.

And where a question has several answers (Cranfield's, mostly): once the
first answer is found, are the files ``similar/<answer>/`` lists more
often answers too than the next five of the ranking?

    .venv/bin/python scripts/bench_similar.py [--work DIR] [--collections ...]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

CAP = 50


def first_answer(order: list[str], relevant) -> int:
    return next((i + 1 for i, p in enumerate(order[:CAP]) if relevant(p)), CAP + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--collections", default="cranfield,changelogs,manpages")
    ap.add_argument("--work", help="working folder (default: a new temp dir); reused if it holds the indexes")
    args = ap.parse_args()
    import eval_sets

    from semfs.core.index.service import Index
    from semfs.core.query.queries import QueryService
    from semfs.models.embedder import query_embedder

    import bench_retrieval as br

    work = Path(args.work or tempfile.mkdtemp(prefix="semfs-similar-"))
    rows = []
    for name, backing, qs in br._collections(args.collections.split(","), work, Path(args.data)):
        home = work / name / "home"
        br._index(backing, home)
        os.environ["SEMFS_HOME"] = str(home)
        embedder = query_embedder(home)
        idx = Index(str(backing), embedder)
        svc = QueryService(idx.backing, idx.state_dir, embedder, vectors=lambda: idx.vectors)
        key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, eval_sets).items()}
        by_set: dict[str, list[dict]] = collections.defaultdict(list)
        for set_name, q, gains in qs:
            answers = {key.get(p, p) for p, g in gains.items() if g > 0}

            def relevant(p: str) -> bool:
                return key.get(p, p) in answers

            ranking = [m.path for m in svc.ranking(q)]
            down = first_answer(ranking, relevant)
            via = [*ranking[:1]]
            if ranking and not relevant(ranking[0]):
                via += [m.path for m in svc.similar(ranking[0])[: svc.k] if m.path not in via]
            via += [p for p in ranking if p not in via]
            similar_first = first_answer(via, relevant)
            row = {
                "down": down,
                "via": similar_first,
                "similar_len": len(svc.similar(ranking[0])[: svc.k]) if ranking else 0,
            }
            if len(answers) >= 2 and down <= CAP:
                found = ranking[down - 1]
                sim = [m.path for m in svc.similar(found)][:5]
                nxt = ranking[down : down + 5]
                row["more_similar"] = (sum(map(relevant, sim)), len(sim))
                row["more_next"] = (sum(map(relevant, nxt)), len(nxt))
            by_set[set_name].append(row)
        for set_name, rs in by_set.items():
            rows.append((name, set_name, rs))
        svc.close()
    print("| collection | set | questions | opens, down the list (mean) | opens, similar of the first (mean) "
          "| sooner | later | same | similar/ of the first: files listed (mean) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, set_name, rs in rows:
        n = len(rs)
        sooner = sum(r["via"] < r["down"] for r in rs)
        later = sum(r["via"] > r["down"] for r in rs)
        down, via = (sum(r[k] for r in rs) / n for k in ("down", "via"))
        listed = sum(r["similar_len"] for r in rs) / n
        print(f"| {name} | {set_name} | {n} | {down:.1f} | {via:.1f} | {sooner} | {later} | {n - sooner - later} "
              f"| {listed:.1f} |")  # fmt: skip
    print("\n| collection | set | questions with 2+ answers, one found | similar/ of the answer: answers / listed "
          "| the next 5 of the ranking: answers / listed |")  # fmt: skip
    print("|---|---|---:|---:|---:|")
    for name, set_name, rs in rows:
        more = [r for r in rs if "more_similar" in r]
        if not more:
            continue
        sa, sl = (sum(r["more_similar"][i] for r in more) for i in (0, 1))
        na, nl = (sum(r["more_next"][i] for r in more) for i in (0, 1))
        print(f"| {name} | {set_name} | {len(more)} | {sa}/{sl} ({sa / max(sl, 1):.2f}) "
              f"| {na}/{nl} ({na / max(nl, 1):.2f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
