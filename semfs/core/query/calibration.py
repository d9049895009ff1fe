"""A hit's score as the probability that it is relevant: comparable across prompts (issue 24, item 5).

Fused scores are relative (the best file of any prompt scores 1.0, even of
a prompt that matches nothing), so they say nothing across prompts. The
probability comes from a logistic regression over a hit's evidence that
means the same in every prompt:

- the raw cosine of its best chunk to the prompt (all-MiniLM-L6-v2's scale);
- its BM25 score as a share of the most the prompt's words could score
  anywhere (its normalised BM25 times the prompt's coverage);
- its fused score and its rank, which say how it stands among the others.

The coefficients were fitted by scripts/fit_scores.py on the odd-numbered
questions of Cranfield, the Debian changelogs (both forms) and the manual's
pages, each collection weighted alike, and checked on the even ones
(docs/BENCHMARKS.md). They hold for that embedder only; another one's
cosines mean something else, and its hits keep their fused scores.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

from .search import Hit

CALIBRATED = "all-MiniLM-L6-v2"  # the embedder whose cosines the coefficients were fitted on

INTERCEPT = -6.3804
WEIGHTS = (7.0374, 0.2846, 2.1405, -0.6852)
# A folder lists a file this likely to be relevant (cutoff.py). Of the settings tried on the odd
# questions (scripts/fit_scores.py --grid), 0.15 had the best mean F1 there (0.402, held out 0.281)
# and 0.1 nearly (0.386, held out 0.307; with cutoff's words rule 0.371 and 0.304); 0.1 keeps a
# short prompt's second file ("budget notes": the household budget, p 0.125).
LISTED_P = 0.1


def features(
    cosine: Optional[float], bm25: Optional[float], coverage: Optional[float], score: float, rank: int
) -> list[float]:
    """A hit's evidence, as the regression reads it."""
    return [cosine if cosine is not None else 0.0, (bm25 or 0.0) * (coverage or 0.0), score, math.log(rank)]


def probability(x: Sequence[float], coef: tuple[float, Sequence[float]] = (INTERCEPT, WEIGHTS)) -> float:
    z = coef[0] + sum(w * v for w, v in zip(coef[1], x))
    return 1.0 / (1.0 + math.exp(-z))


def evidence(hits: Sequence[Hit], coverage: Optional[float]) -> list[list[float]]:
    """The features of each of ``hits`` (ranked, by both sides). A file only BM25 found is not
    among the closest chunks: its cosine is taken as the lowest of theirs (at most that)."""
    floor = min((h.cosine for h in hits if h.cosine is not None), default=0.0)
    return [
        features(floor if h.cosine is None else h.cosine, h.bm25, coverage, h.score, i) for i, h in enumerate(hits, 1)
    ]


def with_probability(
    hits: Sequence[Hit], coverage: Optional[float], coef: tuple[float, Sequence[float]] = (INTERCEPT, WEIGHTS)
) -> list[Hit]:
    """``hits`` (ranked) with the probability of each that has vectors (one not embedded yet keeps none)."""
    return [
        h if h.unembedded else dataclasses.replace(h, probability=round(probability(x, coef), 4))
        for h, x in zip(hits, evidence(hits, coverage))
    ]
