"""What topics are made from: each indexed file's vector (the mean of its chunks') and opening text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ...stores import reads

BATCH = 10_000  # chunk vectors read at a time (the vector store's lock is held for each)
TEXT_CHUNKS = 2  # the chunks of a file whose words name its topic: its opening
# files grouped at most: of more, this many chosen at random are grouped and the others placed
# in the nearest topic, as many at a time (at 599k files all of them held 2.5 GB; BENCHMARKS.md)
SAMPLE = 100_000


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


def sampled(db, vectors, seed: int = 0) -> tuple[Corpus, list[int]]:
    """(the corpus of up to ``SAMPLE`` files chosen at random, the ids of the other files with vectors)."""
    with_text = reads.files_with_text(db)
    if len(with_text) <= SAMPLE:
        return read(db, vectors), []
    pick = np.random.default_rng(seed).permutation(len(with_text))
    chosen = {with_text[i] for i in pick[:SAMPLE].tolist()}
    return read(db, vectors, only=chosen), [with_text[i] for i in sorted(pick[SAMPLE:].tolist())]


def read(db, vectors, only: Optional[set[int]] = None) -> Corpus:
    """The corpus of an index: its database connection ``db`` and vector store ``vectors``
    (either adapter's); ``only``: just these file ids (the files an update adds)."""
    files = {fid: (path, sha) for fid, path, sha in reads.every_file(db) if only is None or fid in only}
    pairs = reads.vector_chunks(db) if only is None else reads.chunks_with_text(db, sorted(files))
    pairs = [(c, f) for c, f in pairs if f in files]
    order = sorted({f for _, f in pairs})
    row = {f: i for i, f in enumerate(order)}
    # one matrix summed into (at 100k files a dict of per-file arrays, then a stack, held twice this)
    matrix = np.zeros((len(order), vectors.dim), dtype=np.float32)
    got = np.zeros(len(order), dtype=bool)
    for start in range(0, len(pairs), BATCH):
        part = pairs[start : start + BATCH]
        file_of = dict(part)
        ids, vecs = vectors.reconstruct_many([c for c, _ in part])
        if not len(ids):
            continue
        rows = np.fromiter((row[file_of[int(c)]] for c in ids), dtype=np.int64, count=len(ids))
        np.add.at(matrix, rows, vecs)
        got[rows] = True
    if not got.all():  # files whose chunks have no vector yet
        keep = np.flatnonzero(got)
        matrix, order = matrix[keep], [order[i] for i in keep]
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)  # (in place)
    return Corpus(
        np.array(order, dtype=np.int64),
        [files[f][1] for f in order],
        [files[f][0] for f in order],
        matrix,
        lambda file_ids: reads.opening_texts(db, file_ids, TEXT_CHUNKS),
    )
