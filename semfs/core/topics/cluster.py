"""Files grouped by their vectors: spherical k-means, the number of groups chosen by silhouette.

FAISS's k-means (``spherical``: centroids on the unit sphere, as the file
vectors are) is tried for each k of a short ladder; the k whose grouping
has the best mean silhouette (cosine) on a sample of the files wins. A
group with more than ``SPLIT`` files is grouped again the same way, so a
folder of 30 files has a handful of topics and one of 20,000 a tree of two
levels. Everything is seeded: the same vectors give the same groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

SEED = 1234
MAX_K = 24  # topics a folder shows at one level: more is no longer browsed at a glance
MIN_SIZE = 3  # files per topic, on average at least, when choosing k
SPLIT = 60  # a topic of more files than this is split into sub-topics
SAMPLE = 2000  # files the silhouette is measured on (its cost is the square of this)
TRAIN = 20_000  # files k-means is trained on; the rest are assigned to the nearest centroid
NITER = 20


@dataclass
class Grouping:
    """A flat grouping: ``labels[i]`` is the group of file ``i``, ``centroids[g]`` its unit centroid."""

    labels: np.ndarray  # (n,) int
    centroids: np.ndarray  # (k, d) float32
    silhouette: float


def normalised(m: np.ndarray) -> np.ndarray:
    m = np.ascontiguousarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(norms, 1e-12)


def ladder(n: int) -> list[int]:
    """The values of k tried for ``n`` files: from half of sqrt(n) to twice it, at most ``MAX_K``
    and ``n // MIN_SIZE``, sparser as they grow.

    Why not every k from 2: on file vectors the silhouette often peaks at 2, one group of
    a few odd files against the rest (0.40 for 855 Debian changelogs, whose sources are
    hundreds), which names nothing; sqrt(n) is the size of a folder a person browses."""
    top = min(MAX_K, n // MIN_SIZE, max(2, int(2 * math.sqrt(n))))
    low = min(top, max(2, math.ceil(math.sqrt(n) / 2)))
    ks = [k for k in (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 21, 24) if low <= k <= top]
    return ks if len(ks) <= 8 else ks[:: math.ceil(len(ks) / 8)]


def sample_of(n: int, size: int = SAMPLE, seed: int = SEED) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def silhouette(vectors: np.ndarray, labels: np.ndarray, sample: Optional[np.ndarray] = None) -> float:
    """The mean silhouette (cosine distance) of ``labels`` over ``sample`` (indices of the files), -1..1.

    A file alone in its group counts 0, as in scikit-learn."""
    idx = sample_of(len(labels)) if sample is None else sample
    v, lab = vectors[idx], np.asarray(labels)[idx]
    groups, inv = np.unique(lab, return_inverse=True)
    if len(groups) < 2:
        return 0.0
    dist = 1.0 - v @ v.T
    onehot = np.zeros((len(idx), len(groups)), dtype=np.float32)
    onehot[np.arange(len(idx)), inv] = 1.0
    sums = dist @ onehot  # (n, groups): summed distance to each group's members
    sizes = onehot.sum(axis=0)
    own = sizes[inv] - 1
    a = np.where(own > 0, sums[np.arange(len(idx)), inv] / np.maximum(own, 1), 0.0)
    other = sums / sizes
    other[np.arange(len(idx)), inv] = np.inf
    b = other.min(axis=1)
    s = np.where(own > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def kmeans(vectors: np.ndarray, k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(labels, unit centroids) of spherical k-means with ``k`` groups."""
    import faiss

    n, d = vectors.shape
    train = vectors if n <= TRAIN else vectors[sample_of(n, TRAIN, seed)]
    # a small folder is cheap to group several times over, and one run of it depends on its start
    redo = 10 if n <= 200 else 3 if n <= 2000 else 1
    km = faiss.Kmeans(
        d,
        k,
        niter=NITER,
        spherical=True,
        seed=seed,
        nredo=redo,
        min_points_per_centroid=1,
        max_points_per_centroid=TRAIN,
    )
    km.train(train)
    assert km.centroids is not None  # (trained)
    centroids = normalised(km.centroids)
    return assign(vectors, centroids), centroids


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The nearest centroid (by cosine) of each vector."""
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), 8192):  # (bounded memory at 100k files and 24 centroids)
        out[start : start + 8192] = np.argmax(vectors[start : start + 8192] @ centroids.T, axis=1)
    return out


def cosines(vectors: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The cosine of each vector to its own centroid (a block at a time: no copy of all the centroids' rows)."""
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), 8192):
        part = slice(start, start + 8192)
        out[part] = np.einsum("ij,ij->i", vectors[part], centroids[labels[part]])
    return out


def group(vectors: np.ndarray, seed: int = SEED) -> Optional[Grouping]:
    """The best grouping of ``vectors`` (unit rows) over :func:`ladder`, or None when there are too few to group."""
    ks = ladder(len(vectors))
    if not ks:
        return None
    sample = sample_of(len(vectors), seed=seed)
    best: Optional[Grouping] = None
    if len(ks) == 1:  # nothing to choose: no silhouette to measure
        labels, centroids = _without_empty(*kmeans(vectors, ks[0], seed))
        return Grouping(labels, centroids, 0.0) if len(centroids) >= 2 else None
    for k in ks:
        labels, centroids = kmeans(vectors, k, seed)
        labels, centroids = _without_empty(labels, centroids)
        if len(centroids) < 2:
            continue
        s = silhouette(vectors, labels, sample)
        if best is None or s > best.silhouette:
            best = Grouping(labels, centroids, s)
    return best


def _without_empty(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.unique(labels)
    if len(used) == len(centroids):
        return labels, centroids
    remap = np.full(len(centroids), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[labels], centroids[used]
