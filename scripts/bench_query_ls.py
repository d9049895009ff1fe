#!/usr/bin/env python3
"""Latency of ``ls`` on query folders: new prompts with and without the LLM, and repeats.

Two mounts of copies of the demo folder, both indexing with MiniLM: one
reading prompts by rules only (``--llm off``), one with gemma-3-270m (its
model loaded before timing). Each prompt of tests/data/prompts.json is
listed once as a new folder and then again (served from the cache).

    .venv/bin/python scripts/bench_query_ls.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> None:
    prompts = [c["prompt"] for c in json.loads((ROOT / "tests" / "data" / "prompts.json").read_text())["prompts"]]
    top = Path(tempfile.mkdtemp(prefix="semfs-bench-ls-"))
    env = dict(os.environ, SEMFS_HOME=str(top / "home"))
    env.pop("SEMFS_EMBEDDER", None)
    env.pop("SEMFS_LLM", None)
    semfs = [sys.executable, "-m", "semfs"]
    mounts = {}
    for name, llm in (("rules only", "off"), ("with LLM", "default")):
        b, m = top / f"{llm}-demo", top / f"{llm}-mnt"
        shutil.copytree(ROOT / "demo", b)
        m.mkdir()
        subprocess.run([*semfs, "mount", "--llm", llm, str(b), str(m)], check=True, env=env, stdout=subprocess.DEVNULL)
        mounts[name] = (b, m)
    try:
        n_files = sum(len(f) for _, _, f in os.walk(ROOT / "demo"))
        for name, (b, m) in mounts.items():
            deadline = time.monotonic() + 300
            while True:
                st = subprocess.run([*semfs, "status", str(m)], capture_output=True, text=True, env=env).stdout
                ready = f"{n_files} files indexed, 0 queued" in st and (
                    "llm:       ready" in st or name == "rules only"
                )
                if ready:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"bench_query_ls: {name} not ready:\n{st}")
                time.sleep(0.5)
            os.listdir(m / "query" / "warm up the search")  # first search loads nothing new after this
        lat: dict[str, dict[str, list[float]]] = {n: {"new": [], "cached": []} for n in mounts}
        for p in prompts:
            for name, (b, m) in mounts.items():
                d = m / "query" / p
                for phase in ("new", "cached"):
                    t0 = time.perf_counter()
                    os.listdir(d)
                    lat[name][phase].append((time.perf_counter() - t0) * 1e3)
    finally:
        for b, m in mounts.values():
            subprocess.run([*semfs, "unmount", str(m)], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(prompts)} prompts, demo folder ({n_files} files), ms per ls\n")
    print("| mount | new folder p50 | new p95 | repeated ls p50 | repeated p95 |")
    print("|---|---:|---:|---:|---:|")
    for name in mounts:
        new, cached = lat[name]["new"], lat[name]["cached"]
        print(f"| {name} | {q(new, 0.5):.1f} | {q(new, 0.95):.1f} | {q(cached, 0.5):.2f} | {q(cached, 0.95):.2f} |")


if __name__ == "__main__":
    main()
