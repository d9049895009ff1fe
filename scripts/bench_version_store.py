#!/usr/bin/env python3
"""Version storage and rollback latency, through a real mount.

- storage: a 1 MB text file (Cranfield abstracts) edited 100 times through
  the mount, each edit changing one line somewhere and saving the whole
  file as an editor does; bytes in the blob store versus 100 full copies.
- rollback: the same kind of file with 40 versions; ``semfs rollback``
  to random versions, timed in-process (``service.rollback``, the CLI's
  code path without the interpreter start) and as the command.

    .venv/bin/python scripts/bench_version_store.py [--edits 100] [--versions 40] [--rollbacks 20]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_fs  # noqa: E402


def text_of_size(data: Path, size: int) -> list[str]:
    import bench_retrieval as br

    docs, _, _ = br.load(data)
    lines, total = [], 0
    for n in sorted(docs):
        for line in (docs[n][0] + "\n" + docs[n][1]).splitlines():
            lines.append(line)
            total += len(line) + 1
            if total >= size:
                return lines
    return lines


def edit(lines: list[str], rnd: random.Random) -> None:
    i = rnd.randrange(len(lines))
    lines[i] = lines[i] + f" (revised {rnd.randrange(10**6)})"


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--versions", type=int, default=40)
    ap.add_argument("--rollbacks", type=int, default=20)
    args = ap.parse_args()

    top = Path(tempfile.mkdtemp(prefix="semfs-bench-vstore-"))
    b, m, home = top / "b", top / "m", top / "home"
    b.mkdir()
    m.mkdir()
    env = dict(os.environ, SEMFS_HOME=str(home), SEMFS_LLM="off")
    os.environ.update(SEMFS_HOME=str(home))
    p = subprocess.Popen(
        [sys.executable, "-m", "semfs", "mount", "-f", "--no-index", str(b), str(m)], env=env, stderr=subprocess.DEVNULL
    )
    bench_fs.wait_mounted(m)
    try:
        rnd = random.Random(0)
        lines = text_of_size(Path(args.data), 1 << 20)
        f = m / "report.txt"
        f.write_text("\n".join(lines) + "\n")
        size = f.stat().st_size
        for _ in range(args.edits):
            edit(lines, rnd)
            f.write_text("\n".join(lines) + "\n")
        state = next(p.parent for p in home.glob("*/semfs.db"))
        time.sleep(0.5)
        stored = du(state / "blobs")
        import zlib

        one = len(zlib.compress(f.read_bytes(), 6))
        print(f"file {size:,} bytes, {args.edits} edits through the mount")
        print("| | bytes | vs 100 full copies |")
        print("|---|---:|---:|")
        print(f"| 100 full copies | {size * args.edits:,} | 1.00 |")
        print(f"| semfs blob store ({args.edits} versions) | {stored:,} | {stored / (size * args.edits):.3f} |")
        print(f"| (one copy zlib-compressed, for scale) | {one:,} | {one / size:.3f} per copy |")

        g = m / "rolled.txt"
        g.write_text("\n".join(lines) + "\n")
        for _ in range(args.versions):
            edit(lines, rnd)
            g.write_text("\n".join(lines) + "\n")
        from semfs.core.versions import service

        inproc, cli = [], []
        for i in range(args.rollbacks):
            v = rnd.randrange(1, args.versions + 1)
            t0 = time.perf_counter()
            service.rollback(str(g), version=v)
            inproc.append((time.perf_counter() - t0) * 1000)
        for i in range(max(3, args.rollbacks // 4)):
            v = rnd.randrange(1, args.versions + 1)
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "semfs", "rollback", str(g), "--version", str(v)],
                env=env,
                check=True,
                capture_output=True,
            )
            cli.append((time.perf_counter() - t0) * 1000)
        print(f"\nrollback of a {g.stat().st_size:,}-byte file with {args.versions}+ versions")
        print("| how | p50 ms | max ms | n |")
        print("|---|---:|---:|---:|")
        print(
            f"| in-process (service.rollback) | {statistics.median(inproc):.1f} | {max(inproc):.1f} | {len(inproc)} |"
        )
        print(f"| `semfs rollback` command | {statistics.median(cli):.1f} | {max(cli):.1f} | {len(cli)} |")
    finally:
        subprocess.run(["fusermount3", "-u", str(m)])
        p.wait()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
