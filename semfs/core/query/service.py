"""What the CLI asks of prompts and summaries: a query folder's listing, saved queries, summaries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ...errors import InvalidRequest
from ...stores import local
from ...stores import metadata as md
from ..index.service import Index
from ..paths import locate, place
from .pipeline import Result, answer

if TYPE_CHECKING:
    from ...models.embedder import Embedder


def run_query(backing: str, prompt: str, embedder: Embedder, k: int, state_dir: Optional[str] = None) -> Result:
    """What ``prompt``'s query folder lists (at most ``k`` files), and how the rules read it."""
    from .cutoff import for_embedder

    idx = Index(backing, embedder, state_dir)
    return answer(idx.searcher, prompt, k, backing=idx.backing, cut=for_embedder(embedder.name))


def grouped(backing: str, hits: list, by: str, state_dir: Optional[str] = None) -> dict[str, list]:
    """``hits`` (best first) by their group (``groups.group_of``), the best file's group first."""
    from .groups import group_of

    b = place(backing, state_dir).backing
    out: dict[str, list] = {}
    for h in hits:
        out.setdefault(group_of(b, h.path, h.kind, by), []).append(h)
    return out


def save_query(backing: str, name: str, prompt: str, state_dir: Optional[str] = None) -> Path:
    """Save ``prompt`` as ``query/<name>/`` of the mounts of ``backing``; returns the state dir."""
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise InvalidRequest(f"invalid name for a saved query: {name!r} (no '/', not starting with '.')")
    if len(name.encode()) > 255:
        raise InvalidRequest("the name of a saved query must fit in 255 bytes; the prompt itself may be longer")
    if not prompt.strip():
        raise InvalidRequest("the prompt is empty")
    s = place(backing, state_dir).state_dir
    db = md.open_db(s)
    try:
        local.save_query(db, name, prompt)
    finally:
        db.close()
    return s


def open_llm(spec: str = "default", preload: bool = True):
    """The one way the CLI builds its in-process LLM from an ``--llm`` option (a GGUF path,
    'default' or 'off'): (the model, its name); (None, 'none') for 'off'. With ``preload``,
    loaded now (raises LLMUnavailable if it cannot be); else on first use, so a cached
    answer costs no load."""
    from ...models.llm import LLMUnavailable, LocalLLM, model_path
    from ..state import semfs_home

    path = model_path(spec, semfs_home())
    if path is None:
        return None, "none"
    if not path.is_file():
        raise LLMUnavailable(f"LLM model file not found: {path}")
    llm = LocalLLM(path)
    if preload:
        llm.preload()
    return llm, path.name


def summarise_file(
    path: str, backing: Optional[str] = None, use_llm: bool = True, state_dir: Optional[str] = None
) -> str:
    """The summary of ``path``, a file in a backing folder or a mount, cached in that folder's state."""
    from .summaries import summarise

    loc = locate(path, backing, state_dir)
    b, rel = loc.backing, loc.rel
    p = b / rel
    if not p.is_file():
        raise InvalidRequest(f"not a file: {p}")
    db = md.open_db(loc.state_dir)
    try:
        llm, name = open_llm("default" if use_llm else "off", preload=False)
        return summarise(b, rel, db, llm, name)
    finally:
        db.close()


def join_files(sources: list[str], out: str, by_heading: bool = False, force: bool = False) -> Path:
    """Write one file at ``out`` from ``sources`` (see :mod:`.join`); returns where it was written.

    Written through the mount when ``out`` is in a mounted folder (its mountpoint, or its backing
    folder: the same file through the mount), so it is indexed and versioned like any write.
    """
    import os

    from ..index.extract import MAX_BYTES, extract_bytes
    from ..paths import _mount_of
    from ..readfile import TooLarge, read_whole
    from .join import join_texts

    if not sources:
        raise InvalidRequest("give at least one file to join")
    target = Path(os.path.abspath(os.path.expanduser(out)))
    found = _mount_of(target)
    if found is not None and found[1] == Path(found[0].backing):  # in the backing folder: go through the mount
        target = Path(found[0].mountpoint) / target.relative_to(found[1])
    texts = []
    for src in sources:
        p = Path(os.path.abspath(os.path.expanduser(src)))
        if not p.is_file():
            raise InvalidRequest(f"not a file: {src}")
        try:
            with open(p, "rb") as f:
                data = read_whole(f, MAX_BYTES)
        except OSError as e:
            raise InvalidRequest(f"cannot read {src}: {e.strerror}") from None
        except TooLarge:
            raise InvalidRequest(f"{src} is over the {MAX_BYTES}-byte limit of what is joined") from None
        texts.append((_name(p), extract_bytes(data, p.name).text))
    if not target.parent.is_dir():
        raise InvalidRequest(f"no such folder: {target.parent}")
    try:
        with open(target, "w" if force else "x", encoding="utf-8") as f:
            f.write(join_texts(texts, by_heading))
    except FileExistsError:
        raise InvalidRequest(f"{out} exists: give another name, or --force to replace it") from None
    except OSError as e:
        raise InvalidRequest(f"cannot write {out}: {e.strerror}") from None
    return target


def _name(p: Path) -> str:
    """How a joined source is named: its path in its mounted folder, else its file name."""
    from ..paths import _mount_of

    found = _mount_of(p)
    return p.relative_to(found[1]).as_posix() if found is not None else p.name
