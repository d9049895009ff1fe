"""Short summaries of files (LSFS retrieve-summary): what the file is, and its key points.

A summary is three to five short lines::

    Meeting notes: Budget review — 12 March 2026
    - Q1 spend is 8% over plan, mostly cloud hosting after the January traffic spike.
    - Travel budget cut by a third for Q2.
    - Action items: Priya circulates the revised forecast by 20 March.

The first line says what the file is: a kind guessed from its name and
shape (notes, a list, meeting notes, a log, code, a PDF ...) and its title
(a heading, a first short line, a docstring). When the file has no title,
the local LLM's gist stands in ("about ..."), but only if every word of it
comes from the file: gemma-3-270m's one-line gists are usually on topic
and sometimes invent ("About the landlord's refusal to renew the lease"
for a to-do list), and a summary must say nothing the file does not.

The key points are the file's own words: its list items, or its sentences
ranked by how much of the file's vocabulary they carry (Luhn's idea), with
a nudge for decisions, actions, dates and amounts; cut to about 100
characters each and shown in the file's order. So they cannot be
unfaithful, at worst incomplete. scripts/bench_summaries.py measures
coverage of hand-written key points on 35 files (docs/BENCHMARKS.md).

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
from typing import Optional

from ...errors import ModelUnavailable, SemfsError
from ...models.llm import LLMNotYet
from ...stores import local
from ...stores.lexical import STOPWORDS
from ..index.extract import MAX_BYTES, extract_bytes
from ..readfile import open_beneath

FORMAT = "v2"  # part of the cache key: summaries of an older form are made again
MAX_CHARS = 2000  # of the file's text shown to the model
MAX_TOKENS = 32
MAX_POINTS = 4
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
_MINUTES = re.compile(
    r"\b(meeting|(?<!\d )minutes|call with|call,|sync|retro|retrospective|agm|attendees|standup)\b", re.I
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
            size = os.fstat(f.fileno()).st_size
            if size > MAX_BYTES:
                raise NothingToSummarise(
                    f"{path.name} is not summarised: {size} bytes is over the {MAX_BYTES}-byte limit"
                )
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise NothingToSummarise(f"{path.name} cannot be read: {e.strerror}") from None
    if len(data) > MAX_BYTES:  # grew since the fstat
        raise NothingToSummarise(f"{path.name} is not summarised: over the {MAX_BYTES}-byte limit")
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
    points = log_points(text) if kind == "Log" else key_points(text, name, skip=title)
    return "\n".join([head, *(f"- {p}" for p in points)])


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


def key_points(text: str, name: str, skip: Optional[str] = None, n: int = MAX_POINTS) -> list[str]:
    """Up to ``n`` of the file's own lines or sentences that carry most of it, in the file's order."""
    units = _units(text, name)
    if skip:
        units = [_after_title(u, skip) for u in units]
        units = [u for u in units if _plain(u)]
    if not units:
        return []
    bullets = [u for u in units if u.startswith("\0")]
    if len(bullets) >= 0.6 * len(units):
        packed = _pack([_plain(u) for u in units])
        if len(packed) <= n:
            return packed
    freq = collections.Counter(
        _stem(w) for u in units for w in _WORD.findall(u.lower()) if w not in STOPWORDS and len(w) > 2
    )
    top = {w for w, c in freq.most_common(max(5, len(freq) // 4)) if c > 1}

    def score(i: int, u: str) -> float:
        words = [_stem(w) for w in _WORD.findall(u.lower()) if w not in STOPWORDS and len(w) > 2]
        if not words:
            return 0.0
        signal = sum(math.log1p(freq[w]) for w in words if w in top) + 0.5 * len(set(words))
        s = signal / math.sqrt(len(words) + 4)
        s += 0.6 if _CUES.search(u) or u.lstrip("\0").startswith("\x01") else 0.0
        s += 0.3 if re.search(r"\d", u) else 0.0
        return s + 0.4 / (1 + i)  # an early line says what the file is about

    ranked = sorted(range(len(units)), key=lambda i: score(i, units[i]), reverse=True)[:n]
    return [_clip(_plain(units[i])) for i in sorted(ranked)]


def _units(text: str, name: str) -> list[str]:
    """The file's list items (marked with a leading NUL) and sentences; headings left out."""
    code = os.path.splitext(name)[1].lower() in _CODE
    out: list[str] = []
    if code:
        for m in re.finditer(r'(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', text, re.S):  # docstrings
            out += [s for s in _sentences(" ".join(m.group(1).split())) if len(s) > 12]
        out += [ln.strip().lstrip("# ") for ln in text.splitlines() if ln.strip().startswith("# ")]
        names = re.findall(r"^(?:def|class|function|func|fn)\s+(\w+)", text, re.M)
        if names:
            out.append("Defines " + ", ".join(dict.fromkeys(names)) + ".")
        cmds = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*(?!#|export\b|set\b)[a-z][\w.-]+\s+\S", ln)]
        if not names and cmds:
            out += cmds[:3]
        return out
    para: list[str] = []
    cue = ""  # units under a heading such as "Decision" or "Plan" are marked with a leading \x01
    for line in text.splitlines() + [""]:
        s = re.sub(r"\*\*|__", "", line.strip())
        if s and not s.startswith("#") and not _BULLET.match(s) and not _DATED.match(s):
            para.append(s)
            continue
        if para:
            out += [cue + x for x in _sentences(" ".join(para))]
            para = []
        if s.startswith("#"):
            cue = "\x01" if _CUES.search(s) else ""
        if s.startswith("#") or not s:
            continue
        out.append("\0" + cue + _BULLET.sub("", s))
    return [u for u in out if len(_plain(u)) > 2]


def _plain(unit: str) -> str:
    return unit.lstrip("\0\x01")


def _after_title(unit: str, title: str) -> str:
    """A unit without the title it starts with (a PDF's first line runs into its text)."""
    body = _plain(unit)
    if _clip(body) == title:
        return ""
    if body.startswith(title + " "):
        return unit[: len(unit) - len(body)] + body[len(title) + 1 :]
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
