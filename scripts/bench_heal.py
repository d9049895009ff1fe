"""How long a mount takes to heal a damaged database, serving files meanwhile (issue 22).

Usage: ``.venv/bin/python scripts/bench_heal.py --copies 1 --copies 7`` (1,400 and 9,800
Cranfield files). For each size: the files are written, indexed by ``semfs index`` (the
embedder given by ``--embedder``, default the real MiniLM), three pages of ``semfs.db``
overwritten, then ``semfs mount`` started and timed until every file's words are indexed
again and, with ``--meaning``, every file embedded; meanwhile a file is read through the
mount every 50 ms and the slowest read is reported. Also: the state dir's size over the
backing folder's after indexing, and after 1,000 overwrites of one file through the mount.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_retrieval import load, write_docs  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cranfield"
SEMFS = [sys.executable, "-m", "semfs"]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def status(where: Path, env: dict) -> str:
    return subprocess.run([*SEMFS, "status", str(where)], env=env, capture_output=True, text=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, action="append", help="Cranfield copies (1 = 1,400 files)")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--meaning", action="store_true", help="also wait until every file is embedded")
    args = ap.parse_args()
    docs, _, _ = load(DATA)
    print("| files | state/backing after index | heal: words s | heal: meaning s | slowest read ms | "
          "state/backing after 1,000 overwrites |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for copies in args.copies or [1]:
        top = Path(tempfile.mkdtemp(prefix="semfs-heal-"))
        env = dict(os.environ, SEMFS_HOME=str(top / "home"), SEMFS_EMBEDDER=args.embedder, SEMFS_LLM="off")
        backing, mnt = top / "b", top / "m"
        mnt.mkdir()
        for c in range(copies):
            write_docs(backing / f"copy{c}", docs)
        n = len(docs) * copies
        subprocess.run([*SEMFS, "index", str(backing)], env=env, check=True, capture_output=True)
        state = next((top / "home").rglob("semfs.db")).parent
        ratio_index = du(state) / du(backing)
        with open(state / "semfs.db", "r+b") as f:
            for page in (10, 11, 12):
                f.seek(page * 4096)
                f.write(os.urandom(4096))
        slowest = [0.0]
        stop = threading.Event()
        started = time.monotonic()
        subprocess.run([*SEMFS, "mount", str(backing), str(mnt)], env=env, check=True, capture_output=True)

        def reads() -> None:
            f = mnt / "copy0" / "cran" / "0001.txt"
            while not stop.is_set():
                t0 = time.monotonic()
                f.read_bytes()
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                time.sleep(0.05)

        t = threading.Thread(target=reads)
        t.start()
        words = meaning = None
        try:
            while time.monotonic() - started < 3600:
                out = status(mnt, env)
                if words is None and f"{n} files indexed, 0 queued" in out:
                    words = time.monotonic() - started
                # (a file with no text has no vectors: "1398 of 1398 files embedded")
                if words is not None and (not args.meaning or re.search(r"\b(\d+) of \1 files? embedded", out)):
                    meaning = time.monotonic() - started if args.meaning else None
                    break
                time.sleep(0.5)
            stop.set()
            t.join()
            f = mnt / "copy0" / "cran" / "0002.txt"
            text = f.read_text()
            for i in range(1000):
                f.write_text(f"{text}\nedit {i}\n")
            time.sleep(75)  # past the idle checkpoint's minute
            ratio_edits = du(state) / du(backing)
        finally:
            stop.set()
            subprocess.run([*SEMFS, "unmount", str(mnt)], env=env, capture_output=True)
        m = f"{meaning:.1f}" if meaning is not None else "-"
        w = f"{words:.1f}" if words is not None else "did not finish"
        print(f"| {n:,} | {ratio_index:.2f} | {w} | {m} | {slowest[0] * 1000:.0f} | {ratio_edits:.2f} |")
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
