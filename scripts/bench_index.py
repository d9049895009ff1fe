#!/usr/bin/env python3
"""Indexing throughput: the full semfs pipeline versus model.encode alone.

Both run in this process, one after the other, on the same text: the
Cranfield documents (1400 files, one per document) written into a fresh
backing folder, or any folder given with --corpus.

- pipeline: ``Indexer.run_once`` from an empty state dir (walk, read,
  sha256, extract, chunk, embed, SQLite writes with BM25 segments, FAISS add and save);
- bare encoder: ``model.encode`` on exactly the chunk texts the pipeline
  produced, with the same batch size and thread count.

    .venv/bin/python scripts/bench_index.py [--corpus DIR] [--threads N] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="a folder to index (default: Cranfield written as files)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of each; the best is kept")
    args = ap.parse_args()

    import torch

    from semfs.core.index.indexer import Indexer
    from semfs.models.embedder import MiniLMEmbedder
    from semfs.stores import metadata as md

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="semfs-bench-index-"))
    if args.corpus:
        backing = Path(args.corpus).resolve()
    else:
        import bench_retrieval as br

        docs, _, _ = br.load(Path(args.data))
        backing = work / "backing"
        for n, (title, body) in docs.items():
            p = backing / br.doc_name(n)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{title}\n\n{body}\n")
    total_bytes = sum(f.stat().st_size for f in backing.rglob("*") if f.is_file())
    emb = MiniLMEmbedder(threads=args.threads, backend=os.environ.get("SEMFS_EMBED_BACKEND", "fp32"))
    emb.embed(["warm up the model"])  # load outside the timings

    pipe_times, bare_times, texts = [], [], []
    for r in range(args.repeat):
        state = work / f"state{r}"
        t0 = time.perf_counter()
        prog = Indexer(backing, state, emb).run_once()
        pipe_times.append(time.perf_counter() - t0)
        db = md.open_db(state)
        texts = [row[0] for row in db.execute("SELECT text FROM chunks WHERE has_vector = 1 ORDER BY id")]
        db.close()
        assert len(texts) == prog.chunks, (len(texts), prog.chunks)
        t0 = time.perf_counter()
        emb.model.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True, show_progress_bar=False)
        bare_times.append(time.perf_counter() - t0)
        shutil.rmtree(state)
    pipe, bare = min(pipe_times), min(bare_times)
    # each precision on the same chunks, alternating, best of --repeat; useful GFLOP/s counts the
    # tokens the model reads (about 21 MFLOP per token for MiniLM-L6: 6 layers, hidden 384, FFN 1536)
    tokens = sum(min(len(emb.model.tokenizer(t)["input_ids"]), emb.max_seq_length) for t in texts)
    from semfs.models.onnx_minilm import OnnxMiniLM

    graph = work / "onnx"
    models = {b: MiniLMEmbedder(threads=args.threads, backend=b) for b in ("fp32", "bf16")}
    models["fp32"].onnx_cache = graph  # exported on load, as the mount's worker does
    models["fp32"].embed(["load"])
    models["onnx fp32 (onnxruntime, as `semfs search` uses it)"] = OnnxMiniLM(graph, threads=args.threads)
    per_backend: dict[str, list[float]] = {b: [] for b in models}
    vecs = {}
    for m in models.values():
        m.embed(texts[:8])
    for _ in range(args.repeat):
        for b, m in models.items():
            t0 = time.perf_counter()
            vecs[b] = m.embed(texts)
            per_backend[b].append(time.perf_counter() - t0)
    cos = {b: float(np.min(np.sum(vecs["fp32"] * v, axis=1))) for b, v in vecs.items()}
    mb = total_bytes / 1e6
    n = len(texts)
    words = sum(len(t.split()) for t in texts) / max(n, 1)
    print(f"corpus: {prog.done} files, {mb:.2f} MB, {n} chunks (mean {words:.0f} words); torch threads: {args.threads}")
    print("| run | seconds | MB/min | chunks/s |")
    print("|---|---:|---:|---:|")
    print(f"| bare model.encode | {bare:.1f} | {mb / bare * 60:.2f} | {n / bare:.1f} |")
    print(f"| semfs pipeline | {pipe:.1f} | {mb / pipe * 60:.2f} | {n / pipe:.1f} |")
    print(f"\npipeline / bare encoder throughput: {bare / pipe:.2f}x (best of {args.repeat} runs each)")
    print(f"\n{tokens} tokens in {n} chunks; backend: {emb.backend} (as chosen for the pipeline)")
    print("| embedder precision | chunks/s | useful GFLOP/s | min cosine to fp32 |")
    print("|---|---:|---:|---:|")
    for b, times in per_backend.items():
        t = min(times)
        print(f"| {b} | {n / t:.1f} | {tokens * 21e6 / t / 1e9:.0f} | {cos[b]:.5f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
