"""join (LSFS): one document from several files, or from what a prompt matched (issue 25, item 3).

LSFS's join is a call of its API: it takes files and writes their contents
into one new file, with no mount and no index of the result. Here:

- ``semfs join A B ... -o OUT`` writes the new file through the mount (so
  it is indexed and versioned like any write), each source under a heading
  that names it; with ``--by-heading`` the sources are joined on their
  headings instead, as a table is joined on a key: one section per heading
  any of them has ("## Decisions"), holding each source's part under it;
- ``join/<prompt>`` is a read-only virtual file: the passages of the files
  the prompt lists (what ``query/<prompt>/`` shows), each under its file's
  path, with their line numbers, best first, so ``cat "join/budget
  decisions"`` reads as one document. Nothing is written.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def join_texts(sources: Sequence[tuple[str, str]], by_heading: bool = False) -> str:
    """One Markdown document of ``sources`` ((name, text) pairs, in order)."""
    if not by_heading:
        return "\n".join(f"# {name}\n\n{text.strip()}\n" for name, text in sources)
    sections: dict[str, list[tuple[str, str]]] = {}  # a heading's words (lower case) -> [(source, part)]
    titles: dict[str, str] = {}  # ... -> the heading as its first source writes it
    for name, text in sources:
        for heading, body in _sections(text):
            key = heading.lower()
            titles.setdefault(key, heading)
            if body.strip():
                sections.setdefault(key, []).append((name, body.strip()))
    out = [f"# Joined by heading: {', '.join(name for name, _ in sources)}\n"]
    for key in titles:  # in the order the sources first have them
        parts = sections.get(key)
        if not parts:
            continue
        out.append(f"## {titles[key] or '(before any heading)'}\n")
        out += [f"### {name}\n\n{part}\n" for name, part in parts]
    return "\n".join(out)


def _sections(text: str) -> Iterable[tuple[str, str]]:
    """(heading, body) of each section of a Markdown text; ("", ...) for what comes before the first."""
    heading, body = "", []  # type: tuple[str, list[str]]
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            yield heading, "\n".join(body)
            heading, body = m.group(2), []
        else:
            body.append(line)
    yield heading, "\n".join(body)


def passages_document(prompt: str, found: Sequence, note: Optional[str] = None) -> str:
    """``join/<prompt>``: the passages of ``found`` (listed results, best first) under their paths."""
    out = [f"# {prompt}\n"]
    if not found:
        out.append(note or "No file matches well enough to be listed.\n")
    for m in found:
        out.append(f"## {m.path}\n")
        lines = [f"{p.line}: {p.text}" if p.line is not None else p.text for p in m.passages]
        out.append("\n".join(lines or [m.snippet]) + "\n")
    return "\n".join(out)
