"""How the hybrid search fuses its two candidate lists, for each query by how much its words matched.

Each side gives, per file, the score of its best chunk: BM25 (plus half the
file name's) and the cosine of the query. Each is divided by its best, and
the two are mixed with dense weighted ``alpha``; a file with no vectors yet
(``bare``) is ranked by its BM25 alone.

The sides are not equally sure of every query. When the best BM25 chunk
holds the query's rare words, the words are the evidence (a package name,
an option, "base 256"); when BM25 matched only the query's common words (a
question put in other words than its answer's), its list is noise and the
meaning is all there is. The lexical index says which: its *coverage* is
the best chunk's score over the most any chunk could score for that query
(:meth:`semfs.stores.lexical.LexicalIndex.scored`). So ``alpha`` goes from
``ALPHA_LO`` at coverage ``SURE_WORDS`` and above to 1.0 at ``NO_WORDS`` and
below, and ``FEEDBACK_SHIFT`` more after feedback. Feedback (the query moved
towards its first pass's best files) is only as strong as the words that
chose those files: none below ``FEEDBACK_FROM``, full from ``FEEDBACK_FULL``
on; without words to anchor them, the first pass's best files are dense's
own guesses, and moving towards them drifts to whatever the collection is
mostly about.

Chosen on the odd-numbered questions of three collections and checked on
the even ones, against the fusion before it (dense 0.6 then 0.8, full
feedback always) and z-score variants (scripts/tune_fusion.py holds them),
docs/BENCHMARKS.md. Where the words are sure it is that fusion unchanged.
"""

from __future__ import annotations

Scores = dict[int, tuple[float, int]]  # file id -> (score, best chunk)

ALPHA_LO = 0.6  # dense's weight in the first pass when the words matched the query's rare ones
FEEDBACK_SHIFT = 0.2  # and how much more after feedback (0.8, the fusion's weight before issue 24)
SURE_WORDS = 0.25  # coverage from which the words weigh fully
NO_WORDS = 0.10  # coverage up to which the meaning alone ranks
FEEDBACK_BETA = 2.0  # how far feedback moves the query towards the first pass's best files, at most
FEEDBACK_FROM = 0.15  # coverage below which there is no feedback
FEEDBACK_FULL = 0.35  # and from which it is full


def _ramp(x: float, lo: float, hi: float) -> float:
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


def alpha(coverage: float, final: bool) -> float:
    """Dense's weight for a query whose best BM25 chunk scored ``coverage`` of the most it could."""
    a = 1.0 + (ALPHA_LO - 1.0) * _ramp(coverage, NO_WORDS, SURE_WORDS)
    return min(1.0, a + (FEEDBACK_SHIFT if final else 0.0))


def feedback_beta(coverage: float) -> float:
    """How far feedback moves the query (0: no feedback)."""
    return FEEDBACK_BETA * _ramp(coverage, FEEDBACK_FROM, FEEDBACK_FULL)


def by_max(scores: Scores) -> dict[int, float]:
    """Each score divided by the side's best (0 for a side whose best is not positive)."""
    if not scores:
        return {}
    top = max(s for s, _ in scores.values())
    if top <= 0:
        return {fid: 0.0 for fid in scores}
    return {fid: max(0.0, s / top) for fid, (s, _) in scores.items()}


def mix(lex_n: dict[int, float], den_n: dict[int, float], a: float, bare=frozenset()) -> dict[int, float]:
    """``a`` dense + the rest BM25; a file in ``bare`` (no vectors yet) scores its BM25 alone.
    (BM25 breaks dense's ties, at 1.0 too: the files dense did not return are not in random order.)"""
    return {
        f: lex_n.get(f, 0.0)
        if f in bare
        else a * den_n.get(f, 0.0) + (1 - a) * lex_n.get(f, 0.0) + TIE * lex_n.get(f, 0.0)
        for f in lex_n.keys() | den_n.keys()
    }


TIE = 1e-6


def fuse(lex: Scores, den: Scores, coverage: float, final: bool = False, bare=frozenset()) -> dict[int, float]:
    """The served fusion of one pass (``final``: after feedback)."""
    return mix(by_max(lex), by_max(den), alpha(coverage, final), bare)
