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
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_retrieval import load, write_docs  # noqa: E402
from helpers import damage, root_pages  # noqa: E402  (the tests' own damage, so both damage alike)

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
    ap.add_argument(
        "--while-mounted", action="store_true", help="damage the database under a running mount, not before it starts"
    )
    args = ap.parse_args()
    if args.while_mounted:
        return while_mounted(args)
    docs, _, _ = load(DATA)
    print("| files | state/backing after index | heal: words s | heal: meaning s | slowest read ms | "
          "state/backing after 1,000 overwrites |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for copies in args.copies or [1]:
        top, env, backing, mnt, n = collection(docs, copies, args.embedder)
        subprocess.run([*SEMFS, "index", str(backing)], env=env, check=True, capture_output=True)
        state = next((top / "home").rglob("semfs.db")).parent
        ratio_index = du(state) / du(backing)
        damage(state / "semfs.db", (10, 11, 12))
        slowest = [0.0]
        stop = threading.Event()
        started = time.monotonic()
        subprocess.run([*SEMFS, "mount", str(backing), str(mnt)], env=env, check=True, capture_output=True)
        t = reading(mnt / "copy0" / "cran" / "0001.txt", stop, slowest)
        try:
            words, meaning = healed(mnt, env, started, f"{n} files indexed, 0 queued", args.meaning)
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


def collection(docs, copies: int, embedder: str):
    """``copies`` of Cranfield in a new folder: (top, env, backing, mountpoint, files)."""
    top = Path(tempfile.mkdtemp(prefix="semfs-heal-"))
    env = dict(os.environ, SEMFS_HOME=str(top / "home"), SEMFS_EMBEDDER=embedder, SEMFS_LLM="off")
    backing, mnt = top / "b", top / "m"
    mnt.mkdir()
    for c in range(copies):
        write_docs(backing / f"copy{c}", docs)
    return top, env, backing, mnt, len(docs) * copies


def healed(mnt: Path, env: dict, started: float, words_done: str, meaning: bool, also: str = ""):
    """Seconds from ``started`` until ``semfs status`` says ``words_done`` (and ``also``), and
    until every file with text is embedded (None without ``meaning``); (None, None) past an hour."""
    words = None
    while time.monotonic() - started < 3600:
        out = status(mnt, env)
        if words is None and words_done in out and also in out:
            words = time.monotonic() - started
        # (a file with no text has no vectors: "1398 of 1398 files embedded")
        if words is not None and (not meaning or re.search(r"\b(\d+) of \1 files? embedded", out)):
            return words, (time.monotonic() - started if meaning else None)
        time.sleep(0.5)
    return words, None


def reading(path: Path, stop: threading.Event, slowest: list) -> threading.Thread:
    """A thread that reads ``path`` every 50 ms until ``stop``, keeping the slowest read's seconds."""

    def reads() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            path.read_bytes()
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            time.sleep(0.05)

    t = threading.Thread(target=reads)
    t.start()
    return t


def while_mounted(args) -> int:
    """The mount indexes the files itself; then the roots of the files, chunks and postings
    tables are damaged under it (after a checkpoint, so that it reads them from the file), one
    file is written through it, and the heal is timed until every file is indexed again."""
    docs, _, _ = load(DATA)
    print("| files | heal: words s | heal: meaning s | slowest read ms |")
    print("|---:|---:|---:|---:|")
    for copies in args.copies or [1]:
        top, env, backing, mnt, n = collection(docs, copies, args.embedder)
        subprocess.run([*SEMFS, "mount", str(backing), str(mnt)], env=env, check=True, capture_output=True)
        slowest, stop = [0.0], threading.Event()
        try:
            done = r"\b(\d+) of \1 files? embedded" if args.meaning else f"{n} files indexed, 0 queued"
            while not re.search(done, status(mnt, env)):
                time.sleep(1)
            state = next((top / "home").rglob("semfs.db")).parent
            conn = sqlite3.connect(state / "semfs.db")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            damage(
                state / "semfs.db",
                root_pages(state / "semfs.db", "files", "chunks", "lex_postings", "lex_postings_term"),
            )
            t = reading(mnt / "copy0" / "cran" / "0001.txt", stop, slowest)
            started = time.monotonic()
            (mnt / "fresh.txt").write_text("written after the damage\n")
            words, meaning = healed(mnt, env, started, f"{n + 1} files indexed, 0 queued", args.meaning, "healed:")
            stop.set()
            t.join()
        finally:
            stop.set()
            subprocess.run([*SEMFS, "unmount", str(mnt)], env=env, capture_output=True)
        m = f"{meaning:.1f}" if meaning is not None else "-"
        w = f"{words:.1f}" if words is not None else "did not finish"
        print(f"| {n:,} | {w} | {m} | {slowest[0] * 1000:.0f} |")
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
