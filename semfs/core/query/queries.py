"""Prompts as folders: the results behind ``query/<prompt>/`` and ``similar/<file>/``.

Everything here answers from the live index of a mount: the indexer's own
vector store (so a file indexed a moment ago is found) and a SQLite
connection per calling thread (FUSE threads call in concurrently).
Results are cached per prompt until the index changes (the index port's
change generation, bumped by the indexer and by other mounts' news), so
a file manager listing a folder twice searches once, and a deleted or
changed file never lingers in a listing.

How folders are named and what they show (rank prefixes, ``.results.json``,
probe names, prompts in folder names) is decided in
:mod:`semfs.fs.virtual.results`; this module answers with matches.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ...errors import SemfsError
from ...models.embedder import Embedder, is_ready
from ...stores import local, reads
from ...stores import metadata as md
from ...stores.backends import EmbeddedIndex
from ...stores.healing import report_damage, wait_healed
from ...stores.lexical import LexicalIndex
from ...stores.local import LocalStore
from ...stores.sql import ThreadConnections
from ...stores.vectors import VectorStore
from .cutoff import for_embedder, similar_bar
from .groups import group_of
from .pipeline import answer
from .search import Hit, Searcher

log = logging.getLogger(__name__)

TOP_K = 20
MORE_K = 50  # files .more/ lists: the ranking past the cut-off, for an agent that asks for more
# seconds an open of summary/<file> waits for the model's gist (it takes 3-6 s on 2 cores): then the
# file's own lines are shown at once, and the gist, made meanwhile, comes with the next read
SUMMARY_WAIT = 2.0
HYBRID = "hybrid"


@dataclass(frozen=True)
class Match:
    """One file a prompt (or a file, for similar/) finds, best first; how it is named and shown is fs's business."""

    path: str  # the file, relative to the backing folder
    score: float  # the probability that it is relevant where its evidence allows (calibration.py), else fused
    snippet: str
    retrieval: str = HYBRID  # or "bm25 only (<why the embedder could not answer>)"
    also: tuple[str, ...] = ()  # files of identical content, listed once as this one
    alike: tuple[str, ...] = ()  # files of the same text but for a few lines (their lines may differ)
    passages: tuple = ()  # its lines that matched (core.query.passages.Passage), best first
    group: Optional[str] = None  # its group, when the prompt groups its results ("... by month": groups.py)

    def row(self) -> dict:
        """The result as JSON gives it (``.results.json``, ``semfs search --json``, the MCP tools):
        path, score, snippet, passages [{line, text}], and the copies listed with it."""
        return {
            "path": self.path,
            "score": self.score,
            "snippet": self.snippet,
            "passages": [{"line": p.line, "text": p.text} for p in self.passages],
            **({"also": list(self.also)} if self.also else {}),
            **({"alike": list(self.alike)} if self.alike else {}),
        }


SEARCH_WAIT = 5.0  # s a caller waits for the same search running on another thread
HEALED_WAIT = 5.0  # s a search that met a damaged database waits for the new one
OPEN_WAIT = 2.0  # s a query waits for a mount's indexer to open the index, then lists nothing yet
NOT_YET = "bm25 only (this file's meaning is not computed yet)"


def matches(
    hits: list[Hit], degraded: Optional[str] = None, group: Optional[Callable[[Hit], str]] = None
) -> list[Match]:
    how = HYBRID if degraded is None else f"bm25 only ({degraded})"
    return [
        Match(
            h.path,
            h.score if h.probability is None else h.probability,
            h.snippet,
            NOT_YET if h.unembedded and degraded is None else how,
            also=tuple(h.also),
            alike=tuple(h.alike),
            passages=tuple(h.passages),
            group=group(h) if group is not None else None,
        )
        for h in hits
    ]


class QueryService:
    def __init__(
        self,
        backing: Path,
        state_dir: Path,
        embedder: Embedder,
        vectors: Callable[[], Optional[VectorStore]],
        generation: Optional[Callable[[], int]] = None,
        k: int = TOP_K,
        cache_size: int = 256,
        llm=None,
        index=None,
        local=None,
        progress: Callable[[], Optional[tuple[int, int]]] = lambda: None,
        meaning_behind: Callable[[], int] = lambda: 0,
        opened: Callable[[float], bool] = lambda timeout: True,
        topics=None,
    ) -> None:
        """``progress``: (files indexed, files known) while indexing is behind, else None;
        ``meaning_behind``: how many chunks still wait for their vectors; ``opened(timeout)``:
        waits for the indexer to open the index (a mount's first seconds); ``topics``: the
        mount's grouping by meaning (core.topics.service.Topics), for topics/."""
        self.backing = Path(backing)
        self.state_dir = Path(state_dir)
        self.embedder = embedder
        self._vectors = vectors
        self.indexing = progress
        self.meaning_behind = meaning_behind
        self._opened = opened
        self.k = k  # entries a folder shows
        self.pool = 2 * k  # results kept per prompt: a caller who may not see some still gets k
        # summaries and saved queries are this machine's; files and chunks are the index's (maybe
        # PostgreSQL): one pool for each store, even where both are the state dir's database
        self._index = index if index is not None else EmbeddedIndex(self.state_dir)
        self._local = local if local is not None else LocalStore(self.state_dir)
        self._index_conns = ThreadConnections(self._index.open_db)
        self._generation = generation if generation is not None else (lambda: self._index.generation)
        self._lexicon = LexicalIndex()  # shared: it caches segments across queries
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._saved: dict[str, tuple[tuple[int, bool], list[Match]]] = {}  # prompt -> (version, files)
        self._running: dict = {}  # cache key -> Event set when its search is done
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.llm = llm  # for summaries
        self.topics = topics
        self.cutoff = for_embedder(embedder.name)  # which matches are good enough to list

    def _db(self):
        return self._local.db()

    def _idb(self):
        return self._index_conns.get()

    def _searcher(self) -> Optional[Searcher]:
        vectors = self._vectors()
        if vectors is None and self._opened(OPEN_WAIT):
            vectors = self._vectors()
        if vectors is None:
            return None  # the indexer has not opened the index yet
        return Searcher(self.backing, self._idb(), vectors, self.embedder, lexicon=self._lexicon, index=self._index)

    def on_healed(self) -> None:
        """The database was damaged and is a new one now: what was cached from the old one goes
        (its BM25 segments are known by id; results by a generation the indexer bumps too)."""
        with self._lock:
            self._lexicon = LexicalIndex()
            self._cache.clear()

    def close(self) -> None:
        """Close the connection this thread opened (other threads' close when they end)."""
        self._local.close_mine()
        self._index_conns.close_mine()

    def _cached(self, key, compute):
        # A listing made while the embedder was away is kept while it stays
        # away (names once listed keep resolving), and made again once it is back.
        # One search per key at a time: a file manager asks for a new folder's listing and its
        # entries on several FUSE threads at once, and they wait for the first one's answer.
        key = (key, self._generation(), is_ready(self.embedder))
        mine: Optional[threading.Event] = None
        while True:
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
                running = self._running.get(key)
                if running is None:
                    mine = self._running[key] = threading.Event()
                    break
            if not running.wait(SEARCH_WAIT):
                break  # a search that takes this long: compute our own
        try:
            try:
                value = compute()
            except Exception as e:  # a damaged database: asked again of the new one, once it is there
                if not (report_damage(self.state_dir, e) and wait_healed(self.state_dir, HEALED_WAIT)):
                    raise
                value = compute()
            if key[-1] and any(m.retrieval not in (HYBRID, NOT_YET) for m in value):
                return value  # the embedder failed mid-query: ask it again next time
            with self._lock:
                self._cache[key] = value
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return value
        finally:
            if mine is not None:
                with self._lock:
                    del self._running[key]
                mine.set()

    # -- query folders -----------------------------------------------------

    def query(self, prompt: str) -> list[Match]:
        """The files ``prompt`` matches, best first (at most ``pool`` of them).

        The prompt is read by the rules alone. The LLM's keywords were
        tried and left out: on Cranfield they moved nDCG@10 from 0.439 to
        0.440 while changing 0.6 of 20 listed names per prompt, and on the
        prompts of tests/data the rules already find every keyword
        (docs/BENCHMARKS.md); a reading that came late renamed the entries
        of a folder already listed.
        """

        def compute():
            s = self._searcher()
            if s is None:
                return []
            t0 = time.monotonic()
            res = answer(s, prompt, self.pool, backing=self.backing, cut=self.cutoff)
            by = res.reading.group_by if res.reading is not None else None
            found = matches(
                res.hits, res.degraded, (lambda h: group_of(self.backing, h.path, h.kind, by)) if by else None
            )
            log.info("search %r: %d of %d listed in %.0f ms", prompt, len(found), res.ranked, _ms(t0))
            return found

        return self._cached(("query", prompt), compute)

    def ranking(self, prompt: str) -> list[Match]:
        """The files ``prompt`` ranks, past the cut-off: what ``query/<prompt>/.more/`` lists
        (``MORE_K`` and ``k`` more, so a caller who may not see some still gets ``MORE_K``)."""

        def compute():
            s = self._searcher()
            if s is None:
                return []
            t0 = time.monotonic()
            res = answer(s, prompt, MORE_K + self.k, backing=self.backing)
            log.info("search %r, whole ranking: %d ranked in %.0f ms", prompt, res.ranked, _ms(t0))
            return matches(res.hits, res.degraded)

        return self._cached(("ranking", prompt), compute)

    def saved_query(self, prompt: str) -> list[Match]:
        """A saved query's files, as :meth:`refresh_saved` last found them: a listing searches
        only a query saved since (a file manager's Properties lists every saved folder)."""
        with self._lock:
            got = self._saved.get(prompt)
        if got is not None:
            if got[0] == self._version():
                return got[1]
            # the index changed since: until the background searches again, no file deleted
            # meanwhile is listed (a search checks the disk; these results were checked then)
            return [m for m in got[1] if os.path.lexists(self.backing / m.path)]
        version = self._version()
        found = self.query(prompt)
        with self._lock:
            self._saved[prompt] = (version, found)
        return found

    def refresh_saved(self) -> int:
        """Search again the saved queries found before the index last changed (or the embedder
        came or went); returns how many. The daemon calls it every few seconds."""
        version = self._version()
        prompts = set(dict(local.saved_queries(self._db())).values())
        with self._lock:
            stale = [p for p in prompts if self._saved.get(p, (None,))[0] != version]
            for gone in set(self._saved) - prompts:
                del self._saved[gone]
        for prompt in stale:
            found = self.query(prompt)
            with self._lock:
                self._saved[prompt] = (version, found)
        return len(stale)

    def _version(self) -> tuple[int, bool]:
        return self._generation(), is_ready(self.embedder)

    def similar(self, rel: str) -> list[Match]:
        """The files whose content is closest to that of ``rel``, best first (``pool`` of them)."""

        def compute():
            s = self._searcher()
            row = md.get_file(self._idb(), rel)
            if s is None or row is None:
                return []
            log.info("search for files similar to %s", rel)
            vec = s.file_vector(row.id)
            if vec is None:
                return self._similar_by_words(s, row)
            best = s.dense(vec.reshape(1, -1), 4 * self.pool + 10)
            best.pop(row.id, None)
            hits: list[Hit] = []
            bar: Optional[float] = None  # set by the closest file there is (ranked: all after it score less)
            for fid, (raw, chunk) in sorted(best.items(), key=lambda kv: kv[1][0], reverse=True):
                score = round(raw, 6)
                if bar is not None and score < bar:
                    break
                row = reads.file_row(self._idb(), fid)
                if row is None or not os.path.lexists(self.backing / row[0]):
                    continue
                if bar is None:
                    bar = similar_bar(score, self.cutoff)
                    if score < bar:
                        break  # like no other file
                passages = s.passages("", row[0], row[1], [chunk])  # (no words: the closest chunk's first line)
                hits.append(Hit(row[0], score, s.snippet(chunk, ""), passages=passages))
                if len(hits) >= self.pool:
                    break
            return matches(hits)

        return self._cached(("similar", rel), compute)

    def _similar_by_words(self, s: Searcher, row) -> list[Match]:
        """similar/ for a file whose vectors are not there yet: BM25 of its opening words."""
        first = reads.first_chunk(self._idb(), row.id)
        words = " ".join((first[1] if first else "").split()[:64])
        if not words:
            return []
        hits = [h for h in s.search(words, k=self.pool + 1, mode="bm25") if h.path != row.path][: self.pool]
        return matches(hits, "the file's vectors are not computed yet")

    # -- summaries -----------------------------------------------------------

    def summary(self, rel: str) -> bytes:
        """The text of ``summary/<rel>``: generated once per content (this may take seconds)."""
        from .summaries import summarise

        model = getattr(self.llm, "model_path", None)
        t0 = time.monotonic()
        try:
            text = summarise(
                self.backing, rel, self._db(), self.llm, model.name if model else "none", timeout=SUMMARY_WAIT
            )
        except SemfsError as e:
            text = f"({e})"
        log.info("summary of %s: %d characters in %.0f ms", rel, len(text), _ms(t0))
        return (text + "\n").encode()

    def cached_summary_size(self, rel: str) -> Optional[int]:
        """The size of ``summary/<rel>`` if it is already known, without reading the file or asking the model."""
        model = getattr(self.llm, "model_path", None)
        row = md.get_file(self._idb(), rel)
        if model is None or row is None or row.sha256 is None:
            return None
        try:
            st = os.stat(self.backing / rel)
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != (row.size, row.mtime_ns):
            return None  # changed since it was indexed: its summary is not known yet
        from .summaries import cache_key

        cached = local.get_summary(self._db(), row.sha256, cache_key(model.name))
        return None if cached is None else len((cached + "\n").encode())

    # -- saved queries -----------------------------------------------------

    def saved(self) -> list[str]:
        return [name for name, _ in local.saved_queries(self._db())]

    def saved_prompt(self, name: str) -> Optional[str]:
        return dict(local.saved_queries(self._db())).get(name)

    def save(self, name: str, prompt: str) -> None:
        local.save_query(self._db(), name, prompt)

    def rename(self, old: str, new: str, prompt: str) -> bool:
        return local.rename_query(self._db(), old, new, prompt)

    def unsave(self, name: str) -> bool:
        return local.delete_query(self._db(), name)


def _ms(since: float) -> float:
    return (time.monotonic() - since) * 1000
