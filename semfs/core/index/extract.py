"""Text out of files, chosen by content rather than by name alone.

PDF (``%PDF-`` magic, via pypdf), DOCX (a zip holding
``word/document.xml``, via python-docx), HTML (text only), and plain
text or source code in any encoding: UTF-8 (and UTF-16/32 with a BOM) is
decoded as such, other 8-bit text as cp1252, and bytes that do not decode
are replaced, never fatal. Anything else is *binary*: it gets metadata and
its file name indexed, no text.

Limits keep a huge or hostile file from stalling the indexer: files over
``max_bytes`` are not read, text is cut at ``max_chars``, and PDF pages
stop after ``max_seconds``. The reason lands in :attr:`Extracted.error`.
"""

from __future__ import annotations

import codecs
import html.parser
import io
import os
import time
import zipfile
from dataclasses import dataclass
from typing import Optional

MAX_BYTES = 64 << 20
MAX_CHARS = 2_000_000
MAX_SECONDS = 20.0
SNIFF = 8192

_HTML_EXT = (".html", ".htm", ".xhtml")


@dataclass(frozen=True)
class Extracted:
    kind: str  # text, markdown, html, pdf, docx, binary, empty
    text: str
    error: Optional[str] = None  # set when a limit or a parser stopped extraction


def extract(
    path: str, max_bytes: int = MAX_BYTES, max_chars: int = MAX_CHARS, max_seconds: float = MAX_SECONDS
) -> Extracted:
    """Extract the text of ``path``; raises OSError only if the file cannot be read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            head = f.read(SNIFF)
            return Extracted(
                _binary_kind(head, path), "", f"not indexed: {size} bytes is over the {max_bytes}-byte limit"
            )
        data = f.read(max_bytes + 1)
    return extract_bytes(data, path, max_chars, max_seconds)


def extract_bytes(
    data: bytes, name: str = "", max_chars: int = MAX_CHARS, max_seconds: float = MAX_SECONDS
) -> Extracted:
    if not data:
        return Extracted("empty", "")
    head = data[:SNIFF]
    try:
        if head.startswith(b"%PDF-"):
            return _limit(_pdf(data, max_seconds), max_chars)
        if head.startswith(b"PK\x03\x04") and _is_docx(data):
            return _limit(_docx(data), max_chars)
    except Exception as e:  # parsers raise anything on broken input
        return Extracted(
            "pdf" if head.startswith(b"%PDF-") else "docx", "", f"cannot parse: {type(e).__name__}: {str(e)[:200]}"
        )
    text = _decode(data)
    if text is None:
        return Extracted("binary", "")
    lower = name.lower()
    if lower.endswith(_HTML_EXT) or _looks_like_html(text[:1000]):
        return _limit(Extracted("html", _html_text(text)), max_chars)
    kind = "markdown" if lower.endswith((".md", ".markdown")) else "text"
    return _limit(Extracted(kind, text), max_chars)


def _limit(x: Extracted, max_chars: int) -> Extracted:
    if len(x.text) <= max_chars:
        return x
    return Extracted(x.kind, x.text[:max_chars], x.error or f"text cut at the {max_chars}-character limit")


def _binary_kind(head: bytes, name: str) -> str:
    if head.startswith(b"%PDF-"):
        return "pdf"
    return "binary" if _decode(head) is None else "text"


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(data: bytes) -> Optional[str]:
    """Text of ``data``, or None if it looks binary."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data.decode(enc, errors="replace")
    head = data[:SNIFF]
    if b"\x00" in head:
        return None
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if controls > len(head) // 20:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Invalid UTF-8. If most non-ASCII characters still decode, it is UTF-8
    # with a few bad bytes (a cut file, a stray byte): keep it, replacing
    # them. Otherwise it is an 8-bit code page.
    as_utf8 = data.decode("utf-8", errors="replace")
    bad = as_utf8.count("\ufffd")
    good = sum(1 for ch in as_utf8 if ord(ch) > 127) - bad
    if good > bad:
        return as_utf8
    return data.decode("cp1252", errors="replace")


def _looks_like_html(start: str) -> bool:
    s = start.lstrip().lower()
    return s.startswith("<!doctype html") or s.startswith("<html")


class _HTMLText(html.parser.HTMLParser):
    _SKIP = {"script", "style", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "title", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    p = _HTMLText()
    p.feed(markup)
    p.close()
    lines = [" ".join(line.split()) for line in "".join(p.parts).split("\n")]
    out, blank = [], False
    for line in lines:
        if line:
            out.append(line)
            blank = False
        elif not blank:
            out.append("")
            blank = True
    return "\n".join(out).strip()


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "word/document.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


def _docx(data: bytes) -> Extracted:
    import docx

    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return Extracted("docx", "\n\n".join(p for p in parts if p.strip()))


def _pdf(data: bytes, max_seconds: float) -> Extracted:
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken PDFs warn a lot
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages, error, start = [], None, time.monotonic()
    for i, page in enumerate(reader.pages):
        if time.monotonic() - start > max_seconds:
            error = f"text cut after {i} of {len(reader.pages)} pages: over the {max_seconds:.0f} s limit"
            break
        pages.append(page.extract_text() or "")
    return Extracted("pdf", "\n\n".join(pages), error)


decode = _decode  # (the text of a file's bytes as the index reads it: passages read lines so)
