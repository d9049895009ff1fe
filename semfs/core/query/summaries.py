"""Short summaries of files (LSFS retrieve-summary): what the file is, and its key points.

A summary is a few short lines, and then what the file decided and who
is to do what, when it says so (decisions.py reads how minutes mark them)::

    Meeting notes: Budget review — 12 March 2026
    - Q1 spend is 8% over plan, mostly cloud hosting after the January traffic spike.
    - Marketing asks to move 15k from events to paid search; Priya wants numbers first.
    Decisions:
    - Travel budget cut by a third for Q2.
    - The offsite in May goes ahead, but at the office, not a hotel.
    Actions:
    - Wei to renegotiate the storage contract (reserved capacity instead of on-demand).
    - Priya circulates the revised forecast by 20 March.

The first line says what the file is: a kind guessed from its name and
shape (notes, a list, meeting notes, a log, code, a PDF ...) and its title
(a heading, a first short line, a docstring). When the file has no title,
the local LLM's gist stands in ("about ..."), but only if every word of it
comes from the file: gemma-3-270m's one-line gists are usually on topic
and sometimes invent ("About the landlord's refusal to renew the lease"
for a to-do list), and a summary must say nothing the file does not.

The key points are the file's own words: its list items, or its sentences
ranked by how much of the file's vocabulary they carry (Luhn's idea), with
a nudge for cue words, days and amounts; cut to about 100 characters each
and shown in the file's order; the decisions and actions are the file's
own items too. So they cannot be unfaithful, at worst incomplete.
scripts/bench_summaries.py measures coverage of hand-written key points on
44 files (docs/BENCHMARKS.md).

A summary is kept in SQLite per content hash and model, so it is made
once per content; without a model, or while it is away, the key points
are shown without a gist and not cached.
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import re
from pathlib import Path
from typing import NamedTuple, Optional

from ...errors import ModelUnavailable, SemfsError
from ...models.llm import LLMNotYet
from ...stores import local
from ...stores.lexical import STOPWORDS
from ..index.extract import MAX_BYTES, extract_bytes
from ..readfile import TooLarge, open_beneath, read_whole
from . import decisions
from .decisions import ACTION, DECISION, NEXT

FORMAT = "v3"  # part of the cache key: summaries of an older form are made again
MAX_CHARS = 2000  # of the file's text shown to the model
MAX_TOKENS = 32
MAX_POINTS = 4
MAX_GROUP = 5  # decisions, and actions, each
POINT_CHARS = 100

# A completion the base model finishes with a short phrase. Few-shot
# examples made it copy their facts into unrelated summaries; this form
# made it least likely to invent (tried on the demo folder, 2026-11-26).
_PROMPT = "Article:\n{text}\n\nIn one sentence, this article is about"

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*", re.UNICODE)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)]|\[[ xX]\])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(]?[A-Z0-9])")
_CUES = re.compile(
    r"\b(decid|decision|agreed|approved|action|todo|to do|deadline|due|next|goal|must|will|plan|recommend|"
    r"failed|risk|open question)",
    re.I,
)
_CODE = {".py": "Python code", ".sh": "Shell script", ".js": "JavaScript code", ".ts": "TypeScript code",
         ".go": "Go code", ".rs": "Rust code", ".c": "C code", ".h": "C header", ".java": "Java code",
         ".rb": "Ruby code", ".pl": "Perl script", ".sql": "SQL"}  # fmt: skip
_DOCS = {".pdf": "PDF", ".docx": "Word document", ".odt": "Document", ".html": "Web page", ".htm": "Web page"}
# "minutes" as a record of a meeting, not as time ("Simmer twenty minutes", "(20 minutes)"): at a
# line's start, after a heading mark or a dash, or after "meeting"
_MINUTES = re.compile(
    r"\b(meeting|call with|call,|sync|retro|retrospective|agm|attendees|standup|committee)\b"
    r"|(?:^|(?<=[#:—–-] )|(?<=meeting ))minutes\b",
    re.I | re.M,
)
_FOLDER_KINDS = (
    (re.compile(r"^(meetings?|minutes)$", re.I), "Meeting notes"),
    (re.compile(r"^(journal|diary)$", re.I), "Journal entry"),
)
_DATED = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


class NothingToSummarise(SemfsError):
    pass


def summarise(backing: Path, rel: str, db, llm, model_name: str, timeout: float = 60.0) -> str:
    """The summary of the file ``rel`` of ``backing``: from the cache, or made and cached.

    The file is read as the indexer reads it: never through a symlink, and
    not at all past the indexer's size limit (a huge or sparse file is
    never loaded whole).
    """
    path = Path(backing) / rel
    try:
        with open_beneath(str(backing), rel) as f:
            data = read_whole(f, MAX_BYTES)
    except OSError as e:
        raise NothingToSummarise(f"{path.name} cannot be read: {e.strerror}") from None
    except TooLarge as e:
        over = f"{e.size} bytes is over" if e.size is not None else "over"
        raise NothingToSummarise(f"{path.name} is not summarised: {over} the {MAX_BYTES}-byte limit") from None
    sha = hashlib.sha256(data).hexdigest()
    key = cache_key(model_name)
    cached = local.get_summary(db, sha, key) if llm is not None else None
    if cached is not None:
        return cached
    text = extract_bytes(data, path.name).text
    if not text.strip():
        raise NothingToSummarise(f"{path.name} has no text to summarise")
    gist, why = None, ""  # why there is no gist when one was wanted
    if llm is not None and not title_of(text, rel):
        try:
            flat = " ".join(text.split())[:MAX_CHARS]
            gist = llm.complete_text(_PROMPT.format(text=flat), timeout=timeout, max_tokens=MAX_TOKENS, stop=["\n"])
            why = ""
        except LLMNotYet:  # still at it: its gist comes with the next read
            why = "the model's gist is not ready yet, it comes when the file is read again"
        except ModelUnavailable as e:  # loading, restarting after a crash, busy or off
            why = f"no model now: {e}"
    summary = compose(text, rel, gist)
    if llm is None or why:
        return summary + (f"\n({why}: the file's own lines only)" if llm is not None else "")
    local.put_summary(db, sha, key, summary)
    return summary


def cache_key(model_name: str) -> str:
    """The name a summary is cached under, beside its content's hash."""
    return f"{model_name}:{FORMAT}"


def compose(text: str, name: str, gist: Optional[str] = None) -> str:
    """The summary of ``text`` (the file ``name``, best its path: its folders hint at its kind):
    a line on what it is, then its key points."""
    kind = kind_of(text, name)
    title = title_of(text, name)
    about = grounded_gist(gist, text) if gist else None
    head = f"{kind}: {title}" if title else (f"{kind}, about {about}" if about else kind)
    if kind == "Log":
        return "\n".join([head, *(f"- {p}" for p in log_points(text))])
    units = _units(text, name)
    if title:
        units = [_after_title(u, title) for u in units]
    units = [u for u in units if u.text and not decisions.who(u.text)]
    said = {role: [u.text for u in units if u.role == role] for role in (DECISION, ACTION, NEXT)}
    groups = _listed("Decisions:", said[DECISION]) + _listed("Actions:", said[ACTION])
    rest = [u for u in units if u.role not in said]
    n = max(2, MAX_POINTS - bool(said[DECISION]) - bool(said[ACTION]) - len(said[NEXT][:1]))
    points = key_points(rest, n) + [_clip(t) for t in said[NEXT][:1]]
    return "\n".join([head, *(f"- {p}" for p in points), *groups])


def log_points(text: str) -> list[str]:
    """A log's span, its failures, and its last entry."""
    lines = [ln.strip() for ln in text.splitlines() if _DATED.match(ln)]
    first, last = lines[0][:10], lines[-1][:10]
    out = [f"{len(lines)} entries, {first} to {last}" if first != last else f"{len(lines)} entries on {first}"]
    bad = [ln for ln in lines if re.search(r"\b(fail|error|warn|unreachable|denied|timeout)", ln, re.I)]
    out += [_clip(ln) for ln in bad[:2]]
    if lines[-1] not in bad:
        out.append(_clip(lines[-1]))
    return out


def kind_of(text: str, name: str) -> str:
    """What the file ``name`` (a path relative to the backing folder, or a file name) is."""
    ext = os.path.splitext(name)[1].lower()
    if ext in _CODE:
        return _CODE[ext]
    for folder in reversed(name.split("/")[:-1]):
        for pattern, kind in _FOLDER_KINDS:
            if pattern.match(folder):
                return kind
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    first = " ".join([ln for ln in text.splitlines() if ln.strip()][:3])
    if _MINUTES.search(first) or _MINUTES.search(os.path.basename(name)):
        return "Meeting notes"
    if ext in _DOCS:
        return _DOCS[ext]
    if lines and sum(bool(_DATED.match(ln)) for ln in lines) >= 0.6 * len(lines) and len(lines) >= 3:
        return "Log"
    if lines and sum(bool(_BULLET.match(ln)) for ln in lines) >= 0.6 * len(lines):
        return "List"
    return "Notes"


def title_of(text: str, name: str) -> Optional[str]:
    """A heading, a docstring's or comment's first line, or a short first line that is not a sentence."""
    ext = os.path.splitext(name)[1].lower()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    if ext in _CODE:
        doc = re.search(r'^\s*(?:"""|\'\'\')\s*(.+?)\s*$', text, re.M)
        if doc:
            return _clip(doc.group(1).rstrip("\"'"))
        for ln in lines:
            if ln.startswith("#") and not ln.startswith("#!"):
                return _clip(ln.lstrip("# "))
        return None
    for ln in lines[:3]:
        if ln.startswith("#"):
            return _clip(ln.lstrip("# "))
    first = lines[0]
    if len(first) <= 80 and not _BULLET.match(first) and not first.endswith((".", ":", ";", ",")):
        return _clip(first)
    return None


def grounded_gist(gist: str, text: str) -> Optional[str]:
    """The model's gist, if every word of it that carries meaning occurs in the file."""
    g = " ".join(gist.split()).strip().rstrip(".").strip()
    if not g:
        return None
    have = {_stem(w) for w in _WORD.findall(text.lower())}
    words = [w for w in _WORD.findall(g.lower()) if w not in STOPWORDS and w not in ("article", "about")]
    if not words or any(_stem(w) not in have for w in words):
        return None
    return _clip(g)


def key_points(units: list[Unit], n: int = MAX_POINTS) -> list[str]:
    """Up to ``n`` of the units that carry most of the file, in the file's order."""
    if not units:
        return []
    if sum(u.bullet for u in units) >= 0.6 * len(units):
        packed = _pack([u.text for u in units])
        if len(packed) <= n:
            return packed
    freq = collections.Counter(
        _stem(w) for u in units for w in _WORD.findall(u.text.lower()) if w not in STOPWORDS and len(w) > 2
    )
    top = {w for w, c in freq.most_common(max(5, len(freq) // 4)) if c > 1}

    def score(i: int, u: Unit) -> float:
        words = [_stem(w) for w in _WORD.findall(u.text.lower()) if w not in STOPWORDS and len(w) > 2]
        if not words:
            return 0.0
        signal = sum(math.log1p(freq[w]) for w in words if w in top) + 0.5 * len(set(words))
        s = signal / math.sqrt(len(words) + 4)
        s += 0.6 if _CUES.search(u.text) or u.role == CUE else 0.0
        s += 0.5 if decisions.dated(u.text) else 0.3 if re.search(r"\d", u.text) else 0.0
        return s + 0.4 / (1 + i)  # an early line says what the file is about

    ranked = sorted(range(len(units)), key=lambda i: score(i, units[i]), reverse=True)[:n]
    return [_clip(units[i].text) for i in sorted(ranked)]


def _listed(label: str, items: list[str]) -> list[str]:
    """A labelled group of a summary: its first MAX_GROUP items, and how many more the file holds."""
    if not items:
        return []
    more = [f"- (and {len(items) - MAX_GROUP} more)"] if len(items) > MAX_GROUP else []
    return [label, *(f"- {_clip(i)}" for i in items[:MAX_GROUP]), *more]


class Unit(NamedTuple):
    """A list item or sentence of a file, and what it is there: a decision, an action, the next
    meeting's date, a line under a heading such as "Plan" (CUE), or nothing said ("")."""

    text: str
    bullet: bool = False
    role: str = ""


CUE = "cue"


def _units(text: str, name: str) -> list[Unit]:
    """The file's list items and sentences; headings and section labels left out."""
    if os.path.splitext(name)[1].lower() in _CODE:
        return [Unit(u) for u in _code_units(text)]
    out: list[Unit] = []
    para: list[str] = []
    role, bare = "", False  # a bare label ("Decisions") holds until a blank line after its items

    def add(body: str, bullet: bool) -> None:
        labelled = decisions.label(body)
        if labelled:  # "Decided: X. Y." or "To do: a; b": the label holds to the end of its line
            for part in _sentences(labelled[1]):
                out.extend(Unit(i, bullet, labelled[0]) for i in decisions.items(part))
            return
        for part in [body] if bullet else _sentences(body):
            labelled = decisions.label(part)
            if labelled:
                out.extend(Unit(i, bullet, labelled[0]) for i in decisions.items(labelled[1]))
                continue
            inferred = decisions.said(part) if role in ("", CUE) else None  # a section's role comes first
            out.append(Unit(part, bullet, inferred or role))

    for line in text.splitlines() + [""]:
        s = re.sub(r"\*\*|__", "", line.strip())
        label = decisions.section(s) if s else None
        plain = s and label is None and not s.startswith("#") and not _BULLET.match(s) and not _DATED.match(s)
        if plain and not decisions.label(s):
            para.append(s)
            continue
        if para:
            add(" ".join(para), False)
            para = []
        if plain:
            add(s, False)
        elif label is not None:
            role, bare = label, not s.startswith("#")
        elif s.startswith("#"):
            role, bare = (CUE if _CUES.search(s) else ""), False
        elif not s:
            if bare and out and out[-1].role == role:
                role, bare = "", False
        else:
            add(_unbullet(s), True)
    return [u for u in out if len(u.text) > 2]


def _unbullet(line: str) -> str:
    """A list item's text: "- [ ] Farah: add an alert" is "Farah: add an alert"."""
    while _BULLET.match(line):
        line = _BULLET.sub("", line, count=1)
    return line


def _code_units(text: str) -> list[str]:
    out: list[str] = []
    for m in re.finditer(r'(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', text, re.S):  # docstrings
        out += [s for s in _sentences(" ".join(m.group(1).split())) if len(s) > 12]
    out += [ln.strip().lstrip("# ") for ln in text.splitlines() if ln.strip().startswith("# ")]
    names = re.findall(r"^(?:def|class|function|func|fn)\s+(\w+)", text, re.M)
    if names:
        out.append("Defines " + ", ".join(dict.fromkeys(names)) + ".")
    cmds = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*(?!#|export\b|set\b)[a-z][\w.-]+\s+\S", ln)]
    if not names and cmds:
        out += cmds[:3]
    return [u for u in out if len(u) > 2]


def _after_title(unit: Unit, title: str) -> Unit:
    """A unit without the title it starts with (a PDF's first line runs into its text)."""
    if _clip(unit.text) == title:
        return unit._replace(text="")
    if unit.text.startswith(title + " "):
        return unit._replace(text=unit.text[len(title) + 1 :])
    return unit


def _pack(items: list[str], width: int = POINT_CHARS) -> list[str]:
    """Short list items joined with "; " into lines of about ``width`` characters."""
    lines: list[str] = []
    for item in (" ".join(i.split()) for i in items):
        if lines and len(lines[-1]) + 2 + len(item) <= width and len(item) < width // 2:
            lines[-1] += "; " + item
        else:
            lines.append(_clip(item, width))
    return lines


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _stem(word: str) -> str:
    return word[:5]


def _clip(s: str, width: int = POINT_CHARS) -> str:
    s = " ".join(s.split())
    if len(s) <= width:
        return s
    cut = s[:width].rsplit(" ", 1)[0].rstrip(",;:—-")
    return cut + "…"
