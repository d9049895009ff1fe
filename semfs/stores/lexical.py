"""BM25 over chunk text: an inverted index of write-once segments in SQLite.

Why not FTS5's ``bm25()``: it scores every row that matches any query term
before ``ORDER BY ... LIMIT`` can cut, and an OR of a prompt's words
matches most of a large folder (80 ms a query at 100k chunks here, the
whole budget of a listing). Here each segment keeps, per term, the
positions and term frequencies of its chunks as packed arrays; a query
reads only its own terms' posting lists and scores them with numpy.

Segments are written once, one per indexing transaction, and merged in the
background when there are too many or too much of one is dead (Lucene's
scheme). A chunk deleted or replaced leaves its postings in its segment
until that segment is merged: queries ask for a few more candidates than
needed and the caller drops chunk ids that no longer exist. Chunk ids come
from AUTOINCREMENT, so a dead posting can never point at a newer chunk.
Corpus statistics (live chunks, total length) are exact; a term's
document frequency still counts dead postings until the merge, as in
Lucene.

Tokens: runs of letters and digits, lower-cased, accents folded (as FTS5's
``unicode61``), English stop words dropped, Porter-stemmed (as FTS5's
``porter``). Chunk length counts every token, stop words included.

The write side (:func:`post_pending`, :func:`forget_file_chunks`,
:func:`maintain`) runs inside the indexer's write transactions; the read
side (:class:`LexicalIndex`) on any connection.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from typing import Iterable, Optional

import numpy as np

from .sql import in_batches, snapshot, write

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
BUILD_CHUNKS = 20_000  # chunks per segment when posting many at once (bounds memory)
MAX_SEGMENTS = 8  # more than this and the smallest are merged
MAX_DEAD = 0.3  # a segment with more of its chunks dead than this is rewritten
PRUNE_FROM = 20_000  # postings left to add: fewer than this are simply scored (the check costs more)
SAMPLE = 50_000  # a term's postings, at most, whose chunks bound the want-th best score from below

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words carry no topic: they are neither indexed nor searched.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves""".split()
)

_stemmers = threading.local()  # PyStemmer objects are not safe to share between threads


def _stem(words: list[str]) -> list[str]:
    st = getattr(_stemmers, "porter", None)
    if st is None:
        import Stemmer

        st = _stemmers.porter = Stemmer.Stemmer("porter")
    return st.stemWords(words)


def words(text: str) -> list[str]:
    """The lower-cased, accent-folded words of ``text``."""
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _WORD.findall(text)


def analyse(text: str) -> tuple[Counter, int]:
    """(term frequencies of the content words, number of tokens) of a chunk."""
    ws = words(text)
    return Counter(_stem([w for w in ws if w not in STOPWORDS])), len(ws)


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, in order."""
    return list(dict.fromkeys(_stem([w for w in words(text) if w not in STOPWORDS])))


def terms_of_lines(lines: list[str]) -> list[set[str]]:
    """The terms of each of ``lines``, as :func:`query_terms` reads them (one stemming call for all)."""
    per_line = [[w for w in words(line) if w not in STOPWORDS] for line in lines]
    unique = list({w for ws in per_line for w in ws})
    stem = dict(zip(unique, _stem(unique)))
    return [{stem[w] for w in ws} for ws in per_line]


def stem_of(unique: list[str]) -> dict[str, str]:
    """word -> its term (Porter stem), for distinct words (one stemming call for all)."""
    return dict(zip(unique, _stem(unique)))


# -- write side ----------------------------------------------------------------


def post_pending(db) -> int:
    """Write segments for the chunks that have none yet; returns how many chunks were posted.

    Call inside a write transaction, after inserting chunks.
    """
    posted = 0
    while True:
        rows = db.execute(
            "SELECT id, text FROM chunks WHERE lex_segment IS NULL ORDER BY id LIMIT ?", [BUILD_CHUNKS]
        ).fetchall()
        if not rows:
            return posted
        posted += len(rows)
        ids: list[int] = []
        lens: list[int] = []
        term_of: list[int] = []
        pos_of: list[int] = []
        tf_of: list[int] = []
        vocab: dict[str, int] = {}
        empty = []
        for cid, text in rows:
            tfs, length = analyse(text)
            if not tfs:
                empty.append(cid)  # nothing to find it by: not part of any segment
                continue
            pos = len(ids)
            ids.append(cid)
            lens.append(min(length, 65535))
            for term, tf in tfs.items():
                term_of.append(vocab.setdefault(term, len(vocab)))
                pos_of.append(pos)
                tf_of.append(min(tf, 65535))
        if empty:
            _set_segment(db, empty, [0] * len(empty), 0)
        if ids:
            terms = list(vocab)
            _write_segment(
                db,
                np.array(ids, np.int64),
                np.array(lens, np.uint16),
                _group(terms, np.array(term_of), np.array(pos_of, np.uint32), np.array(tf_of, np.uint16)),
            )


def _group(terms: list[str], term_idx: np.ndarray, pos: np.ndarray, tf: np.ndarray):
    """Postings grouped by term: yields (term, positions, tfs), positions ascending."""
    order = np.argsort(term_idx, kind="stable")
    term_idx, pos, tf = term_idx[order], pos[order], tf[order]
    bounds = np.flatnonzero(np.diff(term_idx)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(term_idx)]))
    for s, e in zip(starts.tolist(), ends.tolist()):
        yield terms[term_idx[s]], pos[s:e], tf[s:e]


def _write_segment(db, ids: np.ndarray, lens: np.ndarray, postings) -> int:
    seg = db.execute(
        "INSERT INTO lex_segments (n, total_len, dead, dead_len, ids, lens) VALUES (?, ?, 0, 0, ?, ?) RETURNING id",
        [len(ids), int(lens.sum(dtype=np.int64)), ids.tobytes(), lens.tobytes()],
    ).fetchone()[0]
    db.conn.executemany(
        "INSERT INTO lex_postings (term, segment, pos, tf) VALUES (?, ?, ?, ?)",
        ((term, seg, p.astype(np.uint32).tobytes(), f.astype(np.uint16).tobytes()) for term, p, f in postings),
    )
    _set_segment(db, ids.tolist(), lens.tolist(), seg)
    return seg


def _set_segment(db, chunk_ids: list[int], lens: list[int], seg: int) -> None:
    # the length is kept with the chunk for when it dies: the corpus length stays exact
    db.conn.executemany(
        "UPDATE chunks SET lex_segment = ?, lex_len = ? WHERE id = ?", [(seg, n, c) for c, n in zip(chunk_ids, lens)]
    )


def forget_file_chunks(db, file_id: int) -> None:
    """Count the chunks of ``file_id`` as dead in their segments (call before deleting them)."""
    db.execute(
        """UPDATE lex_segments SET dead = dead + d.n, dead_len = dead_len + d.len
           FROM (SELECT c.lex_segment AS seg, count(*) AS n, sum(c.lex_len) AS len FROM chunks c
                 WHERE c.file_id = ? AND c.lex_segment > 0 GROUP BY c.lex_segment) AS d
           WHERE lex_segments.id = d.seg""",
        [file_id],
    )


def maintain(db) -> int:
    """Merge segments when there are too many or too much of one is dead; returns merges done.

    Reads and merges outside any transaction, then writes the result in a
    short one, so the write lock is never held while posting lists are
    rebuilt (FUSE threads recording versions share it).
    """
    merges = 0
    while True:
        segs = db.execute("SELECT id, n, dead FROM lex_segments ORDER BY n - dead, id").fetchall()
        gone = [s for s, n, dead in segs if dead >= n]
        if gone:
            with write(db):
                _drop(db, gone)
            continue
        pick = [s for s, n, dead in segs if dead > MAX_DEAD * n]
        if len(segs) > MAX_SEGMENTS:
            pick = list(dict.fromkeys([s for s, _, _ in segs[: len(segs) - MAX_SEGMENTS // 2 + 1]] + pick))
        if not pick:
            return merges
        if not _merge(db, pick):
            return merges  # the segments changed under us; the next call sees the new ones
        merges += 1


def _merge(db, seg_ids: list[int]) -> bool:
    q = ",".join("?" * len(seg_ids))
    with snapshot(db):
        segs = db.execute(f"SELECT id, ids, lens FROM lex_segments WHERE id IN ({q}) ORDER BY id", seg_ids).fetchall()
        alive = np.array(
            [r[0] for r in db.execute(f"SELECT id FROM chunks WHERE lex_segment IN ({q})", seg_ids)], np.int64
        )
        postings = db.execute(
            f"SELECT term, segment, pos, tf FROM lex_postings WHERE segment IN ({q}) ORDER BY term", seg_ids
        ).fetchall()
    if len(segs) != len(seg_ids):
        return False
    # each old position's place in the new segment, or -1 if its chunk is dead
    new_pos, ids, lens, offset = {}, [], [], 0
    for seg, ids_b, lens_b in segs:
        old_ids = np.frombuffer(ids_b, np.int64)
        keep = np.isin(old_ids, alive)
        place = np.full(len(old_ids), -1, np.int64)
        place[keep] = offset + np.arange(int(keep.sum()))
        offset += int(keep.sum())
        new_pos[seg] = place
        ids.append(old_ids[keep])
        lens.append(np.frombuffer(lens_b, np.uint16)[keep])

    def merged():
        i = 0
        while i < len(postings):
            term = postings[i][0]
            ps, fs = [], []
            while i < len(postings) and postings[i][0] == term:
                _, seg, pos_b, tf_b = postings[i]
                place = new_pos[seg][np.frombuffer(pos_b, np.uint32)]
                keep = place >= 0
                ps.append(place[keep])
                fs.append(np.frombuffer(tf_b, np.uint16)[keep])
                i += 1
            p = np.concatenate(ps)
            if len(p):
                order = np.argsort(p, kind="stable")
                yield term, p[order], np.concatenate(fs)[order]

    all_ids, all_lens = np.concatenate(ids), np.concatenate(lens)
    with write(db):
        still = {r[0] for r in db.execute(f"SELECT id FROM lex_segments WHERE id IN ({q})", seg_ids)}
        if still != set(seg_ids):
            db.conn.rollback()
            return False
        if len(all_ids):
            seg = _write_segment(db, all_ids, all_lens, merged())
            # chunks deleted since the snapshot: dead in the new segment
            now = np.array([r[0] for r in db.execute("SELECT id FROM chunks WHERE lex_segment = ?", [seg])], np.int64)
            dead = ~np.isin(all_ids, now)
            if dead.any():
                db.execute(
                    "UPDATE lex_segments SET dead = ?, dead_len = ? WHERE id = ?",
                    [int(dead.sum()), int(all_lens[dead].sum(dtype=np.int64)), seg],
                )
        _drop(db, seg_ids)
    log.debug("merged lexical segments %s into %d chunks", seg_ids, len(all_ids))
    return True


def _drop(db, seg_ids: list[int]) -> None:
    q = ",".join("?" * len(seg_ids))
    db.execute(f"DELETE FROM lex_postings WHERE segment IN ({q})", seg_ids)
    db.execute(f"DELETE FROM lex_segments WHERE id IN ({q})", seg_ids)


# -- read side -----------------------------------------------------------------


class LexicalIndex:
    """BM25 top chunks for a query. Keeps each segment's chunk ids and lengths in
    memory (segments never change, so neither can these); one instance may
    serve several connections and threads."""

    def __init__(self) -> None:
        self._segs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._norm: dict[int, tuple[float, np.ndarray]] = {}  # segment -> (mean length, length norms)
        self._lock = threading.Lock()

    def top(self, db, query: str, n: int) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, score), best first, plus as many more as there
        are dead chunks (at most ``n``): ids of deleted chunks may be among them."""
        return self.scored(db, query, n)[0]

    def scored(self, db, query: str, n: int) -> tuple[list[tuple[int, float]], float]:
        """:meth:`top`, and how much of the query the best chunk matched: its score over the
        most any chunk could score (every term, each as weighty as its idf allows; a term no
        chunk holds counts as the rarest). Near 1 when the best chunk holds the query's rare
        words; near 0 when only its common ones matched anywhere."""
        terms = query_terms(query)
        if not terms:
            return [], 0.0
        with snapshot(db):  # segments and postings as of one moment
            stats = db.execute("SELECT id, n, total_len, dead, dead_len FROM lex_segments").fetchall()
            q = ",".join("?" * len(terms))
            rows = db.execute(f"SELECT term, segment, pos, tf FROM lex_postings WHERE term IN ({q})", terms).fetchall()
            segs = self._segments(db, [s[0] for s in stats])
        live = sum(s[1] - s[3] for s in stats)
        if live <= 0 or not rows:
            return [], 0.0
        avgdl = max(sum(s[2] - s[4] for s in stats) / live, 1.0)
        df: Counter = Counter()
        by_term: dict[str, list] = {}
        for row in rows:
            df[row[0]] += len(row[2]) // 4
            by_term.setdefault(row[0], []).append(row)
        weight = {t: idf(live, df[t]) for t in df}
        want = n + min(n, sum(s[3] for s in stats))
        acc = {seg: np.zeros(len(segs[seg][0]), np.float32) for seg in {r[1] for r in rows}}
        cand = self._accumulate(by_term, weight, segs, acc, avgdl, want)
        best_ids, best_scores = [], []
        for seg, scores in acc.items():
            at = cand[seg] if cand is not None else np.arange(len(scores))
            got = scores[at]
            k = min(want, len(got))
            if k == 0:
                continue
            idx = np.argpartition(-got, k - 1)[:k] if k < len(got) else np.arange(len(got))
            idx = idx[got[idx] > 0]
            best_ids.append(segs[seg][0][at[idx]])
            best_scores.append(got[idx])
        if not best_ids:
            return [], 0.0
        all_ids, all_scores = np.concatenate(best_ids), np.concatenate(best_scores)
        order = np.argsort(-all_scores, kind="stable")[:want]
        ranked = list(zip(all_ids[order].tolist(), all_scores[order].astype(float).tolist()))
        most = sum(idf(live, df[t]) for t in set(terms)) * (K1 + 1)
        return ranked, (min(1.0, ranked[0][1] / most) if ranked and most > 0 else 0.0)

    def _accumulate(self, by_term, weight, segs, acc, avgdl: float, want: int):
        """Add each term's BM25 into ``acc`` (per segment), rarest term first; returns the
        positions whose scores are complete, per segment, or None for all of them.

        MaxScore (Turtle and Flood): a term adds at most idf * (K1 + 1) to a chunk. Once the
        ``want``-th best score so far beats what all the terms left could add, a chunk not yet
        near it can never reach the top; the common terms left (the longest posting lists)
        are then looked up for the chunks that can, not scored for every chunk that holds them.
        The result is the same top ``want``, exactly."""
        order = sorted(by_term, key=lambda t: -weight[t])
        rest = sum(weight[t] for t in order) * (K1 + 1)  # the most the terms not yet added can add
        left = sum(len(r[2]) // 4 for t in order for r in by_term[t])  # their postings
        first: list[tuple[int, np.ndarray]] = []  # (segment, positions) of the rarest term found often enough
        cand: Optional[dict[int, np.ndarray]] = None  # the chunks still in the running, per segment ...
        alive: dict[int, np.ndarray] = {}  # ... and as a mask
        for term in order:
            rest -= weight[term] * (K1 + 1)
            w = np.float32(weight[term])
            mine_now: list[tuple[int, np.ndarray]] = []
            for _, seg, pos_b, tf_b in by_term[term]:
                left -= len(pos_b) // 4
                norm = self._norms(seg, segs[seg][1], avgdl)
                pos = np.frombuffer(pos_b, np.uint32)
                tf = np.frombuffer(tf_b, np.uint16)
                if cand is not None:  # only the chunks still in the running
                    keep = alive[seg][pos]
                    pos, tf = pos[keep], tf[keep]
                else:
                    mine_now.append((seg, pos[:SAMPLE]))
                t = tf.astype(np.float32)
                acc[seg][pos] += (w * np.float32(K1 + 1)) * t / (t + norm[pos])
            if cand is None and left > PRUNE_FROM:
                if not first and sum(len(p) for _, p in mine_now) >= want:
                    first = mine_now
                # the want-th best of any want distinct chunks is at most the want-th best of all:
                # those of the rarest term seen often enough, and those of this one
                theta = max(_kth(acc, first, want), _kth(acc, mine_now, want))
                if theta > rest:
                    cand = {seg: np.flatnonzero(a >= theta - rest) for seg, a in acc.items()}
                    alive = {seg: a >= theta - rest for seg, a in acc.items()}
            elif cand is not None and rest > 0:  # the scores grew: fewer chunks can still make it
                theta = _kth(acc, list(cand.items()), want)
                for seg, c in cand.items():
                    out = acc[seg][c] < theta - rest
                    if out.any():
                        alive[seg][c[out]] = False
                        cand[seg] = c[~out]
        return cand

    def _norms(self, seg: int, lens: np.ndarray, avgdl: float) -> np.ndarray:
        """BM25's length norm of each chunk of a segment (kept while the mean length holds)."""
        with self._lock:
            got = self._norm.get(seg)
        if got is None or got[0] != avgdl:
            got = (avgdl, (K1 * (1 - B + B * lens / avgdl)).astype(np.float32))
            with self._lock:
                self._norm[seg] = got
        return got[1]

    def _segments(self, db, seg_ids: Iterable[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        wanted = set(seg_ids)
        with self._lock:
            have = {s: v for s, v in self._segs.items() if s in wanted}
        missing = wanted - have.keys()
        for seg, ids_b, lens_b in in_batches(db, "SELECT id, ids, lens FROM lex_segments WHERE id IN ({ids})", missing):
            have[seg] = (np.frombuffer(ids_b, np.int64), np.frombuffer(lens_b, np.uint16).astype(np.float32))
        with self._lock:
            self._segs = dict(have)
            self._norm = {s: v for s, v in self._norm.items() if s in wanted}
        return have


def _kth(acc: dict[int, np.ndarray], where: list[tuple[int, np.ndarray]], k: int) -> float:
    """The ``k``-th best score at ``where`` ((segment, distinct positions)), 0 if fewer."""
    if sum(len(p) for _, p in where) < k:
        return 0.0
    scores = np.concatenate([acc[seg][p] for seg, p in where])
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def idf(n: int, df: int) -> float:
    """FTS5's BM25 idf: log((N - df + 0.5) / (df + 0.5)), floored just above zero.

    ``df`` may count dead postings and so exceed ``n`` until a merge.
    """
    df = min(df, n)
    v = math.log((n - df + 0.5) / (df + 0.5))
    return v if v > 0 else 1e-6


def status(db) -> dict:
    row = db.execute("SELECT count(*), coalesce(sum(n - dead), 0), coalesce(sum(dead), 0) FROM lex_segments").fetchone()
    return {"segments": row[0], "chunks": row[1], "dead": row[2]}
