"""Which of a prompt's ranked files a query folder lists: the ones that match, not always 20.

A hit of the calibrated embedder carries the probability that it is
relevant (``calibration``): it is listed if that is at least ``min_p``, or
if its words score at least ``min_words`` of the most the prompt's words
could (an agent's exact keywords). Fitted and chosen on the evaluation sets
(scripts/fit_scores.py): held out, the listed set's F1 went from 0.242 to
0.314 over the sets' 181 even questions (docs/BENCHMARKS.md). A filter's files
are judged the same way: their probability does not depend on the others.

Without a probability (another embedder, the embedder away, a file not
embedded yet), the rule from before applies. Fused scores are relative
(each retriever's scores are divided by its best), so the best file of any
prompt scores 1.0, even of one that matches nothing. Two tests decide,
each with its own evidence:

- **relative**: a file scores at least ``relative`` times the fused score
  of the best file that passes the absolute test (a clear drop after the
  real matches ends the list; a file the dense side ranked first on noise
  sets no bar, so a rare word's one match is not cut);
- **absolute**: the file shows some evidence of its own: the cosine of its
  best chunk to the prompt itself (before feedback moved the prompt) is at
  least ``min_cosine``, or its BM25 score is at least ``min_bm25`` of the
  best BM25 score. A prompt whose words appear nowhere and whose meaning is
  near nothing lists nothing.

The defaults are those of best set F1 on the odd-numbered Cranfield
queries among the settings that keep nDCG@10 of what is listed within
0.01 of a fixed 20, checked on the even ones (scripts/bench_listing.py,
docs/BENCHMARKS.md), and read well on the demo folder. The cosine scale is
all-MiniLM-L6-v2's; another embedder needs its own ``min_cosine``.

When the prompt's filter (a time range, a kind, a folder) chose the
files, only the absolute test applies: the filter already narrowed them
down, and "the budget meeting last march" should list each March file about
the budget, not only those close to the best. Files found by a filter
alone (no words to match) carry no scores, and are all kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .calibration import CALIBRATED, LISTED_P
from .search import Hit


@dataclass(frozen=True)
class Cutoff:
    relative: float = 0.65
    min_cosine: float = 0.45
    min_bm25: float = 0.2
    # BM25 is evidence only for a query its words matched well somewhere: the best chunk's
    # coverage (lexical.LexicalIndex.scored) at least ``min_coverage``, or at least ``min_share``
    # of the query's terms in it. "zebra migration patterns" matches one word of a retro
    # ("migration": coverage 0.12, a third of its terms) and lists it no more; "supersonic shock"
    # still lists the notes on shock waves (coverage 0.14, but half its terms). Read on the demo
    # (0.10-0.12 for such prompts, 0.18-0.64 for real ones); Cranfield's lowest is 0.155.
    min_coverage: float = 0.15
    min_share: float = 0.5
    # similar/: a file's best chunk's cosine to the other file's mean vector, at least this, and
    # at least ``similar_relative`` of the closest file's (read on the demo: related files score
    # 0.22 to 0.61 there, unrelated ones 0.02 to 0.2, docs/BENCHMARKS.md)
    similar_min: float = 0.2
    similar_relative: float = 0.7
    # A hit that carries a probability (calibration.py) is listed when it is at least ``min_p``, or
    # when its words score at least ``min_words`` of the most the prompt's could: an agent's
    # keywords ("GMP_NUMB_BITS definition") match whole though their meaning is far, and grep would
    # list the file. On 48 such prompts (two words of each changelog answer), 0.4 lists the answer
    # for 47 with 2.9 files each, near grep -il (48, 2.5 files); 0.5 for 30; without this rule, 24
    # (scripts/fit_scores.py); it costs the questions' F1 0.003 held out.
    min_p: float = LISTED_P
    min_words: float = 0.4


def for_embedder(name: str) -> Cutoff:
    """The cut-off for an index built with the embedder ``name``: an embedder whose
    cosines were not calibrated gives no evidence on its own (BM25 must)."""
    if name == CALIBRATED:
        return Cutoff()
    # (no meaning to fall back on: the words are the only evidence, whatever they matched; and
    # similar/ lists its pool)
    return Cutoff(min_cosine=math.inf, min_coverage=0.0, similar_min=-math.inf, similar_relative=0.0)


def listed(
    hits: Sequence[Hit],
    limit: int,
    cut: Cutoff = Cutoff(),
    filtered: bool = False,
    coverage: Optional[float] = None,
    share: Callable[[], Optional[float]] = lambda: None,
) -> list[Hit]:
    """The files of ``hits`` (best first) a folder lists: at most ``limit``;
    ``filtered``: they all passed the prompt's filter; ``coverage`` and ``share()``: how much of the
    prompt its words matched at best (None: not known, the words count; ``share`` is asked only
    when the coverage falls short)."""
    words_count = coverage is None or coverage >= cut.min_coverage or _at_least(share(), cut.min_share)
    out: list[Hit] = []
    best = None  # the score of the best file with evidence: a noise hit above it sets no bar
    for h in hits:
        if len(out) >= limit:
            break
        if h.bm25 is None and h.dense is None and h.cosine is None:
            out.append(h)  # a filter's match: no words to score
            continue
        if h.probability is not None:
            words = (h.bm25 or 0.0) * (coverage if coverage is not None else 1.0)
            if h.probability >= cut.min_p or (words_count and words >= cut.min_words):
                out.append(h)
            continue
        if not evident(h, cut, words_count):
            continue
        best = h.score if best is None else best
        if not filtered and h.score < cut.relative * best:
            break  # ranked: no later file scores more
        out.append(h)
    return out


def _at_least(value: Optional[float], bar: float) -> bool:
    return value is not None and value >= bar


def similar_bar(closest: float, cut: Cutoff = Cutoff()) -> float:
    """The cosine a file needs to be listed in similar/, given the closest file's: close enough,
    and not far below the closest (a file like no other lists nothing)."""
    return max(cut.similar_min, cut.similar_relative * closest)


def evident(h: Hit, cut: Cutoff, words_count: bool = True) -> bool:
    """Whether a file shows evidence of its own: its words (if the prompt's words matched enough
    anywhere), or its meaning, close enough to the prompt."""
    by_meaning = h.cosine is not None and h.cosine >= cut.min_cosine
    return by_meaning or (words_count and h.bm25 is not None and h.bm25 >= cut.min_bm25)
