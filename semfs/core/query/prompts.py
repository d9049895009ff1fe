"""From a prompt to a structured query: meaning, keywords, time range, kind, folder.

Two parsers, one result type:

- :func:`parse_rules` resolves what has a fixed form: time phrases
  ("yesterday", "last week", "last march", "in 2025", "past 3 days",
  resolved against today), file kinds ("pdfs", "word documents",
  "python files"), and a folder scope ("in projects/" when that folder
  exists). What remains is the meaning, searched by hybrid search.
- :func:`parse_llm` asks the local model, with a few-shot completion
  prompt and a JSON-schema grammar, for keywords, time range and kind.

Query folders and ``semfs query`` use the rules alone: the model misread
dates and kinds, and its keywords did not improve retrieval
(docs/BENCHMARKS.md). ``parse_llm`` and :func:`merge_readings` remain for
the benchmarks that measure exactly that (scripts/bench_prompts.py,
scripts/bench_listing.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .groups import path_date, read_phrase
from .search import STOPWORDS

log = logging.getLogger(__name__)

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})

KINDS = {
    # words in a prompt -> (kinds, extensions)
    "pdf": (["pdf"], []),
    "pdfs": (["pdf"], []),
    "docx": (["docx"], []),
    "word": (["docx"], []),
    "markdown": (["markdown"], []),
    "md": (["markdown"], []),
    "html": (["html"], []),
    "webpage": (["html"], []),
    "webpages": (["html"], []),
    "python": ([], [".py"]),
    "script": ([], [".py", ".sh"]),
    "scripts": ([], [".py", ".sh"]),
    "shell": ([], [".sh"]),
    "spreadsheet": ([], [".csv", ".xlsx", ".ods"]),
    "spreadsheets": ([], [".csv", ".xlsx", ".ods"]),
    "csv": ([], [".csv"]),
    "image": ([], [".jpg", ".jpeg", ".png", ".gif", ".webp"]),
    "images": ([], [".jpg", ".jpeg", ".png", ".gif", ".webp"]),
    "photo": ([], [".jpg", ".jpeg", ".png", ".heic"]),
    "photos": ([], [".jpg", ".jpeg", ".png", ".heic"]),
    "text": (["text"], []),
}
# words that only say "a file" and carry no topic once the kind is known
_FILLER = {"file", "files", "document", "documents", "doc", "docs", "notes", "note"}


@dataclass
class StructuredQuery:
    text: str  # what to search for by meaning (the prompt less its filters)
    keywords: list[str] = field(default_factory=list)
    after: Optional[str] = None  # ISO date, inclusive
    before: Optional[str] = None  # ISO date, exclusive
    kinds: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    folder: Optional[str] = None  # relative to the backing folder
    source: str = "rules"
    group_by: Optional[str] = None  # "kind", "folder" or "month" ("... by month"): groups.py

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def has_filters(self) -> bool:
        return bool(self.after or self.before or self.kinds or self.extensions or self.folder)

    def accepts(self, path: str, kind: Optional[str], mtime_ns: int) -> bool:
        """Whether a file passes the filters: its date is a date in its path, else its mtime."""
        if self.folder and not (path == self.folder or path.startswith(self.folder + "/")):
            return False
        if (self.kinds or self.extensions) and not (
            kind in self.kinds or any(path.lower().endswith(e) for e in self.extensions)
        ):
            return False
        if self.after or self.before:
            day = path_date(path)
            if day is None:
                day = dt.datetime.fromtimestamp(mtime_ns / 1e9).date()
            if self.after and day < dt.date.fromisoformat(self.after):
                return False
            if self.before and day >= dt.date.fromisoformat(self.before):
                return False
        return True


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


_TIME_PATTERNS: list[tuple[re.Pattern, Callable]] = []


def _time(pattern: str):
    def deco(fn):
        _TIME_PATTERNS.append((re.compile(pattern, re.I), fn))
        return fn

    return deco


@_time(r"\b(?:from |of )?today\b")
def _today(m, today):
    return today, today + dt.timedelta(days=1)


@_time(r"\b(?:from |of )?yesterday\b")
def _yesterday(m, today):
    return today - dt.timedelta(days=1), today


@_time(r"\b(?:from |of )?(this|last|past) week\b")
def _week(m, today):
    monday = today - dt.timedelta(days=today.weekday())
    if m.group(1).lower() == "this":
        return monday, today + dt.timedelta(days=1)
    if m.group(1).lower() == "past":
        return today - dt.timedelta(days=7), today + dt.timedelta(days=1)
    return monday - dt.timedelta(days=7), monday


@_time(r"\b(?:from |of )?(this|last|past) month\b")
def _month(m, today):
    first = today.replace(day=1)
    if m.group(1).lower() == "this":
        return first, today + dt.timedelta(days=1)
    if m.group(1).lower() == "past":
        return today - dt.timedelta(days=30), today + dt.timedelta(days=1)
    prev = first - dt.timedelta(days=1)
    return prev.replace(day=1), first


@_time(r"\b(?:from |of )?(this|last|past) year\b")
def _year(m, today):
    if m.group(1).lower() == "this":
        return dt.date(today.year, 1, 1), today + dt.timedelta(days=1)
    if m.group(1).lower() == "past":
        return today - dt.timedelta(days=365), today + dt.timedelta(days=1)
    return dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1)


@_time(r"\b(?:in |from |during |over )?(?:the )?(?:past|last) (\d+) (day|week|month)s?\b")
def _past_n(m, today):
    n, unit = int(m.group(1)), m.group(2).lower()
    days = {"day": 1, "week": 7, "month": 30}[unit] * n
    return today - dt.timedelta(days=days), today + dt.timedelta(days=1)


_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))


@_time(rf"\b(?:in |from |during )?(last |this )?({_MONTH_RE})\.?(?: (\d{{4}}))?\b")
def _named_month(m, today):
    month = MONTHS[m.group(2).lower()]
    if m.group(3):
        return _month_range(int(m.group(3)), month)
    which = (m.group(1) or "").strip().lower()
    year = today.year if month <= today.month else today.year - 1  # the latest such month, or this one
    if which == "last" and month == today.month:
        year -= 1
    return _month_range(year, month)


@_time(r"\b(?:in |from |during )(\d{4})\b")
def _in_year(m, today):
    y = int(m.group(1))
    return dt.date(y, 1, 1), dt.date(y + 1, 1, 1)


def parse_rules(prompt: str, today: Optional[dt.date] = None, backing: Optional[Path] = None) -> StructuredQuery:
    today = today or dt.date.today()
    words_only, group_by = read_phrase(" ".join(prompt.split()))
    rest = " " + words_only + " "
    after = before = None
    for pattern, fn in _TIME_PATTERNS:
        m = pattern.search(rest)
        if m and (m.group(0).strip().lower() not in ("may", "march") or m.group(1) or _dated_context(rest, m)):
            start, end = fn(m, today)
            after, before = start.isoformat(), end.isoformat()
            rest = rest[: m.start()] + " " + rest[m.end() :]
            break
    kinds: list[str] = []
    exts: list[str] = []
    words = re.findall(r"[\w.+-]+", rest.lower())
    for w in words:
        if w in KINDS:
            k, e = KINDS[w]
            kinds += [x for x in k if x not in kinds]
            exts += [x for x in e if x not in exts]
    if kinds or exts:
        # "budget pdfs" -> kind pdf, meaning "budget"
        rest = " ".join(w for w in rest.split() if w.lower() not in KINDS and w.lower() not in _FILLER)
    folder = None
    if backing is not None:
        m = re.search(r"\b(?:in|under|inside) (?:my |the )?([\w .-]+?)(?: folder| directory)?/?(?:\s|$)", rest)
        if m:
            candidate = m.group(1).strip()
            for d in (backing / candidate, backing / candidate.lower()):
                if candidate and d.is_dir():
                    folder = d.relative_to(backing).as_posix()
                    rest = rest[: m.start()] + " " + rest[m.end() :]
                    break
    text = " ".join(rest.split())
    if not text and not (after or kinds or exts or folder):
        text = words_only or " ".join(prompt.split())
    keywords = [w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS and w not in _FILLER]
    return StructuredQuery(
        text, list(dict.fromkeys(keywords)), after, before, kinds, exts, folder, "rules", group_by=group_by
    )


def _dated_context(text: str, m: re.Match) -> bool:
    # "may" and "march" are also ordinary words; take them as months only
    # after a preposition ("in may", "from march") or with a year.
    before = text[: m.start()].rstrip().lower()
    return bool(m.group(3)) or before.endswith((" in", " from", " during", " since", " of", " last", " this"))


LLM_SCHEMA = {
    "type": "object",
    "properties": {
        "keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 6},
        "after": {"type": ["string", "null"]},
        "before": {"type": ["string", "null"]},
        "kind": {"type": ["string", "null"]},
    },
    "required": ["keywords", "after", "before", "kind"],
}
# What the mount asks: only the keywords, the one field where the model
# helps (scripts/bench_prompts.py); a short answer keeps it near a second.
KEYWORDS_SCHEMA = {
    "type": "object",
    "properties": {"keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 5}},
    "required": ["keywords"],
}

_FEW_SHOT = (
    (
        "Turn a request for files into JSON: topic keywords, a date range (after is the first day, before is the day "
        "after the last; null if none) and a file kind (pdf, docx, markdown, html, text, python, or null). "
        "Today is {today}.\n"
    )
    + """Request: pdf reports about the roof repair from last week
JSON: {{"keywords": ["roof", "repair", "reports"], "after": "{lw_start}", "before": "{lw_end}", "kind": "pdf"}}
Request: my notes on sourdough bread
JSON: {{"keywords": ["sourdough", "bread"], "after": null, "before": null, "kind": null}}
Request: python scripts that back up the server, written in {last_month_name}
JSON: {{"keywords": ["back up", "server", "scripts"], "after": "{lm_start}", "before": "{lm_end}", "kind": "python"}}
Request: {prompt}
JSON: """
)

_FEW_SHOT_KEYWORDS = """List the topic keywords of a request for files, as JSON.
Request: pdf reports about the roof repair from last week
JSON: {{"keywords": ["roof", "repair", "reports"]}}
Request: my notes on sourdough bread
JSON: {{"keywords": ["sourdough", "bread"]}}
Request: python scripts that back up the server
JSON: {{"keywords": ["back up", "server", "scripts"]}}
Request: {prompt}
JSON: """


def llm_prompt(prompt: str, today: dt.date) -> str:
    monday = today - dt.timedelta(days=today.weekday())
    first = today.replace(day=1)
    prev = (first - dt.timedelta(days=1)).replace(day=1)
    return _FEW_SHOT.format(
        today=today.isoformat(),
        lw_start=(monday - dt.timedelta(days=7)).isoformat(),
        lw_end=monday.isoformat(),
        last_month_name=calendar.month_name[prev.month],
        lm_start=prev.isoformat(),
        lm_end=first.isoformat(),
        prompt=" ".join(prompt.split())[:400],
    )


def parse_llm(
    prompt: str, llm, today: Optional[dt.date] = None, timeout: float = 1.5, full: bool = False
) -> StructuredQuery:
    """The model's reading of ``prompt``: keywords, and with ``full`` also a time range and kind.

    Raises LLMUnavailable when the model has no valid answer in time.
    """
    today = today or dt.date.today()
    if full:
        out = llm.complete_json(llm_prompt(prompt, today), LLM_SCHEMA, timeout=timeout, max_tokens=96)
    else:
        text = _FEW_SHOT_KEYWORDS.format(prompt=" ".join(prompt.split())[:400])
        out = llm.complete_json(text, KEYWORDS_SCHEMA, timeout=timeout, max_tokens=48)
    keywords = [str(k).strip() for k in out.get("keywords") or [] if str(k).strip()][:6]
    kind = (out.get("kind") or "").lower() or None
    kinds, exts = KINDS.get(kind, ([], [])) if kind else ([], [])
    return StructuredQuery(
        text=" ".join(prompt.split()),
        keywords=keywords,
        after=_iso(out.get("after")),
        before=_iso(out.get("before")),
        kinds=list(kinds),
        extensions=list(exts),
        source="llm",
    )


def _iso(value) -> Optional[str]:
    try:
        return dt.date.fromisoformat(str(value)).isoformat() if value else None
    except ValueError:
        return None


def merge_readings(rules: StructuredQuery, model: StructuredQuery) -> StructuredQuery:
    """Rules for everything with a fixed form, the model's keywords added to the text.

    Only the benchmarks read prompts this way now (scripts/bench_prompts.py,
    scripts/bench_listing.py): the model got 10% of time ranges and 48% of
    kinds right on the prompts of tests/data, the rules 98% of both, and its
    keywords did not improve retrieval, so query folders use the rules alone.
    """
    extra = [k for k in model.keywords if k.lower() not in rules.text.lower()]
    text = " ".join([rules.text, *extra]).strip()
    return StructuredQuery(
        text=text,
        keywords=model.keywords or rules.keywords,
        after=rules.after,
        before=rules.before,
        kinds=rules.kinds,
        extensions=rules.extensions,
        folder=rules.folder,
        source="llm+rules",
    )
