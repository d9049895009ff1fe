#!/usr/bin/env python3
"""Write latency through the mount with indexing on versus off.

Two semfs mounts of two empty folders: one with ``--no-index``, one that
indexes with all-MiniLM-L6-v2 (its model loaded before timing). Each round
writes the 1400 Cranfield documents as files through one mount, then
through the other (the order alternates between rounds), timing every
open-write-close; the indexing mount embeds in the background while its
writes are timed. Then a 100 MB file is written through each.

    .venv/bin/python scripts/bench_write_latency.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def wait(cond, timeout=300):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("bench_write_latency: timed out")
        time.sleep(0.1)


def write_all(mnt: Path, texts: list[tuple[str, bytes]]) -> list[float]:
    out = []
    for name, data in texts:
        t0 = time.perf_counter()
        with open(mnt / name, "wb") as f:
            f.write(data)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def write_big(mnt: Path, mb: int) -> float:
    buf = os.urandom(1 << 20)
    t0 = time.perf_counter()
    with open(mnt / "big.bin", "wb") as f:
        for _ in range(mb):
            f.write(buf)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=100)
    args = ap.parse_args()
    import bench_retrieval as br

    docs, _, _ = br.load(Path(args.data))
    texts = [(f"{n:04d}.txt", f"{t}\n\n{b}\n".encode()) for n, (t, b) in sorted(docs.items())]
    top = Path(tempfile.mkdtemp(prefix="semfs-bench-write-"))
    env = dict(os.environ, SEMFS_HOME=str(top / "home"))
    env.pop("SEMFS_EMBEDDER", None)
    semfs = [sys.executable, "-m", "semfs"]
    mounts = {}
    for name, extra in (("indexing off", ["--no-index"]), ("indexing on", [])):
        b, m = top / f"{name.split()[1]}-b", top / f"{name.split()[1]}-m"
        b.mkdir()
        m.mkdir()
        subprocess.run([*semfs, "mount", *extra, str(b), str(m)], check=True, env=env, stdout=subprocess.DEVNULL)
        mounts[name] = (b, m)
    try:
        # load the model before timing: index one file and wait for it
        b, m = mounts["indexing on"]
        (m / "warmup.txt").write_text("warm up the embedder")
        wait(
            lambda: (
                b"warmup.txt"
                in subprocess.run([*semfs, "search", str(b), "warm up", "--json"], capture_output=True, env=env).stdout
            )
        )
        lat: dict[str, list[float]] = {k: [] for k in mounts}
        big: dict[str, list[float]] = {k: [] for k in mounts}
        order = list(mounts)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                b, m = mounts[name]
                d = m / f"round{r}"
                d.mkdir()
                lat[name] += write_all(d, [(n, t) for n, t in texts])
                big[name].append(write_big(d, args.big_mb))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for b, m in mounts.values():
            subprocess.run([*semfs, "unmount", str(m)], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(top, ignore_errors=True)

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]

    print(f"{len(texts)} files x {args.rounds} rounds per mount; a {args.big_mb} MB file once per round\n")
    print("| mount | p50 ms/file | p95 ms/file | mean ms/file | 100 MB write s (median) |")
    print("|---|---:|---:|---:|---:|")
    for name in mounts:
        xs = lat[name]
        print(
            f"| {name} | {q(xs, 0.5):.2f} | {q(xs, 0.95):.2f} | {statistics.mean(xs):.2f} | "
            f"{statistics.median(big[name]):.2f} |"
        )
    on, off = lat["indexing on"], lat["indexing off"]
    print(
        f"\non/off: p50 {q(on, 0.5) / q(off, 0.5):.2f}x, p95 {q(on, 0.95) / q(off, 0.95):.2f}x, "
        f"mean {statistics.mean(on) / statistics.mean(off):.2f}x, "
        f"100 MB {statistics.median(big['indexing on']) / statistics.median(big['indexing off']):.2f}x"
    )


if __name__ == "__main__":
    main()
