"""``topics.npz`` in the state dir: the last grouping of the files by meaning (core.topics).

One NumPy archive, written whole (temp file, fsync, rename; 0600) each
time the grouping changes, read back at mount. Nothing pickled: arrays
of numbers and of text, and a JSON header (``meta``) with the format's
version. It is derived from the index alone, so a file that is missing,
damaged, or of another version is no grouping: the next one is built.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import write_atomic

log = logging.getLogger(__name__)

NAME = "topics.npz"
VERSION = 1


def save(state_dir: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    everything = {"meta": np.array(json.dumps({**meta, "version": VERSION})), **arrays}
    np.savez(buf, **everything)  # type: ignore[arg-type]  # (numpy's stubs type the keywords as allow_pickle)
    write_atomic(Path(state_dir) / NAME, buf.getvalue())


def load(state_dir: Path) -> Optional[tuple[dict, dict[str, np.ndarray]]]:
    """(meta, arrays) of the saved grouping, or None if there is none to use."""
    path = Path(state_dir) / NAME
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != VERSION:
                return None
            return meta, {k: z[k] for k in z.files if k != "meta"}
    except FileNotFoundError:
        return None
    except Exception as e:  # damaged: the grouping is made again from the index
        log.warning("the topics file %s is unreadable (%s): grouping the files again", path, e)
        return None
