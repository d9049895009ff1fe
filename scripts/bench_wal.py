"""How big SQLite's WAL and the state dir grow under a burst of overwrites, and after (issue 22).

Usage: ``.venv/bin/python scripts/bench_wal.py [--after 75] [--label NAME]``, run from outside
the checkout with ``PYTHONPATH`` set to the semfs to measure (a worktree of an older commit, say):
Cranfield's files are mounted (hashing embedder, no LLM), indexed, then one file is overwritten
1,000 times through the mount while ``semfs.db-wal`` is sampled every 0.2 s, and for ``--after``
seconds more. Prints the WAL's peak, its size at the end, and the state dir's size over BACKING's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heal import DATA, du, status  # noqa: E402

from bench_retrieval import load, write_docs  # noqa: E402

SEMFS = [sys.executable, "-m", "semfs"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--after", type=float, default=75.0, help="seconds to watch after the burst")
    ap.add_argument("--label", default="", help="a name for the row (the commit measured)")
    args = ap.parse_args()
    docs, _, _ = load(DATA)
    top = Path(tempfile.mkdtemp(prefix="semfs-wal-"))
    env = dict(os.environ, SEMFS_HOME=str(top / "home"), SEMFS_EMBEDDER="hash", SEMFS_LLM="off")
    backing, mnt = top / "b", top / "m"
    mnt.mkdir()
    write_docs(backing, docs)
    n = len(docs)
    subprocess.run([*SEMFS, "mount", str(backing), str(mnt)], env=env, check=True, capture_output=True)
    peak = [0]
    stop = threading.Event()
    try:
        t0 = time.monotonic()
        while f"{n} files indexed, 0 queued" not in status(mnt, env):
            if time.monotonic() - t0 > 600:
                raise SystemExit("not indexed within 10 minutes")
            time.sleep(0.5)
        state = next((top / "home").rglob("semfs.db")).parent
        wal = state / "semfs.db-wal"

        def sample() -> None:
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], wal.stat().st_size)
                except FileNotFoundError:
                    pass
                time.sleep(0.2)

        t = threading.Thread(target=sample)
        t.start()
        f = next(backing.rglob("*.txt"))
        f = mnt / f.relative_to(backing)
        text = f.read_text()
        t1 = time.monotonic()
        for i in range(1000):
            f.write_text(f"{text}\nedit {i}\n")
        burst = time.monotonic() - t1
        time.sleep(args.after)
        stop.set()
        t.join()
        end = wal.stat().st_size if wal.exists() else 0
        ratio = du(state) / du(backing)
    finally:
        stop.set()
        subprocess.run([*SEMFS, "unmount", str(mnt)], env=env, capture_output=True)
    print("| semfs | files | 1,000 overwrites s | WAL peak MB | WAL after MB | state / backing after |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| {args.label} | {n:,} | {burst:.1f} | {peak[0] / 1e6:.1f} | {end / 1e6:.1f} | {ratio:.2f} |")
    shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
