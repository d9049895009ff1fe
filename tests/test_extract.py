"""Text extraction by content, chunking, and their limits."""

from __future__ import annotations

import io

import docx

from semfs.core.index.chunking import chunk_text
from semfs.core.index.extract import extract, extract_bytes


def make_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` (hand-built, with a correct xref table)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def make_docx(paragraphs: list[str]) -> bytes:
    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text = "cell one"
    t.rows[0].cells[1].text = "cell two"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_plain_text_and_markdown():
    assert extract_bytes("héllo wörld".encode(), "a.txt").text == "héllo wörld"
    x = extract_bytes(b"# Title\n\nbody", "notes.md")
    assert (x.kind, x.text) == ("markdown", "# Title\n\nbody")


def test_other_encodings_never_fail():
    assert extract_bytes("naïve café".encode("cp1252"), "x.txt").text == "naïve café"
    assert extract_bytes("ünïcode".encode("utf-16"), "x.txt").text == "ünïcode"
    x = extract_bytes("mostly ütf-8 — ünïcode ".encode() + b"\xff one bad byte", "x.txt")
    assert x.kind == "text" and "\ufffd" in x.text and x.text.startswith("mostly ütf-8 — ünïcode")


def test_binary_and_empty():
    assert extract_bytes(b"\x00\x01\x02\x03" * 100, "blob").kind == "binary"
    assert extract_bytes(bytes(range(256)) * 10, "x.bin").kind == "binary"
    assert extract_bytes(b"", "empty.txt").kind == "empty"


def test_html_text_only():
    page = (
        b"<!doctype html><html><head><title>T</title><style>p{color:red}</style><script>var x=1;</script></head>"
        b"<body><p>Hello <b>there</b></p><p>Second &amp; last</p></body></html>"
    )
    x = extract_bytes(page, "page.bin")  # recognised by content, not name
    assert x.kind == "html"
    assert "Hello there" in x.text and "Second & last" in x.text
    assert "color" not in x.text and "var x" not in x.text


def test_pdf_by_content(tmp_path):
    p = tmp_path / "report.dat"  # no .pdf extension
    p.write_bytes(make_pdf("Wind tunnel results for the swept wing"))
    x = extract(str(p))
    assert x.kind == "pdf" and "swept wing" in x.text and x.error is None


def test_broken_pdf_is_an_error_not_a_crash():
    x = extract_bytes(b"%PDF-1.4\n garbage garbage", "bad.pdf")
    assert x.kind == "pdf" and x.text == "" and x.error.startswith("cannot parse")


def test_docx():
    x = extract_bytes(make_docx(["First paragraph about budgets.", "Second one."]), "memo.docx")
    assert x.kind == "docx"
    assert "First paragraph about budgets." in x.text and "cell one | cell two" in x.text


def test_limits(tmp_path):
    x = extract_bytes(b"word " * 1000, "big.txt", max_chars=100)
    assert len(x.text) == 100 and "limit" in x.error
    p = tmp_path / "huge.txt"
    p.write_bytes(b"a" * 5000)
    x = extract(str(p), max_bytes=1000)
    assert x.text == "" and "over the 1000-byte limit" in x.error


def test_chunks_keep_headings_and_spans():
    text = "# One\n\nalpha beta gamma.\n\n# Two\n\ndelta epsilon.\n"
    chunks = chunk_text(text, max_words=50)
    assert [c.text for c in chunks] == ["# One\n\nalpha beta gamma.", "# Two\n\ndelta epsilon."]
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_long_text_is_cut_with_overlap():
    words = [f"w{i}" + ("." if i % 10 == 9 else "") for i in range(1000)]
    text = " ".join(words)
    chunks = chunk_text(text, max_words=100, overlap=20)
    assert all(len(c.text.split()) <= 100 for c in chunks)
    covered = set()
    for c in chunks:
        covered.update(c.text.split())
        assert text[c.start : c.end] == c.text
    assert covered == set(words)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert set(first) & set(second)  # they overlap
    assert chunk_text("") == [] and chunk_text(" \n\n ") == []
