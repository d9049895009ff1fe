"""What topics are made from: each indexed file's vector (the mean of its chunks') and opening text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ...stores import reads
from .cluster import normalised

BATCH = 10_000  # chunk vectors read at a time (the vector store's lock is held for each)
TEXT_CHUNKS = 2  # the chunks of a file whose words name its topic: its opening


@dataclass
class Corpus:
    """The files that have vectors, in one order: ``ids[i]``, ``shas[i]``, ``paths[i]``, ``vectors[i]``."""

    ids: np.ndarray  # (n,) int64 file ids
    shas: list[Optional[str]]
    paths: list[str]
    vectors: np.ndarray  # (n, d) unit rows
    texts: Callable[[list[int]], dict[int, str]] = field(repr=False)  # file ids -> their opening text

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> "Corpus":
        return Corpus(
            self.ids[rows], [self.shas[i] for i in rows], [self.paths[i] for i in rows], self.vectors[rows], self.texts
        )


def read(db, vectors, only: Optional[set[int]] = None) -> Corpus:
    """The corpus of an index: its database connection ``db`` and vector store ``vectors``
    (either adapter's); ``only``: just these file ids (the files an update adds)."""
    files = {fid: (path, sha) for fid, path, sha in reads.every_file(db) if only is None or fid in only}
    pairs = reads.vector_chunks(db) if only is None else reads.chunks_with_text(db, sorted(files))
    pairs = [(c, f) for c, f in pairs if f in files]
    sums: dict[int, np.ndarray] = {}
    for start in range(0, len(pairs), BATCH):
        part = pairs[start : start + BATCH]
        file_of = dict(part)
        ids, vecs = vectors.reconstruct_many([c for c, _ in part])
        if not len(ids):
            continue
        owners = np.array([file_of[int(c)] for c in ids], dtype=np.int64)
        uniq, inv = np.unique(owners, return_inverse=True)
        acc = np.zeros((len(uniq), vecs.shape[1]), dtype=np.float32)
        np.add.at(acc, inv, vecs)
        for f, v in zip(uniq.tolist(), acc):
            sums[f] = sums[f] + v if f in sums else v
    order = sorted(sums)
    dim = getattr(vectors, "dim", 0)
    matrix = normalised(np.stack([sums[f] for f in order])) if order else np.zeros((0, dim), dtype=np.float32)
    return Corpus(
        np.array(order, dtype=np.int64),
        [files[f][1] for f in order],
        [files[f][0] for f in order],
        matrix,
        lambda file_ids: reads.opening_texts(db, file_ids, TEXT_CHUNKS),
    )
