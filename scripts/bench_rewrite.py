#!/usr/bin/env python3
"""The local LLM rewriting a question (issue 24, item 2): its words added to the prompt, measured.

For each question of a collection of ``bench_retrieval.py`` (indexed in
``--work`` as that script leaves it), gemma-3-270m reads the question two
ways: the mount's keyword reading (``prompts.parse_llm``, a JSON list), and
a few-shot rewrite into the words a changelog or manual would use (its
examples are about packages none of the questions ask of). The question is
then searched as asked, with each reading's words added, and with the
rewrite alone: nDCG@10 and top-5 by distinct texts, and the model's time.

    .venv/bin/python scripts/bench_rewrite.py --work /tmp/semfs-ret [--collection changelogs]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

REWRITE = """Rewrite each question with the technical words a changelog or manual would use.

Question: the program that shows running processes used too much memory on machines with many cores
Technical words: top procps memory leak CPU count
Question: copying files to a remote machine failed when the path had spaces
Technical words: scp rsync path quoting whitespace
Question: a web page fetcher did not check the identity of the server it talked to
Technical words: wget curl TLS certificate verification
Question: {q}
Technical words:"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--collection", default="changelogs")
    ap.add_argument("--work", required=True, help="bench_retrieval.py's work dir (indexed if it is not)")
    args = ap.parse_args()
    import eval_sets

    from semfs.core.index.service import Index
    from semfs.core.query.prompts import parse_llm
    from semfs.models.embedder import query_embedder
    from semfs.models.llm import LocalLLM, ensure_default_model

    import bench_retrieval as br

    work = Path(args.work)
    ((name, backing, qs),) = br._collections([args.collection], work, Path(args.data))
    home = work / name / "home"
    br._index(backing, home)
    os.environ["SEMFS_HOME"] = str(home)
    idx = Index(str(backing), query_embedder(home))
    key = {p.relative_to(backing).as_posix(): h for p, h in br._keys(backing, eval_sets).items()}
    llm = LocalLLM(ensure_default_model(Path(tempfile.mkdtemp(prefix="semfs-models-"))))
    llm.preload()
    took: dict[str, list[float]] = collections.defaultdict(list)
    got: dict[tuple, list[dict]] = collections.defaultdict(list)
    for set_name, q, gains in qs:
        t0 = time.monotonic()
        try:
            keywords = " ".join(parse_llm(q, llm, timeout=30).keywords)
        except Exception:  # no valid answer: as the mount would, the question alone
            keywords = ""
        took["keywords (parse_llm)"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        rewrite = llm.complete_text(REWRITE.format(q=q), timeout=30, max_tokens=24, stop=["\n"]).strip()
        took["rewrite"].append(time.monotonic() - t0)
        readings = {"as asked": q, "+ keywords (parse_llm)": f"{q} {keywords}", "+ rewrite": f"{q} {rewrite}",
                    "rewrite alone": rewrite or q}  # fmt: skip
        for label, text in readings.items():
            for method in ("bm25", "dense", "hybrid"):
                got[(set_name, label, method)].append(br.measure(br.run_method(idx.searcher, method, text), gains, key))
    print("| set | prompt | method | nDCG@10 | top-5 |\n|---|---|---|---:|---:|")
    for (set_name, label, method), ms in got.items():
        m = br._mean(ms)
        print(f"| {set_name} | {label} | {method} | {m['nDCG@10']:.3f} | {m['top-5']:.2f} |")
    print(
        "\nmodel time per question, median: " + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in took.items())
    )


if __name__ == "__main__":
    main()
