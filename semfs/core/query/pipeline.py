"""A prompt's answer, the one way every caller gets it: query folders (``QueryService``),
``semfs query`` and ``semfs search``.

The prompt is read by the rules (a time range, a kind, a folder: filters)
unless the caller wants its words as they are (``semfs search``), ranked
(``Searcher.find``), and cut off where the matches stop being evidence
(``cutoff.listed``) unless the caller wants the whole ranking. Each hybrid
hit of the calibrated embedder carries the probability that it is relevant
(``calibration``), which the cut-off reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import calibration
from .cutoff import Cutoff, listed
from .prompts import StructuredQuery, parse_rules
from .search import Hit, Searcher


@dataclass(frozen=True)
class Result:
    hits: list[Hit]  # best first
    degraded: Optional[str]  # why the dense side is missing, if it is
    filtered: bool  # every hit passed the prompt's filters
    ranked: int  # files ranked before the cut-off
    reading: Optional[StructuredQuery] = None  # how the rules read the prompt (None: its words as they are)


def answer(
    searcher: Searcher,
    prompt: str,
    k: int,
    *,
    backing: Optional[Path] = None,
    cut: Optional[Cutoff] = None,
    rules: bool = True,
    mode: str = "hybrid",
) -> Result:
    """The files for ``prompt``: at most ``k``, read by the rules (``backing`` resolves a folder
    it names) unless ``rules`` is off, cut off by ``cut`` if given."""
    reading = parse_rules(prompt, backing=backing) if rules else None
    text = reading.text if reading is not None else prompt
    accept = reading.accepts if reading is not None and reading.has_filters else None
    found = searcher.find(text, k=k, mode=mode, accept=accept)
    hits = found.hits
    if searcher.embedder.name == calibration.CALIBRATED and mode == "hybrid" and found.degraded is None:
        hits = calibration.with_probability(hits, found.coverage)
    if cut is not None:
        hits = listed(hits, k, cut, found.filtered, found.coverage, found.share)
    return Result(searcher.with_passages(hits, text), found.degraded, found.filtered, len(found.hits), reading)
