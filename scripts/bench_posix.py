#!/usr/bin/env python3
"""POSIX conformance and a developer's workload: native ext4, bindfs and semfs in one run.

1. pjdfstest (../shared/tools/pjdfstest-*.tar.gz, built once into a temp
   folder) run with ``prove -r`` inside each target: failed subtests per
   test file, side by side.
2. The developer workload, timed per step on each target, interleaved
   round by round: unpack the pjdfstest tarball, ``autoreconf -ifs``,
   ``./configure``, ``make``, ``git init; git add -A; git commit``, then
   ``rm -rf`` of the tree; afterwards the backing folder must be empty
   (no ``.fuse_hidden*`` left).

semfs mounts with ``--allow-other`` and its defaults (index and versions
on), less the LLM (``--no-llm``: summaries are not what is measured);
bindfs with ``-o allow_other``. Run as root (pjdfstest switches uids):

    .venv/bin/python scripts/bench_posix.py [--rounds 3] [--skip-pjdfstest] [--skip-workload]

Needs bindfs, autoconf, automake, git, make and a C compiler (``make bench-deps``).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEMFS = [sys.executable, "-m", "semfs"]
TARGETS = ("native", "bindfs", "semfs")


def tarball() -> Path:
    found = sorted(glob.glob(str(HERE.parent.parent / "shared" / "tools" / "pjdfstest-*.tar.gz")))
    if not found:
        sys.exit("bench_posix: no pjdfstest tarball in ../shared/tools/")
    return Path(found[-1])


def run(cmd, cwd=None, env=None, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


class Target:
    def __init__(self, kind: str, top: Path) -> None:
        self.kind = kind
        self.top = top / kind
        self.backing = self.top / "backing"
        self.mnt = self.top / "mnt" if kind != "native" else self.backing
        self.state = self.top / "state"

    def mount(self) -> None:
        if self.top.exists():
            shutil.rmtree(self.top)
        self.backing.mkdir(parents=True)
        os.chmod(self.top, 0o755)
        os.chmod(self.backing, 0o755)
        if self.kind == "native":
            return
        self.mnt.mkdir()
        if self.kind == "bindfs":
            cmd = ["bindfs", "-o", "allow_other", str(self.backing), str(self.mnt)]
        else:
            cmd = [*SEMFS, "mount", "--allow-other", "--no-llm", "--state-dir", str(self.state)]
            cmd += [str(self.backing), str(self.mnt)]
        res = run(cmd, timeout=120)
        if res.returncode != 0 or not os.path.ismount(self.mnt):
            sys.exit(f"bench_posix: could not mount {self.kind}: {res.stderr.strip()}")
        os.chmod(self.mnt, 0o755)

    def unmount(self) -> None:
        if self.kind != "native" and os.path.ismount(self.mnt):
            if self.kind == "semfs":
                run([*SEMFS, "unmount", str(self.mnt)], timeout=120)
            else:
                run(["fusermount3", "-u", str(self.mnt)])
            if os.path.ismount(self.mnt):
                run(["fusermount3", "-u", "-z", str(self.mnt)])

    def leftovers(self) -> list[str]:
        return sorted(os.listdir(self.backing))


def build_pjdfstest(work: Path) -> Path:
    subprocess.run(["tar", "-xzf", str(tarball()), "-C", str(work)], check=True)
    src = work / "pjdfstest"
    for cmd in (["autoreconf", "-ifs"], ["./configure"], ["make", "pjdfstest"]):
        res = run(cmd, cwd=src)
        if res.returncode != 0:
            sys.exit(f"bench_posix: building pjdfstest failed at {' '.join(cmd)}: {res.stderr[-400:]}")
    return src


_SUMMARY = re.compile(r"^(\S+\.t)\s+\(Wstat: \d+ Tests: (\d+) Failed: (\d+)\)", re.M)
_TOTAL = re.compile(r"Files=(\d+), Tests=(\d+)")


def pjdfstest(src: Path, target: Target) -> tuple[int, dict[str, int], str]:
    """(subtests run, failed subtests per test file, the tail of prove's output)."""
    target.mount()
    try:
        res = run(["prove", "-r", str(src / "tests")], cwd=target.mnt, timeout=3600)
    finally:
        target.unmount()
    out = res.stdout + res.stderr
    # (a file is summarised also for "TODO passed" alone: only failures count)
    failed = {m.group(1).split("/tests/", 1)[-1]: int(m.group(3)) for m in _SUMMARY.finditer(out) if int(m.group(3))}
    total = _TOTAL.search(out)
    return (int(total.group(2)) if total else 0), failed, out[-2000:]


WORKLOAD = ("unpack", "autoreconf", "configure", "make", "git", "rm -rf")


def workload(target: Target) -> dict[str, float]:
    """Seconds per step of the developer workload inside ``target``'s mount."""
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@localhost",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@localhost",
    )
    tree = target.mnt / "pjdfstest"
    steps = {
        "unpack": (["tar", "-xzf", str(tarball())], target.mnt),
        "autoreconf": (["autoreconf", "-ifs"], tree),
        "configure": (["./configure"], tree),
        "make": (["make", "pjdfstest"], tree),
        "git": (["sh", "-c", "git init -q && git add -A && git commit -qm tree"], tree),
        "rm -rf": (["rm", "-rf", str(tree)], target.mnt),
    }
    times: dict[str, float] = {}
    for name in WORKLOAD:
        cmd, cwd = steps[name]
        t0 = time.perf_counter()
        res = run(cmd, cwd=cwd, env=env)
        times[name] = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"{target.kind}: {name} failed: {res.stderr.strip()[-300:]}")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the developer workload")
    ap.add_argument("--skip-pjdfstest", action="store_true")
    ap.add_argument("--skip-workload", action="store_true")
    ap.add_argument("--targets", default=",".join(TARGETS))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_posix: run as root (pjdfstest switches users; the mounts use allow_other)")
    for tool in ("bindfs", "autoreconf", "prove", "git", "make", "cc"):
        if not shutil.which(tool):
            sys.exit(f"bench_posix: {tool} is missing (make bench-deps)")
    kinds = [k for k in args.targets.split(",") if k]
    top = Path(tempfile.mkdtemp(prefix="semfs-posix-"))
    os.chmod(top, 0o755)
    os.environ["SEMFS_HOME"] = str(top / "semfs-home")
    targets = [Target(k, top) for k in kinds]
    try:
        print(f"# bench_posix {time.strftime('%Y-%m-%d %H:%M')} ({os.uname().release}), targets {', '.join(kinds)}")
        if not args.skip_pjdfstest:
            src = build_pjdfstest(top)
            results = {}
            for t in targets:
                t0 = time.perf_counter()
                results[t.kind] = pjdfstest(src, t)
                print(f"pjdfstest on {t.kind}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            files = sorted({f for _, failed, _ in results.values() for f in failed})
            print("\n| pjdfstest file | " + " | ".join(kinds) + " |")
            print("|---|" + "---:|" * len(kinds))
            for f in files:
                print(f"| {f} | " + " | ".join(str(results[k][1].get(f, 0)) for k in kinds) + " |")
            print(
                "| **failed / run** | "
                + " | ".join(f"**{sum(results[k][1].values())} / {results[k][0]}**" for k in kinds)
                + " |"
            )
            for k in kinds:
                if not results[k][0]:
                    print(f"\n{k}: prove's output ended with:\n{results[k][2]}")
        if not args.skip_workload:
            rounds: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
            left: dict[str, list[str]] = {}
            for _ in range(args.rounds):
                for t in targets:
                    t.mount()
                    try:
                        rounds[t.kind].append(workload(t))
                    finally:
                        t.unmount()
                    if t.leftovers():  # (after unmount: what the user would find)
                        left[t.kind] = t.leftovers()
            print(f"\n| step (median of {args.rounds}, s) | " + " | ".join(kinds) + " | semfs/bindfs |")
            print("|---|" + "---:|" * (len(kinds) + 1))
            for step in (*WORKLOAD, "total"):
                med = {}
                for k in kinds:
                    vals = [sum(r.values()) if step == "total" else r[step] for r in rounds[k]]
                    med[k] = statistics.median(vals)
                ratio = f"{med['semfs'] / med['bindfs']:.2f}x" if "semfs" in med and "bindfs" in med else ""
                print(f"| {step} | " + " | ".join(f"{med[k]:.2f}" for k in kinds) + f" | {ratio} |")
            for k in kinds:
                print(f"\nleft in {k}'s backing folder after rm -rf: {left.get(k) or 'nothing'}")
    finally:
        for t in targets:
            t.unmount()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
