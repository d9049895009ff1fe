"""One-line notes on what a change did (LSFS change-summary / compare).

A note describes the change from one kept version to the next (or to the
live file): the base model completes a few-shot "Edit: <diff> / Summary:"
prompt over the unified diff, cut to ``MAX_DIFF_LINES``. Notes are cached in
SQLite per (content before, content after, model), so each is generated
once, by the mount in the background or by ``semfs history --summaries``.
Without a model, or for binary content, the note is a diff stat
("+3 -1 lines"), which is not cached (it is cheap).

Caveat: gemma-3-270m is small; its notes are short and usually on topic,
and can misread a large diff (only the first lines are shown to it).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import threading
import time
from typing import Optional

from ...errors import SemfsError
from ...stores import metadata as md
from ..readfile import open_beneath

log = logging.getLogger(__name__)

MAX_DIFF_LINES = 40
MAX_DIFF_BYTES = 1 << 20
MAX_TOKENS = 32

_PROMPT = """Each edit of a file, described in a few words.

Edit:
+    # retry once on timeout
Summary: added a comment about retrying

Edit:
+- tomatoes
+- rice
Summary: added tomatoes and rice

Edit:
-TODO: call the bank
-TODO: pay rent
Summary: removed two to-do lines

Edit:
-The launch is in May.
+The launch is delayed to July.
Summary: delayed the launch from May to July

Edit:
-Price: 20 USD
+Price: 25 USD
Summary: changed the price from 20 USD to 25 USD

Edit:
{diff}
Summary:"""


def _lines(data: bytes) -> Optional[list[str]]:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def diff_body(before: bytes, after: bytes) -> Optional[list[str]]:
    """The +/- lines of a unified diff (no headers, no context), or None for binary
    content or content over ``MAX_DIFF_BYTES`` (difflib would take minutes)."""
    if len(before) > MAX_DIFF_BYTES or len(after) > MAX_DIFF_BYTES:
        return None
    a, b = _lines(before), _lines(after)
    if a is None or b is None:
        return None
    return [
        line
        for line in difflib.unified_diff(a, b, lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]


def diff_stat(before: bytes, after: bytes) -> str:
    body = diff_body(before, after)
    if body is None:
        what = "large" if max(len(before), len(after)) > MAX_DIFF_BYTES else "binary"
        return f"{what} content: {len(before)} -> {len(after)} bytes"
    added = sum(1 for line in body if line.startswith("+"))
    removed = len(body) - added
    return f"+{added} -{removed} lines" if body else "no change in the text"


def note(
    catalog, llm, model_name: str, before: Optional[bytes], after: Optional[bytes], timeout: float = 20.0
) -> tuple[str, bool]:
    """(a one-line note on the change from ``before`` to ``after``, whether the model wrote it).

    ``None`` for content that could not be read (a damaged or missing blob).
    """
    if before is None or after is None:
        return "(a version's content is unreadable)", False
    body = diff_body(before, after)
    if llm is None or not body:
        return diff_stat(before, after), False
    key = (hashlib.sha256(before).hexdigest(), hashlib.sha256(after).hexdigest(), model_name)
    known = catalog.note(*key)
    if known is not None:  # '' : the model was asked and had nothing usable
        return (known, True) if known else (diff_stat(before, after), False)
    shown = body[:MAX_DIFF_LINES] + (
        [f"... {len(body) - MAX_DIFF_LINES} more lines"] if len(body) > MAX_DIFF_LINES else []
    )
    text = llm.complete_text(
        _PROMPT.format(diff="\n".join(line[:200] for line in shown)),
        timeout=timeout,
        max_tokens=MAX_TOKENS,
        stop=["\n"],
        background=True,  # behind any summary someone opened; made again on the next pass if dropped
    ).strip()
    usable = bool(text) and grounded(text, "\n".join(body))
    text = f"{text} ({diff_stat(before, after)})" if usable else ""
    with md.write(catalog.db):
        catalog.put_note(*key, text)
    return (text, True) if usable else (diff_stat(before, after), False)


_EXAMPLES = {line[len("Summary: ") :] for line in _PROMPT.splitlines() if line.startswith("Summary: ")}


def grounded(text: str, diff: str) -> bool:
    """Whether a note may describe this diff: not an example's summary copied, and
    no number in it that the diff does not hold (the small model copies examples
    when it does not understand the edit)."""
    if text.strip().rstrip(".") in _EXAMPLES:
        return False
    return all(tok in diff for tok in re.findall(r"\w*\d\w*", text))


def pairs(vs, rel: str, newer_than: Optional[float] = None):
    """(version, content before, content after) for the kept versions of ``rel``
    (those kept after ``newer_than``, if given), oldest first; None for content
    that cannot be read.

    The change a version stands for is the one that replaced it: the next
    version's content, or the live file's (empty if it is gone).
    """
    hist = vs.history(rel)

    def read(i: int) -> Optional[bytes]:
        if i == len(hist):
            try:
                with open_beneath(str(vs.backing), rel) as f:
                    return f.read()
            except FileNotFoundError:
                return b""
            except OSError as e:  # not a regular file now, or a symlink on the way: not read
                log.info("the live %s is not read for its note: %s", rel, e.strerror)
                return None
        try:
            return vs.content(hist[i])
        except (SemfsError, OSError) as e:
            log.warning("version %d of %s: %s", hist[i].version, rel, e)
            return None

    after, after_i = None, None
    for i, v in enumerate(hist):
        if newer_than is not None and v.time <= newer_than:
            continue
        before = after if after_i == i else read(i)
        after, after_i = read(i + 1), i + 1
        yield v, before, after


def start_background(vs, llm, model_name: str, stop, interval: float = 120.0, per_pass: int = 20):
    """Write notes for newly kept versions every ``interval`` seconds, at most ``per_pass`` a pass,
    until the event ``stop`` is set."""

    def loop() -> None:
        since = time.time()  # versions kept before the mount: by `semfs history --summaries`, on demand
        while not stop.wait(interval):
            try:
                rows = vs.catalog.paths_kept_since(since)
                newer_than, since = since, time.time() - interval  # overlap: one recorded mid-pass is seen next time
                done = 0
                for rel in rows:
                    for _, before, after in pairs(vs, rel, newer_than):
                        if done >= per_pass or stop.is_set():
                            break
                        _, by_model = note(vs.catalog, llm, model_name, before, after, timeout=60.0)
                        done += by_model
            except SemfsError as e:  # no model, or it timed out: the CLI falls back to diff stats
                log.debug("no change notes this pass: %s", e)
            except Exception:
                log.exception("writing change notes failed; trying again in %.0f s", interval)

    t = threading.Thread(target=loop, name="semfs-change-notes", daemon=True)
    t.start()
    return t
