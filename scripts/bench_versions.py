#!/usr/bin/env python3
"""Versioning overhead: the bench_fs workload on semfs with versions on and off.

Two fresh mounts per round (``--no-index``, with and without
``--no-versions``), alternating, running the same steps as
scripts/bench_fs.py; medians over the rounds.

    .venv/bin/python scripts/bench_versions.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fs  # noqa: E402


def one_round(extra: list[str], args) -> dict[str, float]:
    top = Path(tempfile.mkdtemp(prefix="semfs-bench-versions-"))
    b, m = top / "b", top / "m"
    b.mkdir()
    m.mkdir()
    env = dict(os.environ, SEMFS_HOME=str(top / "home"), SEMFS_LLM="off")
    p = subprocess.Popen(
        [sys.executable, "-m", "semfs", "mount", "-f", "--no-index", *extra, str(b), str(m)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    bench_fs.wait_mounted(m)
    try:
        return bench_fs.run_round(m, args)
    finally:
        subprocess.run(["fusermount3", "-u", str(m)])
        p.wait()
        shutil.rmtree(top, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--stats", type=int, default=10_000)
    args = ap.parse_args()
    runs = {"versions off": ["--no-versions"], "versions on": []}
    res: dict[str, dict[str, list[float]]] = {k: {} for k in runs}
    for r in range(args.rounds):
        for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
            for step, secs in one_round(runs[name], args).items():
                res[name].setdefault(step, []).append(secs)
    print(f"median of {args.rounds} rounds, seconds\n")
    print("| step | versions off | versions on | on/off |")
    print("|---|---:|---:|---:|")
    for step in res["versions off"]:
        off, on = statistics.median(res["versions off"][step]), statistics.median(res["versions on"][step])
        print(f"| {step} | {off:.3f} | {on:.3f} | {on / off:.2f} |")


if __name__ == "__main__":
    main()
