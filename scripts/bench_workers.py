#!/usr/bin/env python3
"""What moving model code out of the daemon bought: FUSE latency while indexing, RSS, cold start.

Each part runs the mount of this tree and the mount of an older commit
(``--old``, checked out with ``git worktree`` under the work folder and
run by the same interpreter) side by side in one run, alternating, with
the real MiniLM and the LLM as each part says.

- ``latency``: the 1400 Cranfield documents (one file each) plus 300
  small probe files in a fresh backing folder; right after the mount, as
  the whole folder is being indexed and embedded, a prober stats
  (uncached: each probe file is visited again only after the 1 s attribute
  timeout) and cats small files through the mount for ``--seconds``. p50 and
  p99 of each, per variant; plus the same with ``--no-index``, for the
  mirror alone.
- ``rss``: the demo folder mounted with the LLM, indexed, 10 prompt
  folders listed and one summary read; the RSS of the daemon and of each
  of its children.
- ``coldstart``: the time from starting ``semfs mount`` (the background
  daemon, as ``make run`` does) to the end of the first listing of a new
  query folder, with the LLM on; the demo folder.

    .venv/bin/python scripts/bench_workers.py [latency|rss|coldstart|all] [--old REV] [--rounds 2]
"""

from __future__ import annotations

import argparse
import glob
import json
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
sys.path.insert(0, str(ROOT / "scripts"))

PROMPTS = [
    "notes about the budget meeting last march",
    "how to bake bread",
    "travel plans",
    "python scripts",
    "things to do this week",
    "money and expenses",
    "recipes with vegetables",
    "meeting notes",
    "passwords and security",
    "backups",
]


def checkout(rev: str, work: Path) -> Path:
    tree = work / f"tree-{rev[:10]}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
        )
    return tree


def drop_worktree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


class Mount:
    def __init__(
        self,
        tree: Path,
        backing: Path,
        mnt: Path,
        home: Path,
        *extra: str,
        env: dict | None = None,
        foreground: bool = True,
    ) -> None:
        self.mnt, self.backing, self.tree = mnt, backing, tree
        mnt.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONPATH=str(tree), SEMFS_HOME=str(home), **(env or {}))
        self.env.pop("SEMFS_STATE_DIR", None)
        args = [
            sys.executable,
            "-m",
            "semfs",
            "mount",
            *(["--foreground"] if foreground else []),
            *extra,
            str(backing),
            str(mnt),
        ]
        self.started = time.perf_counter()
        # cwd: ``python -m`` puts the working folder ahead of PYTHONPATH
        self.proc = subprocess.Popen(
            args, env=self.env, cwd=tree, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if foreground:
            deadline = time.monotonic() + 60
            while not os.path.ismount(mnt):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"mount failed ({tree})")
                time.sleep(0.01)
        else:
            self.proc.wait()

    def pid(self) -> int:
        if self.proc.returncode is None:
            return self.proc.pid
        for rec in glob.glob(os.path.join(self.env["SEMFS_HOME"], "mounts", "*")):
            try:
                data = json.loads(Path(rec).read_text())
            except (OSError, ValueError):
                continue
            if data.get("mountpoint") == str(self.mnt):
                return data["pid"]
        raise SystemExit("no mount record")

    def status(self) -> str:
        return subprocess.run(
            [sys.executable, "-m", "semfs", "status", str(self.mnt)],
            env=self.env,
            cwd=self.tree,
            capture_output=True,
            text=True,
        ).stdout

    def unmount(self) -> None:
        subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        if self.proc.returncode is None:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            time.sleep(1.0)  # the background daemon stops its workers
        subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def cranfield_backing(dest: Path, data: Path, probes: int) -> list[Path]:
    import bench_retrieval as br

    docs, _, _ = br.load(data)
    for n, (title, body) in docs.items():
        p = dest / br.doc_name(n)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{title}\n\n{body}\n")
    names = []
    (dest / "probe").mkdir()
    for i in range(probes):
        name = dest / "probe" / f"p{i:04d}.txt"
        name.write_text(f"probe file {i}\n" * 20)
        names.append(Path("probe") / name.name)
    return names


def probe_latency(mnt: Path, names: list[Path], seconds: float) -> tuple[list[float], list[float]]:
    stats, cats = [], []
    rnd = random.Random(3)
    order = names[:]
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        if i % len(order) == 0:
            rnd.shuffle(order)
        name = mnt / order[i % len(order)]
        t0 = time.perf_counter()
        os.stat(name)
        stats.append(time.perf_counter() - t0)
        other = mnt / order[(i + len(order) // 2) % len(order)]
        t0 = time.perf_counter()
        with open(other, "rb") as f:
            f.read()
        cats.append(time.perf_counter() - t0)
        i += 1
        time.sleep(0.01)  # ~100 probes a second: each file comes round again after 3 s, past the 1 s attribute cache
    return stats, cats


def part_latency(args, work: Path, trees: dict[str, Path]) -> None:
    data = Path(args.data)
    rows: dict[str, dict[str, list[float]]] = {}
    variants = [(label, tree, ()) for label, tree in trees.items()]
    variants.append(("mirror only (--no-index)", ROOT, ("--no-index",)))
    for r in range(args.rounds):
        for label, tree, extra in variants:
            run = work / f"lat-{r}-{len(rows)}-{label.split()[0]}"
            backing = run / "backing"
            names = cranfield_backing(backing, data, 300)
            m = Mount(
                tree, backing, run / "mnt", run / "home", *extra, env={"SEMFS_EMBEDDER": "minilm", "SEMFS_LLM": "off"}
            )
            try:
                time.sleep(2.0)  # past the model load: the indexer is embedding by now
                s, c = probe_latency(m.mnt, names, args.seconds)
                status = m.status()
            finally:
                m.unmount()
            queued = next((ln.strip() for ln in status.splitlines() if "index:" in ln), "")
            print(f"round {r} {label}: {len(s)} probes; at the end: {queued}", flush=True)
            d = rows.setdefault(label, {"stat": [], "cat": []})
            d["stat"] += s
            d["cat"] += c
            shutil.rmtree(run, ignore_errors=True)
    print("\n| while indexing 1400 Cranfield files | stat p50 | stat p99 | cat p50 | cat p99 | probes |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, d in rows.items():
        print(
            f"| {label} | {pct(d['stat'], 50) * 1e3:.2f} ms | {pct(d['stat'], 99) * 1e3:.2f} ms | "
            f"{pct(d['cat'], 50) * 1e3:.2f} ms | {pct(d['cat'], 99) * 1e3:.2f} ms | {len(d['stat'])} |"
        )


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[tuple[int, str]]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cpid = int(stat.split("/")[2])
                cmd = Path(f"/proc/{cpid}/cmdline").read_bytes().split(b"\0")
                out.append((cpid, b" ".join(cmd[2:4]).decode()))
        except (OSError, ValueError, IndexError):
            continue
    return out


def wait_indexed(m: Mount, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = m.status()
        meaning = [ln.split(":", 1)[1].split() for ln in st.splitlines() if ln.strip().startswith("meaning:")]
        if f"{n} files indexed, 0 queued" in st and all(w[0] == w[2] for w in meaning):
            return
        time.sleep(0.5)
    raise SystemExit(f"not indexed in time:\n{m.status()}")


def part_rss(args, work: Path, trees: dict[str, Path]) -> None:
    demo = ROOT / "demo"
    n = sum(len(f) for _, _, f in os.walk(demo))
    print("\n| after indexing the demo, 10 prompt folders and a summary | daemon RSS | workers' RSS |")
    print("|---|---:|---:|")
    for label, tree in trees.items():
        run = work / f"rss-{label}"
        shutil.copytree(demo, run / "backing")
        m = Mount(
            tree, run / "backing", run / "mnt", run / "home", env={"SEMFS_EMBEDDER": "minilm", "SEMFS_LLM": "default"}
        )
        try:
            wait_indexed(m, n)
            for p in PROMPTS:
                os.listdir(m.mnt / "query" / p)
            (m.mnt / "summary" / "inbox" / "todo.txt").read_bytes()
            time.sleep(1.0)
            pid = m.pid()
            kids = children(pid)
            workers = ", ".join(f"{cmd.split()[-1]} {rss_kb(c) / 1024:.0f} MB" for c, cmd in kids) or "none"
            print(f"| {label} | {rss_kb(pid) / 1024:.0f} MB | {workers} |", flush=True)
        finally:
            m.unmount()
            shutil.rmtree(run, ignore_errors=True)


def part_coldstart(args, work: Path, trees: dict[str, Path]) -> None:
    demo = ROOT / "demo"
    times: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for label, tree in trees.items():
            run = work / f"cold-{r}-{label}"
            shutil.copytree(demo, run / "backing")
            # the index exists (as after a first mount); the daemon and its models start cold
            m = Mount(
                tree,
                run / "backing",
                run / "mnt",
                run / "home",
                env={"SEMFS_EMBEDDER": "minilm", "SEMFS_LLM": "default"},
            )
            wait_indexed(m, sum(len(f) for _, _, f in os.walk(demo)))
            m.unmount()
            m = Mount(
                tree,
                run / "backing",
                run / "mnt",
                run / "home",
                foreground=False,
                env={"SEMFS_EMBEDDER": "minilm", "SEMFS_LLM": "default"},
            )
            listed = os.listdir(m.mnt / "query" / f"notes about the budget meeting last march {r}")
            took = time.perf_counter() - m.started
            times.setdefault(label, []).append(took)
            print(f"round {r} {label}: {took:.2f} s to the first listing ({len(listed)} entries)", flush=True)
            m.unmount()
            shutil.rmtree(run, ignore_errors=True)
    print("\n| semfs mount -> first listing of a new query folder | median | runs |")
    print("|---|---:|---:|")
    for label, t in times.items():
        print(f"| {label} | {statistics.median(t):.2f} s | {', '.join(f'{x:.2f}' for x in t)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", nargs="?", default="all", choices=["latency", "rss", "coldstart", "all"])
    ap.add_argument("--old", default="0f130a7", help="the commit before model workers (default: 0f130a7)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="semfs-bench-workers-"))
    old = checkout(args.old, work)
    trees = {f"before ({args.old})": old, "with workers": ROOT}
    try:
        if args.part in ("latency", "all"):
            part_latency(args, work, trees)
        if args.part in ("rss", "all"):
            part_rss(args, work, trees)
        if args.part in ("coldstart", "all"):
            part_coldstart(args, work, trees)
    finally:
        drop_worktree(old)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
