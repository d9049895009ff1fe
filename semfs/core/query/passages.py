"""A result's evidence: the one to three lines of it that matched, with their line numbers.

For people and agents alike, what a result is worth is what it says where:
``grep -n`` prints ``path:line:text``, and so do query folders (``.matches``)
and ``semfs search --json`` (``passages``). Lines are taken from the file's
best chunks on either side (BM25's and the meaning's), ranked by how many of
the query's terms they hold (stemmed, as BM25 counts them), the stronger
side's chunk first on a tie. A result found by meaning alone, with no query
word in it, shows the first line of its closest chunk.

Line numbers count the indexed text's lines from 1, as grep counts a text
file's. For a text or Markdown file that text is the file's own, and the
lines shown are read from the file itself, whole (a chunk may begin in the
middle of one); for a PDF, a Word file or HTML they are lines of the text
extracted from it. Chunks indexed before line numbers were kept have none:
their passages say ``line: null`` and ``.matches`` leaves them out, until
the file changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...stores.lexical import query_terms, terms_of_lines

MAX_PASSAGES = 3
FILE_LINES = ("text", "markdown")  # kinds whose indexed text is the file's text, line for line
MAX_READ = 4 << 20  # bytes of a file read for its whole lines (a larger one shows the chunk's)
MAX_LINE = 2000  # characters of a line shown (a minified file's one line is not a passage)


@dataclass(frozen=True)
class Passage:
    line: Optional[int]  # 1 first; None where the index has no line numbers for it
    text: str


def choose(query: str, chunks: list[tuple[Optional[int], str]], limit: int = MAX_PASSAGES) -> list[Passage]:
    """The best lines of ``chunks`` ((first line, text) each, the strongest evidence first) for ``query``."""
    terms = set(query_terms(query))
    scored = []
    for rank, (first, text) in enumerate(chunks):
        lines = text.split("\n")
        held: list[set[str]] = [set()] * len(lines)
        # (only a line that holds a term's first letters can hold the term: the rest is not stemmed)
        maybe = [i for i, ln in enumerate(lines) if any(t[:4] in ln.lower() for t in terms)]
        for i, has in zip(maybe, terms_of_lines([lines[i] for i in maybe])):
            held[i] = has
        for off, (raw, has) in enumerate(zip(lines, held)):
            if raw.strip():
                scored.append((len(terms & has), rank, off, None if first is None else first + off, raw))
    if not scored:
        return []
    matched = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1], s[2]))
    out: list[Passage] = []
    for _, _, _, line, raw in matched or scored[:1]:
        if line is not None and any(p.line == line for p in out):
            continue  # (chunks overlap: one line, once)
        out.append(Passage(line, raw.strip()[:MAX_LINE]))
        if len(out) == limit:
            break
    return out


def whole_lines(backing: Path, rel: str, kind: Optional[str], passages: list[Passage]) -> list[Passage]:
    """``passages`` with the file's own lines, for a kind whose indexed text is the file's."""
    if kind not in FILE_LINES or not any(p.line is not None for p in passages):
        return passages
    from ..index.extract import decode
    from ..readfile import open_beneath

    try:
        with open_beneath(str(backing), rel) as f:
            data = f.read(MAX_READ + 1)
    except OSError:
        return passages
    if len(data) > MAX_READ:
        return passages
    text = decode(data)
    if text is None:
        return passages
    lines = text.split("\n")
    out = []
    for p in passages:
        if p.line is not None and 0 < p.line <= len(lines):
            out.append(Passage(p.line, lines[p.line - 1].rstrip("\r")[:MAX_LINE]))
        else:
            out.append(p)
    return out
