#!/usr/bin/env python3
"""Filesystem benchmark: native folder vs a bindfs mirror vs a semfs mirror.

The same workload runs on each target in one process, interleaved round by
round so machine noise hits all three alike; each step reports the median
over the rounds, and ratios to native and to bindfs.

    .venv/bin/python scripts/bench_fs.py [--rounds 5] [--files 2000] [--big-mb 200]

Needs root or FUSE access, and bindfs (make bench-deps installs it).
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

CHUNK = 1 << 20


def step_create(d: Path, n: int) -> None:
    payload = os.urandom(1024)
    for i in range(n):
        with open(d / f"f{i:05d}.txt", "wb") as f:
            f.write(payload)


def step_ls(d: Path) -> None:
    subprocess.run(["ls", "-l", str(d)], stdout=subprocess.DEVNULL, check=True)


def step_read_all(d: Path, n: int) -> None:
    for i in range(n):
        with open(d / f"f{i:05d}.txt", "rb") as f:
            f.read()


def step_write_big(path: Path, mb: int) -> None:
    buf = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(buf)


def step_read_big(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(CHUNK):
            pass


def step_stat(path: Path, n: int) -> None:
    for _ in range(n):
        os.stat(path)


def step_rm(d: Path) -> None:
    subprocess.run(["rm", "-r", str(d)], check=True)


def run_round(root: Path, args) -> dict[str, float]:
    times = {}
    work = root / "work"
    work.mkdir()

    def timed(name, fn, *a):
        t0 = time.perf_counter()
        fn(*a)
        times[name] = time.perf_counter() - t0

    timed(f"create {args.files} x 1 KB", step_create, work, args.files)
    timed("ls -l", step_ls, work)
    timed(f"read {args.files} files", step_read_all, work, args.files)
    big = work / "big.bin"
    timed(f"write {args.big_mb} MB", step_write_big, big, args.big_mb)
    timed(f"read {args.big_mb} MB", step_read_big, big)
    timed(f"stat x {args.stats}", step_stat, work / "f00000.txt", args.stats)
    timed("rm -r", step_rm, work)
    return times


def wait_mounted(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(path):
        if time.monotonic() > deadline:
            sys.exit(f"bench_fs: {path} did not mount")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--stats", type=int, default=10_000)
    ap.add_argument("--dir", help="where to create the folders (default: a temp dir on /tmp's filesystem)")
    args = ap.parse_args()
    if shutil.which("bindfs") is None:
        sys.exit("bench_fs: bindfs is not installed (make bench-deps)")

    top = Path(tempfile.mkdtemp(prefix="semfs-bench-", dir=args.dir))
    native = top / "native"
    bind_b, bind_m = top / "bindfs-backing", top / "bindfs-mnt"
    sem_b, sem_m = top / "semfs-backing", top / "semfs-mnt"
    for p in (native, bind_b, bind_m, sem_b, sem_m):
        p.mkdir()
    env = dict(os.environ, SEMFS_HOME=str(top / "semfs-home"))
    semfs = [sys.executable, "-m", "semfs"]
    try:
        subprocess.run(["bindfs", str(bind_b), str(bind_m)], check=True)
        # the mirror alone: indexing and versioning have their own benchmarks
        # (bench_write_latency.py, bench_versions.py)
        subprocess.run(
            [*semfs, "mount", "--no-index", "--no-versions", "--llm", "off", str(sem_b), str(sem_m)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        wait_mounted(bind_m)
        wait_mounted(sem_m)
        targets = {"native": native, "bindfs": bind_m, "semfs": sem_m}
        results: dict[str, dict[str, list[float]]] = {t: {} for t in targets}
        for r in range(args.rounds):
            for name, root in targets.items():
                for step, secs in run_round(root, args).items():
                    results[name].setdefault(step, []).append(secs)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        subprocess.run(["fusermount3", "-u", str(bind_m)])
        subprocess.run([*semfs, "unmount", str(sem_m)], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(top, ignore_errors=True)

    med = {t: {s: statistics.median(v) for s, v in steps.items()} for t, steps in results.items()}
    print(f"median of {args.rounds} rounds, seconds; ratios are semfs/native and semfs/bindfs\n")
    print("| step | native | bindfs | semfs | semfs/native | semfs/bindfs | bindfs/native |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for step in med["native"]:
        n, b, s = med["native"][step], med["bindfs"][step], med["semfs"][step]
        print(f"| {step} | {n:.3f} | {b:.3f} | {s:.3f} | {s / n:.2f} | {s / b:.2f} | {b / n:.2f} |")


if __name__ == "__main__":
    main()
