#!/usr/bin/env python3
"""topics/ measured: grouping quality against known groups, names, and time by folder size.

Known groups (written down before any grouping was looked at):

- ``demo``: the demo folder's 31 files, by their top folder (9 of them);
- ``changelogs``: 855 Debian changelogs (scripts/eval_sets.py), by source
  package (``dpkg-query``: binaries of one source share a changelog);
- ``manpages``: 2,088 manual pages of sections 1, 5 and 8, by section.

For each: purity and NMI of the top topics and of the leaves, and the
share of files (of a group with two or more) whose leaf holds another file
of their group; the seed's spread of the silhouette (what a regrouping
must beat); and every top topic's name with its first files, to judge.

Size: the man pages' real vectors, copied with noise to 1k, 10k and 100k
files (their texts with them): the time to build, to place 10 new files,
and to check a regrouping (a build and the silhouette of both).

    .venv/bin/python scripts/bench_topics.py [--work /tmp/semfs-ret] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from semfs.core.topics import cluster  # noqa: E402
from semfs.core.topics.corpus import Corpus, read  # noqa: E402
from semfs.core.topics.tree import build, quality  # noqa: E402


def _sources() -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${source:Package}\n"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def known_groups(name: str):
    if name == "demo":
        return lambda p: p.split("/")[0]
    if name == "changelogs":
        src = _sources()
        return lambda p: src.get(p[: -len(".txt")].split(":")[0], p)
    return lambda p: re.match(r".*\.(\d)[^.]*\.txt$", p).group(1)  # manpages: the section


def corpus_of(name: str, work: Path) -> Corpus:
    from semfs.core.paths import resolve_state_dir
    from semfs.stores.backends import index_for

    from bench_retrieval import _collections, _index

    home = work / name / "home"
    if name == "demo":
        backing = work / "demo" / "backing"
        if not backing.exists():
            shutil.copytree(ROOT / "demo", backing)
    else:
        ((_, backing, _),) = _collections([name], work, Path("/nonexistent"))
    import os

    os.environ["SEMFS_HOME"] = str(home)
    state = resolve_state_dir(backing.resolve(), None)
    if not (state / "semfs.db").exists():
        _index(backing, home)
    store = index_for(state)
    t0 = time.monotonic()
    c = read(store.open_db_readonly(), store.vectors(384, writer=False))
    print(f"  ({name}: every file's vector and opening read from the index in {time.monotonic() - t0:.2f} s)")
    return c


def purity(labels, truth) -> float:
    by: dict = {}
    for lab, t in zip(labels, truth):
        by.setdefault(lab, Counter())[t] += 1
    return sum(c.most_common(1)[0][1] for c in by.values()) / len(truth)


def with_mate(leaf, truth) -> float:
    sizes = Counter(truth)
    pairs = Counter(zip(leaf, truth))
    eligible = [i for i, t in enumerate(truth) if sizes[t] > 1]
    return sum(pairs[(leaf[i], truth[i])] > 1 for i in eligible) / max(len(eligible), 1)


def measure_quality(name: str, work: Path) -> None:
    from sklearn.metrics import normalized_mutual_info_score as nmi

    c = corpus_of(name, work)
    group = known_groups(name)
    t0 = time.monotonic()
    tree = build(c)
    took = time.monotonic() - t0
    pos = {int(f): i for i, f in enumerate(tree.ids)}
    truth = [group(c.paths[pos[int(f)]]) for f in c.ids]
    leaf = [int(tree.leaf[pos[int(f)]]) for f in c.ids]
    top = [tree.topics[x].parent if tree.topics[x].parent >= 0 else x for x in leaf]
    tops = len(tree.children(-1))
    leaves = len(set(leaf))
    print(
        f"| {name} | {len(c):,} | {len(set(truth))} | {tops} / {leaves} | {purity(top, truth):.3f} / "
        f"{purity(leaf, truth):.3f} | {nmi(truth, top):.3f} / {nmi(truth, leaf):.3f} | {with_mate(leaf, truth):.3f} "
        f"| {took:.2f} s |"
    )
    spread = [quality(build(c, seed=s), c) for s in (1, 2, 3, 4, 5)]
    print(f"  silhouette over 5 seeds: {min(spread):.4f} .. {max(spread):.4f} (spread {max(spread) - min(spread):.4f})")
    where = {int(f): i for i, f in enumerate(c.ids)}
    for t in sorted(tree.children(-1), key=lambda t: -len(tree.members(t.id))):
        files = [c.paths[where[f]] for f, _ in tree.members(t.id)[:3]]
        kids = [k.name for k in tree.children(t.id)]
        print(f"  {t.name!r} ({len(tree.members(t.id))}): {files}" + (f" sub-topics: {kids[:6]}" if kids else ""))


def synthetic(base: Corpus, n: int, seed: int = 0) -> Corpus:
    """``n`` files: the base's vectors with noise, each with the text of the file it copies."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(base), n)
    vecs = base.vectors[rows]  # (a copy, float32; the noise added in place, a block at a time)
    for start in range(0, n, 10_000):
        vecs[start : start + 10_000] += 0.05 * rng.standard_normal(vecs[start : start + 10_000].shape, np.float32)
    vecs = cluster.normalised(vecs)
    orig = base.ids[rows]
    texts = base.texts(sorted(set(orig.tolist())))
    ids = np.arange(1, n + 1, dtype=np.int64)
    return Corpus(
        ids, [f"s{i}" for i in ids], [f"f{i}" for i in ids], vecs, lambda fs: {f: texts[int(orig[f - 1])] for f in fs}
    )


def _rss_peak() -> int:
    """The process's peak resident size so far, in bytes."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_sizes(work: Path, sizes: list[int]) -> None:
    base = corpus_of("manpages", work)
    import tempfile

    from semfs.core.topics.tree import to_arrays
    from semfs.stores import topicfile

    print(
        "| files | topics (top / leaves) | build | peak memory above the corpus | place 10 new files "
        "| regrouping check | topics.npz, saved in |"
    )
    print("|---:|---|---:|---:|---:|---:|---|")
    for n in sizes:
        c = synthetic(base, n + 10)
        old, new = c.subset(np.arange(n)), c.subset(np.arange(n, n + 10))
        held = _rss_peak()
        t0 = time.monotonic()
        tree = build(old)
        t_build = time.monotonic() - t0
        grew = _rss_peak() - held
        present = {int(f): s for f, s in zip(c.ids, c.shas)}
        t0 = time.monotonic()
        tree.updated(new, present)
        t_place = time.monotonic() - t0
        t0 = time.monotonic()
        cand = build(c, seed=2)
        quality(tree, c)
        t_check = time.monotonic() - t0
        leaves = sum(1 for t in tree.topics if not tree.children(t.id))
        del cand
        with tempfile.TemporaryDirectory() as d:
            t0 = time.monotonic()
            topicfile.save(Path(d), *to_arrays(tree))
            t_save = time.monotonic() - t0
            size = (Path(d) / topicfile.NAME).stat().st_size
        print(
            f"| {n:,} | {len(tree.children(-1))} / {leaves} | {t_build:.1f} s | {grew / 1e6:.0f} MB "
            f"| {t_place * 1000:.1f} ms "
            f"| {t_check:.1f} s | {size / 1e6:.1f} MB, {t_save * 1000:.0f} ms |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/semfs-ret")
    ap.add_argument("--sets", default="demo,changelogs,manpages")
    ap.add_argument("--sizes", default="1000,10000,100000")
    args = ap.parse_args()
    work = Path(args.work)
    print("| set | files | known groups | topics (top / leaves) | purity (top / leaf) | NMI (top / leaf) "
          "| files with a group-mate in their leaf | build |")  # fmt: skip
    print("|---|---:|---:|---|---|---|---:|---:|")
    for name in args.sets.split(","):
        if name:
            measure_quality(name, work)
    if args.sizes:
        measure_sizes(work, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
