"""The FUSE layer: routes paths, calls into ``semfs.core``, maps errors to errno."""

import os

# mfusepy takes libfuse2 when both are installed; semfs is written for
# libfuse3 (its rename flags, nullpath_ok, file handles on setattr).
os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
