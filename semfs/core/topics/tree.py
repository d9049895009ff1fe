"""A grouping of the files by meaning: topics (at most two levels), each file in one leaf.

:func:`build` makes one from a corpus; :meth:`Tree.updated` adds the new
and changed files to the leaf nearest in meaning and drops the files that
are gone, moving no centroid and renaming nothing, so names a person has
seen stay. :func:`quality` is what a full regrouping must improve on.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import cluster, naming
from .corpus import Corpus

NAME_SAMPLE = 100  # files of a topic whose words name it (the nearest to its centroid)


@dataclass(frozen=True)
class Topic:
    id: int  # its index in Tree.topics
    parent: int  # -1 at the top
    words: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join(self.words)


@dataclass
class Tree:
    topics: list[Topic]
    centroids: np.ndarray  # (topics, d): each topic's unit centroid
    ids: np.ndarray  # (files,) file ids
    shas: list[Optional[str]]  # each file's content when it was placed
    leaf: np.ndarray  # (files,) the leaf topic of each
    score: np.ndarray  # (files,) its cosine to that leaf's centroid: best examples first
    meta: dict = field(default_factory=dict)  # built (time), files (at build), quality, changes (since)

    _by_leaf: Optional[dict[int, np.ndarray]] = field(default=None, init=False, repr=False, compare=False)

    def children(self, topic: int) -> list[Topic]:
        return [t for t in self.topics if t.parent == topic]

    def _rows(self) -> dict[int, np.ndarray]:
        """leaf -> its files' rows, best first (made once per tree: a listing asks for it on every call)."""
        if self._by_leaf is None:
            order = np.lexsort((-self.score, self.leaf))  # by leaf, then best first
            leaves, starts = np.unique(self.leaf[order], return_index=True)
            self._by_leaf = dict(zip(leaves.tolist(), np.split(order, starts[1:])))
        return self._by_leaf

    def size(self, topic: int) -> int:
        """How many files are under ``topic``."""
        rows = self._rows()
        return sum(len(rows.get(t.id, ())) for t in self.topics if t.id == topic or t.parent == topic)

    def members(self, topic: int) -> list[tuple[int, float]]:
        """(file id, score) of the files under ``topic`` (-1: all), best first."""
        by = self._rows()
        under = [by[t.id] for t in self.topics if (topic < 0 or t.id == topic or t.parent == topic) and t.id in by]
        rows = np.concatenate(under) if under else np.zeros(0, dtype=np.int64)
        if len(under) > 1:
            rows = rows[np.argsort(-self.score[rows], kind="stable")]
        return [(int(self.ids[i]), float(self.score[i])) for i in rows]

    def updated(self, corpus: Corpus, present: dict[int, Optional[str]]) -> tuple["Tree", int]:
        """This tree with the files of ``corpus`` (new or changed ones, with their vectors)
        placed, and the files not in ``present`` (file id -> sha256: every file of the index)
        dropped; returns (the tree, how many files came, went or changed)."""
        incoming = set(corpus.ids.tolist())
        keep = np.array(
            [present.get(f, "\0") == s and f not in incoming for f, s in zip(self.ids.tolist(), self.shas)], dtype=bool
        )
        leaf, score = self.place(corpus.vectors)
        tree = Tree(
            self.topics,
            self.centroids,
            np.concatenate([self.ids[keep], corpus.ids]).astype(np.int64),
            [s for s, k in zip(self.shas, keep) if k] + list(corpus.shas),
            np.concatenate([self.leaf[keep], leaf]).astype(np.int64),
            np.concatenate([self.score[keep], score]).astype(np.float32),
            dict(self.meta),
        )
        changes = len(incoming | set(self.ids[~keep].tolist()))
        tree.meta["changes"] = int(self.meta.get("changes", 0)) + changes
        return tree, changes

    def place(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The leaf nearest each vector (its top topic first, then that one's sub-topic) and the cosine to it."""
        if not len(vectors):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = [t.id for t in self.topics if t.parent < 0]
        first = np.array(top)[cluster.assign(vectors, self.centroids[top])]
        leaf = first.copy()
        for t in top:
            kids = [c.id for c in self.children(t)]
            rows = np.flatnonzero(first == t)
            if kids and len(rows):
                leaf[rows] = np.array(kids)[cluster.assign(vectors[rows], self.centroids[kids])]
        score = cluster.cosines(vectors, self.centroids, leaf)
        return leaf, score


def build(corpus: Corpus, seed: int = cluster.SEED) -> Optional[Tree]:
    """Group ``corpus`` afresh; None when it has no file."""
    n = len(corpus)
    if n == 0:
        return None
    v = corpus.vectors
    top = cluster.group(v, seed)
    labels = top.labels if top is not None else np.zeros(n, dtype=np.int64)
    centroids = top.centroids if top is not None else cluster.normalised(v.mean(axis=0, keepdims=True))
    topics: list[tuple[int, np.ndarray, np.ndarray]] = []  # (parent, centroid, rows)
    leaf = np.empty(n, dtype=np.int64)
    for g in range(len(centroids)):
        rows = np.flatnonzero(labels == g)
        me = len(topics)
        topics.append((-1, centroids[g], rows))
        sub = cluster.group(v[rows], seed) if len(rows) > cluster.SPLIT else None
        if sub is None:
            leaf[rows] = me
            continue
        for h in range(len(sub.centroids)):
            leaf[rows[sub.labels == h]] = len(topics)
            topics.append((me, sub.centroids[h], rows[sub.labels == h]))
    allc = np.stack([c for _, c, _ in topics]).astype(np.float32)
    words = _names(corpus, topics)
    tree = Tree(
        [Topic(i, p, tuple(words[i])) for i, (p, _, _) in enumerate(topics)],
        allc,
        corpus.ids.copy(),
        list(corpus.shas),
        leaf,
        cluster.cosines(v, allc, leaf),
        {"built": time.time(), "files": n, "changes": 0, "seed": seed},
    )
    tree.meta["quality"] = quality(tree, corpus)
    return tree


def _names(corpus: Corpus, topics: list[tuple[int, np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Each topic's words, told apart from its siblings' (the top topics' from each other's; a
    sub-topic's without its parent's words, which its path already shows)."""
    samples = []
    for i, (_, c, rows) in enumerate(topics):
        best = rows[np.argsort(-(corpus.vectors[rows] @ c), kind="stable")[:NAME_SAMPLE]]
        samples.append([int(corpus.ids[r]) for r in best])
    words: list[list[str]] = [[] for _ in topics]
    for parent in sorted({p for p, _, _ in topics}):  # (-1 first: a parent is named before its children)
        sibs = [i for i, (p, _, _) in enumerate(topics) if p == parent]
        # one set of siblings' words at a time: at 100k files all of them at once held ~300 MB
        texts = corpus.texts(sorted({f for i in sibs for f in samples[i]}))
        bags = {f: naming.terms(text) for f, text in texts.items()}
        unwanted = naming.stems(words[parent]) if parent >= 0 else frozenset()
        groups = [[bags.get(f, Counter()) for f in samples[i]] for i in sibs]
        for i, w in zip(sibs, naming.name_groups(groups, unwanted=unwanted)):
            words[i] = w or [f"topic {i + 1}"]
    return words


def quality(tree: Tree, corpus: Corpus) -> float:
    """The silhouette of the tree's leaves over the files of ``corpus`` it holds (a sample of them)."""
    pos = {int(f): i for i, f in enumerate(tree.ids)}
    rows = np.array([i for i, f in enumerate(corpus.ids.tolist()) if f in pos], dtype=np.int64)
    if len(rows) < 2:
        return 0.0
    rows = rows[cluster.sample_of(len(rows))]  # (sampled before the copy: at 100k files it is 150 MB)
    labels = tree.leaf[[pos[int(corpus.ids[i])] for i in rows]]
    return round(cluster.silhouette(corpus.vectors[rows], labels, np.arange(len(rows))), 4)


def to_arrays(tree: Tree) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) as :mod:`semfs.stores.topicfile` keeps them."""
    width = max([len(s or "") for s in tree.shas] + [1])
    return tree.meta, {
        "parent": np.array([t.parent for t in tree.topics], dtype=np.int64),
        "words": np.array(["\t".join(t.words) for t in tree.topics], dtype=str),
        "centroids": tree.centroids.astype(np.float32),
        "ids": tree.ids.astype(np.int64),
        "shas": np.array([(s or "").encode() for s in tree.shas], dtype=f"S{width}"),  # (hex: a byte each)
        "leaf": tree.leaf.astype(np.int64),
        "score": tree.score.astype(np.float32),
    }


def from_arrays(meta: dict, a: dict[str, np.ndarray]) -> Tree:
    topics = [Topic(i, int(p), tuple(str(w).split("\t"))) for i, (p, w) in enumerate(zip(a["parent"], a["words"]))]
    shas = [s.decode() or None for s in a["shas"].tolist()]
    return Tree(topics, a["centroids"], a["ids"], shas, a["leaf"], a["score"], meta)
