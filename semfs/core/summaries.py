"""Short summaries of files by the local LLM (LSFS retrieve-summary).

A summary is generated once per file content and model, and kept in
SQLite keyed by the content's sha256, so it is reused until the file
changes and is regenerated after. The base model follows a few-shot
completion prompt; the file's text is cut to its first ``MAX_CHARS``
characters, and generation stops at ``MAX_TOKENS``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import SemfsError
from ..stores import metadata as md
from .extract import extract_bytes

MAX_CHARS = 2000
MAX_TOKENS = 90

_PROMPT = """Write a one-sentence summary of each text.

Text: Call with the landlord. Heating in the back office fails every Monday morning; he will send the boiler engineer on Thursday. Lease renewal: he proposes +6%. We answer by mid-December.
Summary: The landlord will send an engineer for the failing heating and proposes a 6% higher rent, to be answered by mid-December.

Text: Red lentil soup. 250 g red lentils, an onion, two carrots, cumin and smoked paprika, 1.2 l stock. Simmer 20 minutes, blend half, finish with lemon.
Summary: A recipe for red lentil soup with cumin and lemon, ready in about 20 minutes.

Text: {text}
Summary:"""


class NothingToSummarise(SemfsError):
    pass


def summarise(path: Path, db, llm, model_name: str, timeout: float = 60.0) -> str:
    """The summary of the file at ``path``: from the cache, or generated and cached.

    Without a model (``llm`` None) the file's first sentences stand in,
    marked as such, and nothing is cached.
    """
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    cached = md.get_summary(db, sha, model_name) if llm is not None else None
    if cached is not None:
        return cached
    text = " ".join(extract_bytes(data, path.name).text.split())[:MAX_CHARS]
    if not text:
        raise NothingToSummarise(f"{path.name} has no text to summarise")
    if llm is None:
        return "(no model; the file begins:) " + text[:240]
    summary = llm.complete_text(_PROMPT.format(text=text), timeout=timeout, max_tokens=MAX_TOKENS, stop=["\n", "Text:"])
    summary = summary.strip() or text[:200]
    md.put_summary(db, sha, model_name, summary)
    return summary
