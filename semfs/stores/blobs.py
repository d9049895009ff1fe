"""Content-addressed, write-once blobs: the store behind file versions.

``blobs/ab/<sha256>`` holds one file's content, zlib-compressed behind a
small header (magic, format version, compression, original size). A blob
is named by the sha256 of the content it holds, so identical content is
stored once; it is written to a temporary file, fsynced and renamed into
place, so a crash leaves either the whole blob or none (a stray temporary
file at worst, which :meth:`BlobStore.sweep` removes). Reading checks the
format version (a blob from a newer semfs is refused, not misread) and
the content's hash (a damaged blob is reported, never returned).

Content is streamed through in 1 MiB pieces, so a large file never has
to fit in memory.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import SemfsError
from .atomic import temp_output

MAGIC = b"SEMFSBLB"
FORMAT = 1
ZLIB = 1
_HEADER = struct.Struct("<8sBBQ")  # magic, format version, compression, original size
_PIECE = 1 << 20


class BlobError(SemfsError):
    """A blob is missing, damaged, or from a newer semfs."""


class BlobStore:
    def __init__(self, root: Path, level: int = 6) -> None:
        self.root = Path(root)
        self.level = level

    def path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BlobError(f"not a blob name: {sha!r}")
        return self.root / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).exists()

    def put_file(self, src: BinaryIO) -> tuple[str, int]:
        """Store what ``src`` reads (to its end); returns (sha256, size). Stored once per content."""
        self.root.mkdir(parents=True, exist_ok=True)
        with temp_output(self.root, ".blob-") as (out, tmp):
            h, size = hashlib.sha256(), 0
            comp = zlib.compressobj(self.level)
            out.write(_HEADER.pack(MAGIC, FORMAT, ZLIB, 0))
            for piece in iter(lambda: src.read(_PIECE), b""):
                h.update(piece)
                size += len(piece)
                out.write(comp.compress(piece))
            out.write(comp.flush())
            out.seek(0)
            out.write(_HEADER.pack(MAGIC, FORMAT, ZLIB, size))
            out.flush()
            os.fsync(out.fileno())
            sha = h.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.unlink(tmp)  # the same content is already stored
                os.utime(final)  # and wanted again: a collector's grace period starts anew
            else:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        import io

        return self.put_file(io.BytesIO(data))

    def stream(self, sha: str) -> Iterator[bytes]:
        """The content of blob ``sha`` in pieces; raises BlobError at the end if it does not hash to ``sha``."""
        p = self.path(sha)
        try:
            f = open(p, "rb")
        except FileNotFoundError:
            raise BlobError(f"version content {sha[:12]} is missing from {self.root}") from None
        with f:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise BlobError(f"version content {sha[:12]} is damaged (truncated header)")
            magic, version, comp, size = _HEADER.unpack(head)
            if magic != MAGIC:
                raise BlobError(f"version content {sha[:12]} is damaged (not a semfs blob)")
            if version > FORMAT:
                raise BlobError(f"version content {sha[:12]} is in format {version}, newer than this semfs ({FORMAT})")
            if comp != ZLIB:
                raise BlobError(f"version content {sha[:12]} uses an unknown compression ({comp})")
            h, n, d = hashlib.sha256(), 0, zlib.decompressobj()
            try:
                for piece in iter(lambda: f.read(_PIECE), b""):
                    out = d.decompress(piece)
                    h.update(out)
                    n += len(out)
                    yield out
                out = d.flush()
            except zlib.error:
                raise BlobError(f"version content {sha[:12]} is damaged (cannot decompress)") from None
            h.update(out)
            n += len(out)
            yield out
            if n != size or h.hexdigest() != sha:
                raise BlobError(f"version content {sha[:12]} is damaged (its hash does not match)")

    def read(self, sha: str) -> bytes:
        return b"".join(self.stream(sha))

    def copy_to(self, sha: str, dest: Path) -> None:
        """Write blob ``sha`` to ``dest`` atomically; ``dest`` is untouched if the blob is damaged."""
        dest = Path(dest)
        with temp_output(dest.parent, f".{dest.name}.") as (out, tmp):
            for piece in self.stream(sha):
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
            os.replace(tmp, dest)

    def delete(self, sha: str) -> int:
        """Remove blob ``sha``; returns the bytes freed."""
        p = self.path(sha)
        try:
            size = p.stat().st_size
            p.unlink()
            return size
        except FileNotFoundError:
            return 0

    def names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for p in sorted(sub.iterdir()):
                    if len(p.name) == 64:
                        yield p.name

    def sweep(self) -> int:
        """Remove temporary files left by a crash; returns the bytes freed."""
        freed = 0
        if self.root.is_dir():
            for p in self.root.glob(".blob-*.tmp"):
                freed += p.stat().st_size
                p.unlink()
        return freed

    def size_on_disk(self) -> int:
        return sum(self.path(s).stat().st_size for s in self.names())
