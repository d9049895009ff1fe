"""Short summaries of files by the local LLM (LSFS retrieve-summary).

A summary is generated once per file content and model, and kept in
SQLite keyed by the content's sha256, so it is reused until the file
changes and is regenerated after. The base model completes "this
article is about ..." after the file's text, cut to its first
``MAX_CHARS`` characters; generation stops at a line end or
``MAX_TOKENS``.

Caveat: gemma-3-270m is small; its one-line summaries are usually on
topic ("About the Q1 budget review.") and sometimes invent details.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ...errors import ModelUnavailable, SemfsError
from ...stores import metadata as md
from ..index.extract import MAX_BYTES, extract_bytes
from ..readfile import open_beneath

MAX_CHARS = 2000
MAX_TOKENS = 48

# A completion the base model finishes with a short phrase. Few-shot
# examples made it copy their facts into unrelated summaries; this form
# made it least likely to invent (tried on the demo folder, 2026-11-26).
_PROMPT = "Article:\n{text}\n\nIn one sentence, this article is about"


class NothingToSummarise(SemfsError):
    pass


def summarise(backing: Path, rel: str, db, llm, model_name: str, timeout: float = 60.0) -> str:
    """The summary of the file ``rel`` of ``backing``: from the cache, or generated and cached.

    Without a model (``llm`` None) the file's first sentences stand in,
    marked as such, and nothing is cached. The file is read as the indexer
    reads it: never through a symlink, and not at all past the indexer's
    size limit (a huge or sparse file is never loaded whole).
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
    cached = md.get_summary(db, sha, model_name) if llm is not None else None
    if cached is not None:
        return cached
    text = " ".join(extract_bytes(data, path.name).text.split())[:MAX_CHARS]
    if not text:
        raise NothingToSummarise(f"{path.name} has no text to summarise")
    if llm is None:
        return "(no model; the file begins:) " + text[:240]
    try:
        about = llm.complete_text(
            _PROMPT.format(text=text), timeout=timeout, max_tokens=MAX_TOKENS, stop=["\n"]
        ).strip()
    except ModelUnavailable as e:
        # loading, restarting after a crash, busy or off: the file's opening, marked, and not cached
        return f"(no summary now: {e}; the file begins:) " + text[:240]
    summary = f"About {about}" if about else "(the model had nothing to say) " + text[:200]
    md.put_summary(db, sha, model_name, summary)
    return summary
