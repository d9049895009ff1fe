#!/usr/bin/env python3
"""Time to searchable on a fresh folder: Recoll, ``semfs index`` and ``semfs mount``, in one run.

The 1400 Cranfield documents are written one per file (or ``--corpus DIR``
is used as is). Then, each from an empty state:

- Recoll: ``recollindex`` (Debian's recollcmd) with a configuration that
  indexes only that folder;
- ``semfs index``: both phases (words, then meaning), in one process;
- ``semfs mount``: time until every probe word (words found in a single
  file, spread over the corpus) is found by BM25 in the mount's index
  (read from its SQLite database while it works), and time until every
  chunk has its vector (the indexer's "meaning" record).

``SEMFS_EMBED_BACKEND`` (fp32, bf16, auto) applies to both semfs runs.

    .venv/bin/python scripts/bench_first_pass.py [--corpus DIR] [--probes 5]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def cranfield(work: Path, data: Path) -> Path:
    import bench_retrieval as br

    docs, _, _ = br.load(data)
    return br.write_docs(work / "backing", docs)


def probe_words(backing: Path, n: int) -> dict[str, str]:
    """Words of at least 6 letters found in exactly one file, from files spread over the corpus."""
    files = sorted(p for p in backing.rglob("*") if p.is_file() and p.suffix in (".txt", ".md", ".py", ".rst"))
    df: collections.Counter = collections.Counter()
    words_of = {}
    for p in files:
        words = set(re.findall(r"[a-z]{6,}", p.read_text(errors="replace").lower()))
        words_of[p] = words
        df.update(words)
    out: dict[str, str] = {}
    for p in files[:: max(1, len(files) // (n * 3))]:
        unique = sorted(w for w in words_of[p] if df[w] == 1)
        if unique:
            out[unique[0]] = p.relative_to(backing).as_posix()
        if len(out) == n:
            break
    return out


def recoll(backing: Path, work: Path) -> float:
    conf = work / "recoll"
    conf.mkdir()
    (conf / "recoll.conf").write_text(f"topdirs = {backing}\n")
    t0 = time.monotonic()
    subprocess.run(["recollindex", "-c", str(conf)], check=True, capture_output=True)
    return time.monotonic() - t0


def semfs_index(backing: Path, work: Path, env: dict) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "semfs", "index", str(backing)], check=True, env=env, capture_output=True)
    return time.monotonic() - t0


def semfs_mount(backing: Path, work: Path, env: dict, probes: dict[str, str]) -> tuple[float, float, dict]:
    from semfs.core.query.search import Searcher
    from semfs.core.state import default_state_dir
    from semfs.stores import metadata as md

    mnt = work / "mnt"
    mnt.mkdir()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "semfs", "mount", str(backing), str(mnt)], check=True, env=env)
    try:
        os.environ["SEMFS_HOME"] = env["SEMFS_HOME"]
        state = default_state_dir(backing.resolve())
        words_at = meaning_at = None
        last: dict = {}
        while meaning_at is None and time.monotonic() - t0 < 3600:
            db = md.open_db_readonly(state)
            if db is not None:
                try:
                    if words_at is None:
                        s = Searcher(backing, db, None, None)  # type: ignore[arg-type]  # BM25 only
                        found = 0
                        for w, rel in probes.items():
                            ids = s.bm25(w, 5000)  # (a stem may match many files: all of them)
                            paths = {
                                r[0] for fid in ids for r in db.execute("SELECT path FROM files WHERE id=?", [fid])
                            }
                            found += rel in paths
                        if found == len(probes):
                            words_at = time.monotonic() - t0
                    m = md.get_meta(db, "meaning")
                    last = json.loads(m) if m else {}
                    if last and last["chunks_left"] == 0 and last["files"] > 0 and words_at is not None:
                        counts = md.counts(db)
                        if counts["queued"] == 0 and last["embedded"] == last["files"]:
                            meaning_at = time.monotonic() - t0
                finally:
                    db.close()
            time.sleep(0.2)
        return words_at or float("nan"), meaning_at or float("nan"), last
    finally:
        subprocess.run([sys.executable, "-m", "semfs", "unmount", str(mnt)], env=env, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="a folder to index (default: Cranfield written as files)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--probes", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="semfs-first-pass-"))
    backing = Path(args.corpus).resolve() if args.corpus else cranfield(work, Path(args.data))
    n_files = sum(1 for p in backing.rglob("*") if p.is_file())
    probes = probe_words(backing, args.probes)
    print(f"{n_files} files in {backing}; probes: {probes}", file=sys.stderr)
    base = {k: v for k, v in os.environ.items() if k not in ("SEMFS_EMBEDDER", "SEMFS_STATE_DIR")}
    rec = recoll(backing, work)
    env = dict(base, SEMFS_HOME=str(work / "home-index"))
    idx = semfs_index(backing, work, env)
    env = dict(base, SEMFS_HOME=str(work / "home-mount"))
    chosen = work / "home-index" / "backend.json"  # the calibration is once per machine: not timed twice
    backend = json.loads(chosen.read_text()) if chosen.exists() else {}
    (work / "home-mount").mkdir()
    if chosen.exists():
        shutil.copy(chosen, work / "home-mount")
    if (work / "home-index" / "models").exists():  # so is the ONNX export (by semfs index)
        shutil.copytree(work / "home-index" / "models", work / "home-mount" / "models")
    words, meaning, last = semfs_mount(backing, work, env, probes)
    print(f"embedder backend: {os.environ.get('SEMFS_EMBED_BACKEND', 'auto')} -> {list(backend.values())[:1]}")
    print("| run | seconds | x Recoll |")
    print("|---|---:|---:|")
    print(f"| Recoll `recollindex` (words only) | {rec:.1f} | 1.0 |")
    print(f"| `semfs index`, words and meaning | {idx:.1f} | {idx / rec:.1f} |")
    print(f"| `semfs mount`: every probe found by its words | {words:.1f} | {words / rec:.1f} |")
    print(f"| `semfs mount`: every chunk embedded | {meaning:.1f} | {meaning / rec:.1f} |")
    print(f"\nmount's first pass / semfs index: {meaning / idx:.2f}x; last meaning record: {last}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
