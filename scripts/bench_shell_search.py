"""How long `semfs search BACKING PROMPT` takes from the shell, cold process, hybrid mode.

On the 1400 Cranfield files: this checkout (the prompt embedded by MiniLM's ONNX graph)
against an older commit run from a git worktree (torch), alternating in one run, on the
same index and the same semfs home. Also nDCG@10 of the 225 Cranfield queries, hybrid,
through each, to show the graph's query vectors rank as torch's do.

"Cold" means a new Python process each time; the OS page cache is warm, as it is for a
person who searches twice.

    python scripts/bench_shell_search.py --before 9bafab6 --rounds 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_retrieval import evaluate, load, run_queries, write_docs

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "heat transfer in hypersonic flow",
    "boundary layer transition on a flat plate",
    "how do shock waves interact with a laminar boundary layer",
    "buckling of thin cylindrical shells under pressure",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--before", default="9bafab6", help="the commit to compare with (run from a git worktree)")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    docs, queries, qrels = load(Path(args.data))
    work = Path(tempfile.mkdtemp(prefix="semfs-shell-search-"))
    backing = write_docs(work / "backing", docs)
    env = dict(os.environ, SEMFS_HOME=str(work / "home"))
    env.pop("SEMFS_EMBEDDER", None)
    worktree = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT, check=True)
    try:
        sides = {
            "after (ONNX graph)": ([sys.executable, "-m", "semfs"], ROOT),
            f"before ({args.before}, torch)": ([sys.executable, "-m", "semfs"], worktree),
        }
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "semfs", "index", str(backing)], env=env, check=True, cwd=ROOT)
        print(f"indexed in {time.monotonic() - t0:.0f} s (this exports the graph too)", file=sys.stderr)
        times: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(args.rounds):
            prompt = PROMPTS[r % len(PROMPTS)]
            for name, (cmd, cwd) in sides.items():
                t = time.monotonic()
                out = subprocess.run(
                    [*cmd, "search", str(backing), prompt, "-k", "10"],
                    env=env,
                    cwd=cwd,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                times[name].append(time.monotonic() - t)
                assert out.stdout.strip(), out.stderr
        print(f"\n`semfs search BACKING PROMPT` (hybrid, -k 10), {args.rounds} cold runs each, alternating:\n")
        print("| | median s | min s | max s | nDCG@10 (225 queries, hybrid) |")
        print("|---|---:|---:|---:|---:|")
        for name, (cmd, cwd) in sides.items():
            here = dict(env, PYTHONPATH=str(cwd))
            run = run_queries(cmd, backing, queries, "hybrid", 10, here)
            ts = times[name]
            ndcg = evaluate(run, qrels)["nDCG@10"]
            print(f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} | {max(ts):.2f} | {ndcg:.4f} |")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
