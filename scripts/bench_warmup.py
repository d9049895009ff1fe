"""How soon a mount of the demo lists hybrid results: a fresh index, then a remount.

Usage: ``.venv/bin/python scripts/bench_warmup.py --rounds 3``. Each round copies demo/ to a
new folder (so a new state dir), starts ``semfs mount`` (real MiniLM, ``--no-llm``), and reads
``query/<prompt>/.results.json`` every 50 ms from the moment the command was started: the
time of the first answer, whether it was hybrid, and the time the listing became hybrid with
no note (the names it keeps). Then it unmounts and mounts again (the index there, the daemon
and its workers new) and times the same. Run as the user who mounts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "how do I make bread"


def timeline(backing: Path, mnt: Path, env: dict) -> tuple[float, bool, float, list[str]]:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "semfs", "mount", "--no-llm", str(backing), str(mnt)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    first = None
    try:
        while time.monotonic() - started < 60:
            doc = json.loads((mnt / "query" / PROMPT / ".results.json").read_text())
            hybrid = all(r["retrieval"] == "hybrid" for r in doc["results"]) and bool(doc["results"])
            if first is None:
                first = (time.monotonic() - started, hybrid and "note" not in doc)
            if hybrid and "note" not in doc:
                return first[0], first[1], time.monotonic() - started, [r["name"] for r in doc["results"]]
            time.sleep(0.05)
        raise SystemExit("no hybrid listing within 60 s")
    finally:
        subprocess.run([sys.executable, "-m", "semfs", "unmount", str(mnt)], env=env, capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("SEMFS_EMBEDDER", "SEMFS_LLM")}
    rows: dict[str, list] = {"fresh index": [], "remount": []}
    for _ in range(args.rounds):
        top = Path(tempfile.mkdtemp(prefix="semfs-warm-"))
        try:
            shutil.copytree(ROOT / "demo", top / "demo")
            (top / "mnt").mkdir()
            env["SEMFS_HOME"] = str(top / "home")
            for kind in rows:
                rows[kind].append(timeline(top / "demo", top / "mnt", env))
        finally:
            shutil.rmtree(top, ignore_errors=True)
    settled = {tuple(r[3]) for kind in rows for r in rows[kind]}
    print(f"prompt {PROMPT!r}; settled listings seen: {sorted(settled)}")
    print("| mount | first answer s (median) | first answer hybrid and final | hybrid and final s (median, max) |")
    print("|---|---:|---|---:|")
    for kind, rs in rows.items():
        firsts = [r[0] for r in rs]
        finals = [r[2] for r in rs]
        hybrid = sum(r[1] for r in rs)
        print(f"| {kind} | {statistics.median(firsts):.2f} | {hybrid} of {len(rs)} | "
              f"{statistics.median(finals):.2f}, {max(finals):.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
