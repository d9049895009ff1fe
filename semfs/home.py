"""Where semfs keeps what belongs to the user, not to one folder: ``$SEMFS_HOME``, by default
``$XDG_DATA_HOME/semfs`` (``~/.local/share/semfs``). A leaf module, as ``errors`` is: every
layer may ask it (the models' smoke check too) without an arrow up into ``core``."""

from __future__ import annotations

import os
from pathlib import Path


def semfs_home() -> Path:
    if os.environ.get("SEMFS_HOME"):
        return Path(os.environ["SEMFS_HOME"])
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "semfs"
