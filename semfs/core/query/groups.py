"""Group a prompt's results (LSFS's group by): by kind, by folder or by month (issue 25, item 2).

``query/<prompt> by month/`` lists one folder per group, best group first
(the group of the best file), each holding its files in rank order;
``semfs query --group-by month`` prints the same. A file's month is its
date as the time words read it: a date in its path or name, else when it
last changed. Its folder is the first folder of its path ("(top level)"
for a file at the top); its kind is the kind it was indexed as (pdf,
markdown, docx, html), else its extension.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Optional

BY = ("kind", "folder", "month")
# "... by month", "grouped by folder", "group by kind": read by the rules, then left out of the words
PHRASE = re.compile(r"\s(?:group(?:ed)?\s+)?by\s+(kind|type|folder|month)\b", re.I)
TOP = "(top level)"
_PATH_DATE = re.compile(r"((?:19|20)\d\d)-(\d\d)-(\d\d)")


def path_date(path: str) -> Optional[dt.date]:
    """The date a file's path or name gives it ("meetings/2026-03-12 review.md"), if any: the time
    words read it before the file's last change."""
    m = _PATH_DATE.search(path)
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        return None


def read_phrase(text: str) -> tuple[str, Optional[str]]:
    """``text`` without its group-by phrase, and what it groups by (None: no phrase)."""
    m = PHRASE.search(" " + text)
    if not m:
        return text, None
    by = m.group(1).lower()
    rest = (" " + text)[: m.start()] + (" " + text)[m.end() :]
    return " ".join(rest.split()), "kind" if by == "type" else by


def group_of(backing: Path, path: str, kind: Optional[str], by: str) -> str:
    """The name of the group of the file ``path`` (relative to ``backing``): one path component."""
    if by == "folder":
        top = path.split("/", 1)[0] if "/" in path else TOP
        return f"({top})" if top.startswith(".") else top
    if by == "kind":
        if kind and kind != "text":
            return kind
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        return ext or "no extension"
    day = path_date(path)
    if day is not None:
        return day.strftime("%Y-%m")
    try:
        return dt.datetime.fromtimestamp(os.lstat(backing / path).st_mtime).strftime("%Y-%m")
    except OSError:
        return "(unknown)"
