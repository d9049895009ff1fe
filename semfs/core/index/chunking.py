"""Split text into overlapping chunks that keep paragraphs and headings whole.

Paragraphs (blank-line separated) are packed into chunks of at most
``max_words`` words; a Markdown heading starts a new chunk and is kept at
its head, so the chunk says what it is about. A paragraph longer than a
chunk is cut at sentence ends, and a sentence longer than that at word
boundaries. Consecutive chunks of one file share about ``overlap`` words,
so a sentence cut in two is still found whole in one of them.

Each chunk records its character span in the text and the line it starts
on, for snippets and passages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WORDS = 160
OVERLAP = 15

_PARA = re.compile(r"\n[ \t]*\n")
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_HEADING = re.compile(r"^#{1,6}\s")


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str
    line: int = 1  # the line of the text its start is on (1 first), for passages with line numbers


def chunk_text(text: str, max_words: int = MAX_WORDS, overlap: int = OVERLAP) -> list[Chunk]:
    # Work on word spans: (start, end, is_heading_start, ends_sentence, ends_paragraph)
    words: list[tuple[int, int]] = []
    para_end: set[int] = set()  # index of the last word of each paragraph
    heading_start: set[int] = set()  # index of the first word of each heading paragraph
    pos = 0
    for para in _PARA.split(text):
        start = text.find(para, pos) if para else pos
        pos = start + len(para)
        ws = [(start + m.start(), start + m.end()) for m in _WORD.finditer(para)]
        if not ws:
            continue
        if _HEADING.match(para.lstrip()):
            heading_start.add(len(words))
        words.extend(ws)
        para_end.add(len(words) - 1)
    if not words:
        return []

    chunks: list[Chunk] = []
    i = 0
    n = len(words)
    seen, line = 0, 1  # newlines counted up to offset ``seen``
    while i < n:
        end = min(i + max_words, n)  # exclusive
        # Prefer to stop at a paragraph end, then a sentence end, inside the window,
        # and never run past a heading that starts a new section.
        for j in range(i + 1, end):
            if j in heading_start:
                end = j
                break
        if end < n:
            cut = _best_cut(text, words, i, end, para_end)
            end = cut
        start = words[i][0]
        line += text.count("\n", seen, start)
        seen = start
        chunks.append(Chunk(start, words[end - 1][1], text[start : words[end - 1][1]], line))
        if end >= n:
            break
        # Overlap, unless the next chunk starts a section or the cut was at a paragraph end
        nxt = end
        if nxt not in heading_start and (end - 1) not in para_end:
            nxt = max(i + 1, end - overlap)
        i = nxt
    return chunks


def _best_cut(text: str, words: list[tuple[int, int]], i: int, end: int, para_end: set[int]) -> int:
    """An exclusive end index in (i, end]: the last paragraph end, else sentence end, in the back half."""
    lo = i + max(1, (end - i) // 2)
    for j in range(end - 1, lo - 1, -1):
        if j in para_end:
            return j + 1
    for j in range(end - 1, lo - 1, -1):
        w = text[words[j][0] : words[j][1]]
        if _SENTENCE_END.search(w):
            return j + 1
    return end
