"""Hybrid search: BM25 over the full text plus dense vectors, fused per file.

Both retrievers rank chunks; each file takes the score of its best chunk
(BM25 adds half the score of the file's name, so a binary file is found by
its name). BM25 comes from :mod:`semfs.stores.lexical`.
Fusion is a convex combination of normalised scores (each side divided by
its best score for the query), with dense's weight chosen per query by how
much of it the words matched (:mod:`.fusion`). Unlike reciprocal rank
fusion it keeps how far apart the scores are, so a strong dense match is
not dragged down by a weak keyword list (or the other way round).

Then one round of pseudo-relevance feedback on the dense side (Rocchio):
the query vector moves towards the mean vector of the top ``PRF_DOCS``
files of that first fusion, as far as the words anchored them, the
candidate files are scored again with it, and fused again. The keyword
evidence of the first pass thus reaches the dense retriever, which finds
paraphrases BM25 cannot. Parameters: docs/BENCHMARKS.md.

Files of identical content (one SHA-256), or of the same text but for a
few lines (``NEAR``), are one result: the first listed, the others named in
its ``also`` and ``alike``.

Results are checked against the backing folder before they are returned:
a file deleted since it was indexed never shows up.

When the embedder cannot answer (loading, restarting after a crash, off),
hybrid search ranks by BM25 alone and says so (``Found.degraded``).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...errors import ModelUnavailable
from ...models.embedder import Embedder, is_ready
from ...stores import reads
from ...stores.backends import IndexPort
from ...stores.lexical import STOPWORDS, LexicalIndex, query_terms, terms_of_lines
from ...stores.vectors import VectorStore
from . import fusion
from .passages import Passage, choose, whole_lines

CANDIDATES = 200  # chunks fetched from each retriever
PRF_DOCS = 3  # files whose vectors move the query (how far: fusion.feedback_beta)
NAME_WEIGHT = 0.5  # a file name's BM25 score counts half as much as its text's
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# Near-identical files (the same text but for a few lines) are one result too: the share of
# their distinct lines they have in common (Jaccard) at least NEAR. Measured on this machine's
# changelogs and manual pages (docs/BENCHMARKS.md): changelogs of one source differ by a line or
# two and share 0.90 to 0.99 of their lines; of the manual, only dir/ls/vdir (0.90+) are that close,
# while distinct tools with similar pages (sha256sum/sha512sum 0.80-0.85, convert/mogrify 0.85)
# stay apart.
NEAR = 0.9
NEAR_MIN_LINES = 5  # a file of fewer distinct lines is its own result
NEAR_MAX_CHUNKS = 64  # a longer file is compared by its content's hash alone

_TOKEN = re.compile(r"\w+", re.UNICODE)

Accept = Callable[[str, Optional[str], int], bool]  # (path, kind, mtime_ns) -> keep?


@dataclass
class Hit:
    path: str
    score: float
    snippet: str
    bm25: Optional[float] = None  # normalised, when the file was in the BM25 list
    dense: Optional[float] = None  # normalised, when the file was in the dense list
    cosine: Optional[float] = None  # raw cosine of the file's best chunk to the query itself (before feedback)
    unembedded: bool = False  # no vectors yet: ranked by BM25 alone
    chunk_id: int = field(default=0, repr=False)
    also: list[str] = field(default_factory=list)  # files of identical content, listed once (here)
    alike: list[str] = field(default_factory=list)  # files of the same text but for a few lines
    passages: list[Passage] = field(default_factory=list)  # its lines that matched, once listed (with_passages)
    evidence: list[int] = field(default_factory=list, repr=False)  # its best chunks, the stronger side's first
    kind: Optional[str] = field(default=None, repr=False)  # the file's kind, as indexed
    probability: Optional[float] = None  # that it is relevant (calibration.py), where its evidence says


def words_for_names(text: str) -> list[str]:
    """The query's content words, to look for in file names (all its words if it has none)."""
    words = [w.lower() for w in _TOKEN.findall(text)]
    content = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(content))


class Searcher:
    def __init__(
        self,
        backing: Path,
        db,
        vectors: VectorStore,
        embedder: Embedder,
        connect=None,
        lexicon: Optional[LexicalIndex] = None,
        index: Optional[IndexPort] = None,
    ) -> None:
        """``connect``, if given, opens another read connection to the same database:
        BM25 then runs on a second thread while the query is embedded (SQLite and
        torch both release the GIL), instead of one after the other. ``lexicon``
        may be shared by searchers that come and go, to keep its cache. ``index``:
        the adapter whose connection ``db`` is (embedded unless said)."""
        self.backing = Path(backing)
        self.db = db
        self.vectors = vectors
        self.embedder = embedder
        self._connect = connect
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._local = threading.local()
        self.lexicon = lexicon or LexicalIndex()
        self._names_top = index.names_top if index is not None else reads.names_top

    def _words_async(self, query: str, n: int):
        if self._connect is None:
            done: concurrent.futures.Future = concurrent.futures.Future()
            done.set_result(self.words(query, n))
            return done
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="semfs-bm25")
        return self._pool.submit(self._words_on_own_connection, query, n)

    def _words_on_own_connection(self, query: str, n: int):
        if getattr(self._local, "db", None) is None:
            self._local.db = self._connect()
        return self.words(query, n, db=self._local.db)

    # -- the two retrievers, each: {file_id: (score, chunk_id)} ----------------

    def bm25(self, query: str, n: int = CANDIDATES, db=None) -> dict[int, tuple[float, int]]:
        """BM25 of the chunks' text, plus ``NAME_WEIGHT`` times BM25 of the file's name."""
        return self.words(query, n, db)[0]

    def words(self, query: str, n: int = CANDIDATES, db=None) -> tuple[dict[int, tuple[float, int]], float]:
        """:meth:`bm25`, and how much of the query its best chunk matched (:mod:`.fusion`)."""
        db = db or self.db
        top, coverage = self.lexicon.scored(db, query, n)
        file_of = reads.files_of(db, [c for c, _ in top])  # a deleted chunk has none: dropped
        best = best_per_file([(file_of[c], c, s) for c, s in top if c in file_of])
        names = self._names_top(db, words_for_names(query), n)
        only_name = [fid for fid, _ in names if fid not in best]
        first = reads.first_chunks(db, only_name)
        for fid, score in names:
            if fid in best:
                best[fid] = (best[fid][0] + NAME_WEIGHT * score, best[fid][1])
            elif fid in first:
                best[fid] = (NAME_WEIGHT * score, first[fid])
        return best, coverage

    def dense(self, query, n: int = CANDIDATES) -> dict[int, tuple[float, int]]:
        """Dense candidates for a query text, or for a query vector."""
        if len(self.vectors) == 0:
            return {}
        qv = self.embedder.embed([query]) if isinstance(query, str) else query
        scores, ids = self.vectors.search(qv, n)
        if len(ids) == 0:
            return {}
        id_list = [int(i) for i in ids]
        file_of = reads.files_of(self.db, id_list)
        rows = [(file_of[c], c, float(s)) for c, s in zip(id_list, scores) if c in file_of]
        return best_per_file(rows)

    def file_vector(self, file_id: int) -> Optional[np.ndarray]:
        """The mean vector of a file's chunks, or None if it has none."""
        ids = [cid for cid, _ in reads.chunks_with_text(self.db, [file_id])]
        _, vecs = self.vectors.reconstruct_many(ids)  # (one round trip to a PostgreSQL index, not one per chunk)
        return vecs.mean(axis=0) if len(vecs) else None

    # -- fusion ------------------------------------------------------------

    def rank(self, query: str, mode: str = "hybrid", k: int = 10) -> "Ranking":
        n = max(CANDIDATES, 2 * k)  # chunks per retriever: a file may own several of them
        if mode == "bm25":
            lex, coverage = self.words(query, n)
            return Ranking(_sorted(_normalise(lex)), lex, {}, _normalise(lex), {}, coverage=coverage)
        if mode == "dense":
            den = self.dense(query, n)
            return Ranking(_sorted(_normalise(den)), {}, den, {}, _normalise(den), den)
        words_future = self._words_async(query, n)
        try:
            # (asked even with no vectors yet when it is away: its answer says why)
            qv = self.embedder.embed([query]) if len(self.vectors) or not is_ready(self.embedder) else None
        except ModelUnavailable as e:
            # the embedder is loading, restarting or off: the words alone rank
            lex, coverage = words_future.result()
            return Ranking(_sorted(_normalise(lex)), lex, {}, _normalise(lex), {}, degraded=str(e), coverage=coverage)
        den = first_den = self.dense(qv, n) if qv is not None else {}
        lex, coverage = words_future.result()
        weigh = coverage if den else 1.0  # (no meaning to weigh: the words rank alone)
        # A file whose meaning is not computed yet has no dense score: missing, not zero. It is
        # ranked by its BM25 score alone, not pushed below every file that has vectors.
        bare = self._unembedded(lex.keys() - den.keys())
        ranked = _sorted(fusion.fuse(lex, den, weigh, bare=bare))
        beta = fusion.feedback_beta(weigh)
        if qv is not None and ranked and beta > 0:
            top = [v for v in (self.file_vector(f) for f, _ in ranked[:PRF_DOCS]) if v is not None]
            if top:
                moved = qv[0] + beta * np.mean(top, axis=0)
                den = self._rescore(moved, lex.keys() | den.keys())
                ranked = _sorted(fusion.fuse(lex, den, weigh, final=True, bare=bare))
        return Ranking(ranked, lex, den, _normalise(lex), _normalise(den), first_den, bare, coverage=coverage)

    def _unembedded(self, file_ids) -> set[int]:
        """Of ``file_ids``, those with text none of whose chunks has a vector yet."""
        ids = list(file_ids)
        if not ids:
            return set()
        rows = reads.chunks_with_text(self.db, ids)
        with_text = {file_id for _, file_id in rows}
        have = self.vectors.present([cid for cid, _ in rows])
        return with_text - {file_id for cid, file_id in rows if cid in have}

    def _rescore(self, qvec: np.ndarray, file_ids) -> dict[int, tuple[float, int]]:
        """Dense scores of the candidate files' chunks for a moved query vector.

        Only the files already found by either retriever are scored again
        (on Cranfield this gives exactly the ranking of a second full
        search, at a fraction of its cost on a large index).
        """
        rows = reads.chunks_with_text(self.db, file_ids)
        if not rows:
            return {}
        file_of = dict(rows)
        ids, vecs = self.vectors.reconstruct_many(file_of)
        scores = vecs @ (qvec / max(float(np.linalg.norm(qvec)), 1e-12))
        return best_per_file([(file_of[int(cid)], int(cid), float(sc)) for cid, sc in zip(ids, scores)])

    def search(self, query: str, k: int = 10, mode: str = "hybrid", accept: Optional[Accept] = None) -> list[Hit]:
        """The hits of :meth:`find`."""
        return self.find(query, k, mode, accept).hits

    def find(self, query: str, k: int = 10, mode: str = "hybrid", accept: Optional[Accept] = None) -> Found:
        """The ``k`` best files for ``query``; ``accept(path, kind, mtime_ns)``, if given, filters them.

        With a filter and no query text, the accepted files come newest first.
        When a filter leaves none of the matches, the matches are returned
        unfiltered: a folder of near misses beats an empty one.
        """
        if not query.strip():
            return Found(self._filtered_only(accept, k), filtered=True) if accept is not None else Found([])
        r = self.rank(query, mode, k)
        hits = self._hits(r, query, k, accept)
        if accept is not None and not hits:
            return Found(self._hits(r, query, k, None), r.degraded, False, r.coverage, self._share_of(query, r))
        return Found(hits, r.degraded, accept is not None, r.coverage, self._share_of(query, r))

    def _share_of(self, query: str, r: "Ranking") -> Callable[[], Optional[float]]:
        """The share of the query's terms its best BM25 chunk holds (None: no BM25 match), when
        asked (the cut-off asks only for a query its words matched little of)."""

        def share() -> Optional[float]:
            terms = set(query_terms(query))
            if not r.lex or not terms:
                return None
            best_chunk = max(r.lex.values())[1]
            held = terms_of_lines([reads.chunk_text(self.db, best_chunk)])[0]
            return len(terms & held) / len(terms)

        return share

    def _hits(self, r: "Ranking", query: str, k: int, accept: Optional[Accept]) -> list[Hit]:
        hits: list[Hit] = []
        same: dict[str, Hit] = {}  # sha256 -> the hit that lists that content
        lines: list[tuple[frozenset, Hit]] = []  # the listed hits' distinct lines, for near copies
        for pos, (fid, score) in enumerate(r.ranked):
            if len(hits) >= k:
                self._more_copies(r.ranked[pos:], same, accept)
                break
            row = reads.file_row(self.db, fid)
            if row is None or not os.path.lexists(self.backing / row[0]):
                continue  # deleted since it was indexed
            if accept is not None and not accept(row[0], row[1], row[2]):
                continue
            sha = row[3] if row[3] != EMPTY_SHA256 else None  # (empty files are found by name, each its own)
            if sha is not None and sha in same:
                same[sha].also.append(row[0])  # one answer, however many copies of it
                continue
            mine = self._distinct_lines(fid) if sha is not None else None
            near = next((h for theirs, h in lines if mine is not None and _jaccard(mine, theirs) >= NEAR), None)
            if near is not None:
                near.alike.append(row[0])  # the same text but for a few lines
                continue
            # the snippet comes from the chunk of whichever side matched more strongly
            use_dense = fid in r.den and r.den_n.get(fid, 0.0) >= r.lex_n.get(fid, 0.0)
            chunk_id = r.den[fid][1] if use_dense else r.lex[fid][1]
            other = r.lex.get(fid) if use_dense else r.den.get(fid)
            evidence = [chunk_id] + ([other[1]] if other is not None and other[1] != chunk_id else [])
            hits.append(
                Hit(
                    path=row[0],
                    score=round(score, 6),
                    snippet=self.snippet(chunk_id, query),
                    bm25=round(r.lex_n[fid], 6) if fid in r.lex_n else None,
                    dense=round(r.den_n[fid], 6) if fid in r.den_n else None,
                    cosine=round(r.first_den[fid][0], 6) if fid in r.first_den else None,
                    unembedded=fid in r.unembedded,
                    chunk_id=chunk_id,
                    evidence=evidence,
                    kind=row[1],
                )
            )
            if sha is not None:
                same[sha] = hits[-1]
            if mine is not None:
                lines.append((mine, hits[-1]))
        return hits

    def _distinct_lines(self, file_id: int) -> Optional[frozenset]:
        """A file's distinct lines (spaces and case folded), or None if it is too short or long to compare."""
        texts = reads.file_texts(self.db, file_id, NEAR_MAX_CHUNKS)
        if texts is None:
            return None
        got = frozenset(" ".join(ln.split()).lower() for t in texts for ln in t.split("\n") if ln.strip())
        return got if len(got) >= NEAR_MIN_LINES else None

    def _more_copies(self, rest: list[tuple[int, float]], same: dict[str, Hit], accept: Optional[Accept]) -> None:
        """The copies of listed texts among the rest of the ranking, named in their ``also``."""
        for path, kind, mtime, sha in reads.files_with_content(self.db, [f for f, _ in rest], list(same)):
            if os.path.lexists(self.backing / path) and (accept is None or accept(path, kind, mtime)):
                same[sha].also.append(path)

    def with_passages(self, hits: list[Hit], query: str) -> list[Hit]:
        """``hits`` given their passages: made for what is listed, not for all that was ranked."""
        for h in hits:
            if h.evidence and not h.passages:
                h.passages = self.passages(query, h.path, h.kind, h.evidence)
        return hits

    def passages(self, query: str, rel: str, kind: Optional[str], chunk_ids: list[int]) -> list[Passage]:
        """The lines of ``rel`` that matched ``query``, from its chunks ``chunk_ids`` (best first)."""
        got = reads.chunk_lines(self.db, chunk_ids)
        chosen = choose(query, [got[c] for c in chunk_ids if c in got])
        return whole_lines(self.backing, rel, kind, chosen)

    def _filtered_only(self, accept: Accept, k: int) -> list[Hit]:
        hits = []
        for fid, path, kind, mtime in reads.files_newest_first(self.db):
            if accept(path, kind, mtime) and os.path.lexists(self.backing / path):
                chunk = reads.first_chunk(self.db, fid)
                hits.append(
                    Hit(path, 1.0, self.snippet(chunk[0], "") if chunk else "", chunk_id=chunk[0] if chunk else 0)
                )
                if len(hits) >= k:
                    break
        return hits

    def snippet(self, chunk_id: int, query: str, width: int = 200) -> str:
        text = " ".join(reads.chunk_text(self.db, chunk_id).split())
        if len(text) <= width:
            return text
        lower = text.lower()
        words = [w.lower() for w in _TOKEN.findall(query) if w.lower() not in STOPWORDS]
        hits = [lower.find(w) for w in words if lower.find(w) >= 0]
        start = max(0, min(hits) - width // 4) if hits else 0
        if start:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < start + 20 else start
        out = text[start : start + width]
        return ("…" if start else "") + out + ("…" if start + width < len(text) else "")


@dataclass
class Ranking:
    ranked: list[tuple[int, float]]  # (file id, fused score), best first
    lex: dict[int, tuple[float, int]]  # raw BM25: file id -> (score, best chunk)
    den: dict[int, tuple[float, int]]  # raw cosine: file id -> (score, best chunk)
    lex_n: dict[int, float]
    den_n: dict[int, float]
    first_den: dict[int, tuple[float, int]] = field(default_factory=dict)  # raw cosine to the query, before feedback
    unembedded: set[int] = field(default_factory=set)  # files with no vectors yet: ranked by BM25 alone
    degraded: Optional[str] = None  # why it has no dense side, if it has none though one was asked for
    coverage: Optional[float] = None  # how much of the query the best BM25 chunk matched


@dataclass(frozen=True)
class Found:
    """What one search found: its files, why it ranked without the dense side (if it did), and
    whether every file passed the filter it was given (none did: the matches came unfiltered)."""

    hits: list[Hit]
    degraded: Optional[str] = None
    filtered: bool = False
    coverage: Optional[float] = None  # how much of the query its words matched at best (None: no words)
    share: Callable[[], Optional[float]] = lambda: None  # the share of the query's terms its best BM25 chunk holds


def _jaccard(a: frozenset, b: frozenset) -> float:
    if len(a) < NEAR * len(b) or len(b) < NEAR * len(a):
        return 0.0  # (cannot reach NEAR: not worth the intersection)
    both = len(a & b)
    return both / (len(a) + len(b) - both)


def best_per_file(rows) -> dict[int, tuple[float, int]]:
    best: dict[int, tuple[float, int]] = {}
    for fid, cid, score in rows:
        if fid not in best or score > best[fid][0]:
            best[fid] = (score, cid)
    return best


def _sorted(scores: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


_normalise = fusion.by_max
