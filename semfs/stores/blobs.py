"""Content-addressed, write-once blobs: the store behind file versions.

``blobs/ab/<sha256>`` holds one file's content, zlib-compressed behind a
small header (magic, format version, compression, original size). A blob
is named by the sha256 of the content it holds, so identical content is
stored once; it is written to a temporary file, fsynced and renamed into
place, so a crash leaves either the whole blob or none (a stray temporary
file at worst, which :meth:`BlobStore.sweep` removes). Reading checks the
format version (a blob from a newer semfs is refused, not misread) and
the content's hash (a damaged blob is reported, never returned).

Content under ``CHUNKED_FROM`` is streamed into one blob. Larger content
is cut into pieces by content (FastCDC: boundaries fall where the bytes
say, so an edit moves only the pieces around it) and stored as a
*manifest* blob, the list of its pieces' hashes, plus one blob per piece;
a piece already stored (by an earlier version of the file) is not stored
again. A manifest's pieces are written, fsynced and in place before the
manifest is. Reading a manifest checks every piece's hash and then the
whole content's.

Caveats: content to be cut into pieces is held in memory whole (versions
are capped at 64 MB). A piece shared by several versions is one file: if
it is damaged, every version using it says so when read.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import SemfsError
from .atomic import temp_output
from .private import private_dir

MAGIC = b"SEMFSBLB"
FORMAT = 2  # the newest this code reads; content blobs are written as format 1, which semfs 1 read too
ZLIB = 1  # kind: the content, zlib-compressed
MANIFEST = 2  # kind (format 2): zlib-compressed 32-byte sha256 digests of the pieces, in order
_HEADER = struct.Struct("<8sBBQ")  # magic, format version, kind, original size
_PIECE = 1 << 20
CHUNKED_FROM = 1 << 20  # content this size or larger is stored in pieces
CDC_MIN, CDC_AVG, CDC_MAX = 16 << 10, 64 << 10, 256 << 10


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
        first = src.read(CHUNKED_FROM)
        if len(first) < CHUNKED_FROM:
            return self._put_stream(io.BytesIO(first))
        return self._put_chunked(first + src.read())

    def _put_chunked(self, data: bytes) -> tuple[str, int]:
        from fastcdc import fastcdc

        sha = hashlib.sha256(data).hexdigest()
        final = self.path(sha)
        if final.exists():
            os.utime(final)  # wanted again: a collector's grace period starts anew
            return sha, len(data)
        digests, written = [], []
        view = memoryview(data)
        try:
            for c in fastcdc(data, CDC_MIN, CDC_AVG, CDC_MAX):
                piece = view[c.offset : c.offset + c.length]
                d = hashlib.sha256(piece)
                digests.append(d.digest())
                p = self.path(d.hexdigest())
                if p.exists():
                    os.utime(p)
                else:
                    self._write(p, _HEADER.pack(MAGIC, 1, ZLIB, len(piece)) + zlib.compress(piece, self.level))
                    written.append(p)
            body = zlib.compress(b"".join(digests), self.level)
            self._write(final, _HEADER.pack(MAGIC, 2, MANIFEST, len(data)) + body)
        except BaseException:
            # (a full disk: give the space back at once, or not even the failure could be recorded)
            for p in written:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            raise
        return sha, len(data)

    def _write(self, final: Path, blob: bytes) -> None:
        """Write one whole blob: temporary file, fsync, rename into place."""
        private_dir(self.root)
        with temp_output(self.root, ".blob-") as (out, tmp):
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
            final.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(tmp, final)

    def _put_stream(self, src: BinaryIO) -> tuple[str, int]:
        private_dir(self.root)
        with temp_output(self.root, ".blob-") as (out, tmp):
            h, size = hashlib.sha256(), 0
            comp = zlib.compressobj(self.level)
            out.write(_HEADER.pack(MAGIC, 1, ZLIB, 0))
            for piece in iter(lambda: src.read(_PIECE), b""):
                h.update(piece)
                size += len(piece)
                out.write(comp.compress(piece))
            out.write(comp.flush())
            out.seek(0)
            out.write(_HEADER.pack(MAGIC, 1, ZLIB, size))
            out.flush()
            os.fsync(out.fileno())
            sha = h.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.unlink(tmp)  # the same content is already stored
                os.utime(final)  # and wanted again: a collector's grace period starts anew
            else:
                final.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(tmp, final)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.put_file(io.BytesIO(data))

    def pieces(self, sha: str) -> list[str]:
        """The pieces a manifest blob lists (empty for a blob that holds its content itself)."""
        kind, _, f = self._open(sha)
        with f:
            if kind != MANIFEST:
                return []
            return self._digests(sha, f)

    def _digests(self, sha: str, f) -> list[str]:
        try:
            body = zlib.decompress(f.read())
        except zlib.error:
            raise BlobError(f"version content {sha[:12]} is damaged (cannot decompress its list of pieces)") from None
        if len(body) % 32:
            raise BlobError(f"version content {sha[:12]} is damaged (its list of pieces is cut short)")
        return [body[i : i + 32].hex() for i in range(0, len(body), 32)]

    def _open(self, sha: str):
        """(kind, original size, file positioned after the header) of blob ``sha``."""
        p = self.path(sha)
        try:
            f = open(p, "rb")
        except FileNotFoundError:
            raise BlobError(f"version content {sha[:12]} is missing from {self.root}") from None
        head = f.read(_HEADER.size)
        try:
            if len(head) < _HEADER.size:
                raise BlobError(f"version content {sha[:12]} is damaged (truncated header)")
            magic, version, kind, size = _HEADER.unpack(head)
            if magic != MAGIC:
                raise BlobError(f"version content {sha[:12]} is damaged (not a semfs blob)")
            if version > FORMAT:
                raise BlobError(f"version content {sha[:12]} is in format {version}, newer than this semfs ({FORMAT})")
            if kind not in (ZLIB, MANIFEST):
                raise BlobError(f"version content {sha[:12]} uses an unknown compression ({kind})")
        except BaseException:
            f.close()
            raise
        return kind, size, f

    def stream(self, sha: str) -> Iterator[bytes]:
        """The content of blob ``sha`` in pieces; raises BlobError at the end if it does not hash to ``sha``."""
        kind, size, f = self._open(sha)
        with f:
            h, n = hashlib.sha256(), 0
            if kind == MANIFEST:
                for piece_sha in self._digests(sha, f):
                    try:
                        for out in self.stream(piece_sha):
                            h.update(out)
                            n += len(out)
                            yield out
                    except BlobError as e:
                        raise BlobError(f"version content {sha[:12]} is damaged (one of its pieces: {e})") from None
            else:
                d = zlib.decompressobj()
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
            # through a descriptor of its folder opened without following a link:
            # a folder swapped for a symlink cannot point the unlink elsewhere
            dirfd = os.open(p.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        except OSError as e:
            if e.errno == errno.ELOOP:
                return 0
            raise
        try:
            size = os.stat(p.name, dir_fd=dirfd, follow_symlinks=False).st_size
            os.unlink(p.name, dir_fd=dirfd)
            return size
        except FileNotFoundError:
            return 0
        finally:
            os.close(dirfd)

    def names(self) -> Iterator[str]:
        """The blobs stored, never looking through a symlink."""
        if not self.root.is_dir() or self.root.is_symlink():
            return
        with os.scandir(self.root) as top:
            subs = sorted(
                (e for e in top if len(e.name) == 2 and e.is_dir(follow_symlinks=False)), key=lambda e: e.name
            )
        for sub in subs:
            with os.scandir(sub.path) as it:
                names = sorted(e.name for e in it if len(e.name) == 64 and e.is_file(follow_symlinks=False))
            yield from names

    def sweep(self) -> int:
        """Remove temporary files left by a crash; returns the bytes freed."""
        freed = 0
        if self.root.is_dir() and not self.root.is_symlink():
            for p in self.root.glob(".blob-*.tmp"):
                freed += p.lstat().st_size
                p.unlink()
        return freed

    def size_on_disk(self) -> int:
        return sum(self.path(s).stat().st_size for s in self.names())
