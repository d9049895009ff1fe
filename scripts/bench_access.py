#!/usr/bin/env python3
"""The cost of per-caller access checks: ``ls`` of query folders and ``cat`` of summaries.

Two mounts of copies of the demo folder (MiniLM, LLM off, so that a new
folder costs a search and not a generation), side by side in one run:

- without ``--allow-other``: the checks are off (only the owner can enter);
  timed as root;
- with ``--allow-other``: timed as root (who sees everything: no checks)
  and as user nobody (every entry checked under nobody's credentials).

Each caller lists every prompt of tests/data/prompts.json as a new folder
and then again (served from the cache), and reads the summary of every
demo file (the first-sentences fallback, as the LLM is off). Timed inside
one probe process per caller (the system python, which nobody can run).

    .venv/bin/python scripts/bench_access.py
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

PROBE = r"""
import json, os, sys, time
mnt, prompts, files = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
out = {"new": [], "repeated": [], "summary": []}
for p in prompts:
    d = os.path.join(mnt, "query", p)
    for phase in ("new", "repeated"):
        t0 = time.perf_counter()
        os.listdir(d)
        out[phase].append((time.perf_counter() - t0) * 1e3)
for f in files:
    t0 = time.perf_counter()
    with open(os.path.join(mnt, "summary", f), "rb") as fh:
        fh.read()
    out["summary"].append((time.perf_counter() - t0) * 1e3)
print(json.dumps(out))
"""


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> None:
    prompts = [c["prompt"] for c in json.loads((ROOT / "tests" / "data" / "prompts.json").read_text())["prompts"]]
    files = sorted(str(p.relative_to(ROOT / "demo")) for p in (ROOT / "demo").rglob("*") if p.is_file())
    python = shutil.which("python3", path="/usr/bin:/bin")
    top = Path(tempfile.mkdtemp(prefix="semfs-bench-access-"))
    os.chmod(top, 0o755)
    env = dict(os.environ, SEMFS_HOME=str(top / "home"), SEMFS_EMBEDDER="minilm", SEMFS_LLM="off")
    semfs = [sys.executable, "-m", "semfs"]
    mounts = {}
    for name, extra in (("without --allow-other", []), ("with --allow-other", ["--allow-other"])):
        b, m = top / f"demo{len(mounts)}", top / f"mnt{len(mounts)}"
        shutil.copytree(ROOT / "demo", b)
        os.chmod(b, 0o755)
        m.mkdir()
        subprocess.run([*semfs, "mount", *extra, str(b), str(m)], check=True, env=env, stdout=subprocess.DEVNULL)
        mounts[name] = m
    results = {}
    try:
        n = len(files)
        for name, m in mounts.items():
            deadline = time.monotonic() + 300
            while True:
                st = subprocess.run([*semfs, "status", str(m)], capture_output=True, text=True, env=env).stdout
                if f"{n} files indexed, 0 queued" in st and "meaning:   " in st and "embedder:  ready" in st:
                    done = [ln.split(":", 1)[1].split() for ln in st.splitlines() if ln.strip().startswith("meaning:")]
                    if done and done[0][0] == done[0][2]:
                        break
                if time.monotonic() > deadline:
                    sys.exit(f"bench_access: {name} not ready:\n{st}")
                time.sleep(0.5)
            os.listdir(m / "query" / "warm up the search")
        callers = [
            ("without --allow-other", "root", []),
            ("with --allow-other", "root", []),
            ("with --allow-other", "nobody", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]),
        ]
        for i, (name, who, prefix) in enumerate(callers):
            tagged = [f"{p} ({i})" for p in prompts]  # every caller's folders are new to the mount
            res = subprocess.run(
                [*prefix, python, "-c", PROBE, str(mounts[name]), json.dumps(tagged), json.dumps(files)],
                capture_output=True,
                text=True,
                cwd="/",
                check=True,
            )
            results[(name, who)] = json.loads(res.stdout)
    finally:
        for m in mounts.values():
            subprocess.run([*semfs, "unmount", str(m)], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(top, ignore_errors=True)
    print(f"{len(prompts)} prompts, {len(files)} summaries, demo folder; ms, p50 (p95)\n")
    print("| mount | caller | ls new folder | ls repeated | cat summary |")
    print("|---|---|---:|---:|---:|")
    for (name, who), r in results.items():
        cells = [f"{q(r[k], 0.5):.2f} ({q(r[k], 0.95):.2f})" for k in ("new", "repeated", "summary")]
        print(f"| {name} | {who} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
