"""What chunk size and overlap cost in embedding time and give in search quality.

For each (max words, overlap) setting, in one process and one run: index the 1400
Cranfield files from an empty state dir with the real embedder (the backend this CPU
chose), then run the 225 queries hybrid and score nDCG@10. Tokens embedded are counted
with MiniLM's tokenizer (the work the model does); the time is ``Indexer.run_once``'s.

    python scripts/bench_chunking.py --settings 160:30 160:15 160:0 200:20 --rounds 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_retrieval import doc_name, evaluate, load, write_docs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--settings", nargs="+", default=["160:30", "160:15", "160:0"])
    ap.add_argument("--rounds", type=int, default=1, help="alternating index runs per setting; the best time is kept")
    args = ap.parse_args()

    from semfs.core.index import chunking
    from semfs.core.index.indexer import Indexer
    from semfs.core.index.service import Index
    from semfs.core.state import semfs_home
    from semfs.models.embedder import make_embedder
    from semfs.stores import metadata as md

    docs, queries, qrels = load(Path(args.data))
    work = Path(tempfile.mkdtemp(prefix="semfs-chunking-"))
    backing = write_docs(work / "backing", docs)
    emb = make_embedder("minilm", backend="auto", backend_cache=semfs_home() / "backend.json")
    emb.embed(["warm up"])
    tok = emb.model.tokenizer  # type: ignore[attr-defined]
    settings = [tuple(int(x) for x in s.split(":")) for s in args.settings]
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    stats = {}
    for r in range(args.rounds):
        for s in settings:
            chunking.chunk_text.__defaults__ = s
            state = work / f"state-{s[0]}-{s[1]}-{r}"
            t0 = time.perf_counter()
            Indexer(backing, state, emb).run_once()
            times[s].append(time.perf_counter() - t0)
            if r == 0:
                db = md.open_db(state)
                texts = [row[0] for row in db.execute("SELECT text FROM chunks")]
                db.close()
                lengths = [len(tok(t)["input_ids"]) for t in texts]
                tokens = sum(min(n, 256) for n in lengths)
                cut = sum(n > 256 for n in lengths)  # the model reads only the first 256 tokens
                idx = Index(str(backing), emb, str(state))
                run = {}
                for i, q in enumerate(queries):
                    hits = idx.search(q, k=10)
                    run[i + 1] = [int(Path(h.path).stem) for h in hits]
                stats[s] = (len(texts), tokens, cut, evaluate(run, qrels)["nDCG@10"])
    print(f"backend: {getattr(emb, 'backend', '?')}; {len(docs)} files ({doc_name(1)} ...)")
    head = "| max words : overlap | chunks | tokens embedded | chunks over 256 tokens | index s (best) |"
    print(head + " nDCG@10 hybrid |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in settings:
        n, tokens, cut, ndcg = stats[s]
        print(f"| {s[0]}:{s[1]} | {n} | {tokens} | {cut} | {min(times[s]):.1f} | {ndcg:.4f} |")


if __name__ == "__main__":
    main()
