"""The vector files of the state dir: write-once segments, named by one manifest.

::

    vectors/
      manifest.json          the files that make the index, in the order they apply (atomic)
      seg-<n>-<tag>.vec      one flush's changes: the ids it removed, the ids it added, their vectors
      seg-<n>-<tag>.<codec>  the codes of those rows under a trained codec (search in less memory)
      <codec>.faiss          a trained, empty IVF-PQ index: coarse centroids and product codebooks

A segment, little-endian::

    b"SEMFSSEG" | u32 version | u32 dim | u64 rows | u64 removes
    i64[removes] removed ids | i64[rows] added ids | f32[rows * dim] vectors

Replaying the manifest's segments in order gives the live vectors: a
segment's removes apply before its adds, and a later segment wins. Every
file is written whole to a temporary name, fsynced and renamed, and never
changed after; a file the manifest does not name (a crash between a
segment and its manifest, a compaction's leftovers) is ignored and swept
by the next writer. The manifest holds each file's SHA-256: of a
segment's head (all but its vectors), checked at open; of its vectors,
which a search reads row by row and an open never reads, checked once by
the writer in the background (:meth:`Segment.vectors_intact`); of its
codes, checked as they are read. A damaged file is dropped, and its
chunks, which SQLite still holds as text, are embedded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import temp_output, write_atomic
from .private import private_dir

DIR = "vectors"
MANIFEST = "manifest.json"
FORMAT = 1
MAGIC = b"SEMFSSEG"
_HEAD = struct.Struct("<8sIIQQ")
BLOCK = 65536  # rows read or written at a time


class Damaged(Exception):
    """A vector file that is missing, short, or not what the manifest says."""


def new_name(n: int, kind: str) -> str:
    # the tag keeps two writers racing on one number (a reader migrating an old file) apart
    return f"{kind}-{n:08d}-{secrets.token_hex(4)}"


def _sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else _bytes(p))
    return h.hexdigest()


def _bytes(a: np.ndarray) -> memoryview:
    """The bytes of an array, uncopied (as hashlib and preadv take them)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).data


class Segment:
    """One open segment file: its removes and ids in memory, its vectors read from disk on demand."""

    def __init__(self, directory: Path, entry: dict, dim: int) -> None:
        self.entry = entry
        self.name: str = entry["name"]
        self.path = directory / (self.name + ".vec")
        self.dim = dim
        try:
            # held open: a compaction may unlink the file while this process still reads it
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise Damaged(f"{self.path.name} is missing") from e
        try:
            head = os.pread(self.fd, _HEAD.size, 0)
            if len(head) != _HEAD.size:
                raise Damaged(f"{self.path.name} is short")
            magic, version, d, rows, removes = _HEAD.unpack(head)
            if magic != MAGIC or version != FORMAT or d != dim:
                raise Damaged(f"{self.path.name} is not a segment of dimension {dim}")
            body = os.pread(self.fd, 8 * (removes + rows), _HEAD.size)
            if len(body) != 8 * (removes + rows) or _sha(head, body) != entry["head"]:
                raise Damaged(f"{self.path.name}'s head differs from its SHA-256")
        except BaseException:
            os.close(self.fd)
            raise
        ids = np.frombuffer(body, dtype="<i8")
        self.removes = ids[:removes]
        self.ids = ids[removes:]
        self.rows = int(rows)
        self._at = _HEAD.size + 8 * (removes + rows)  # where the vectors start
        self._row_bytes = 4 * dim

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (row numbers of this segment), as an (n, dim) matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        if rows.size > 64 and rows[-1] - rows[0] < 4 * rows.size and bool(np.all(np.diff(rows) > 0)):
            # many rows close together (a compaction, a build): read their span a block at a time
            for start in range(int(rows[0]), int(rows[-1]) + 1, BLOCK):
                stop = min(int(rows[-1]) + 1, start + BLOCK)
                i, j = np.searchsorted(rows, [start, stop])
                out[i:j] = self.block(start, stop)[rows[i:j] - start]
            return out
        flat = out.reshape(-1).view(np.uint8)
        rb = self._row_bytes
        for i, r in enumerate(rows.tolist()):
            if os.preadv(self.fd, [flat[i * rb : (i + 1) * rb].data], self._at + r * rb) != rb:
                raise Damaged(f"{self.path.name} is short")
        return out

    def block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` in one read."""
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        want = out.nbytes
        if want and os.preadv(self.fd, [_bytes(out)], self._at + start * self._row_bytes) != want:
            raise Damaged(f"{self.path.name} is short")
        return out

    def vectors_intact(self) -> bool:
        h = hashlib.sha256()
        for start in range(0, self.rows, BLOCK):
            h.update(_bytes(self.block(start, min(self.rows, start + BLOCK))))
        return h.hexdigest() == self.entry["floats"]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def unlink(self, codec: Optional[str]) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        if codec:
            codes_path(self.path.parent, self.name, codec).unlink(missing_ok=True)


def write_segment(directory: Path, name: str, removes: np.ndarray, ids: np.ndarray, vectors: np.ndarray) -> dict:
    """Write a segment file; returns its manifest entry."""
    removes = np.ascontiguousarray(removes, dtype="<i8")
    ids = np.ascontiguousarray(ids, dtype="<i8")
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    head = _HEAD.pack(MAGIC, FORMAT, vectors.shape[1], ids.size, removes.size)
    private_dir(directory)
    with temp_output(directory, f".{name}.") as (f, tmp):
        f.write(head)
        f.write(removes.tobytes())
        f.write(ids.tobytes())
        h = hashlib.sha256()
        for start in range(0, ids.size, BLOCK):
            part = vectors[start : start + BLOCK]
            h.update(_bytes(part))
            f.write(_bytes(part))
        f.flush()
        os.fsync(f.fileno())
        os.replace(tmp, directory / (name + ".vec"))
    return {
        "name": name,
        "rows": int(ids.size),
        "removes": int(removes.size),
        "head": _sha(head, removes, ids),
        "floats": h.hexdigest(),
    }


def codes_path(directory: Path, segment: str, codec: str) -> Path:
    return directory / f"{segment}.{codec}"


def write_codes(directory: Path, segment: str, codec: str, codes: np.ndarray) -> str:
    data = np.ascontiguousarray(codes, dtype=np.uint8)
    write_atomic(codes_path(directory, segment, codec), data.tobytes())
    return _sha(data)


def read_codes(directory: Path, segment: str, codec: str, sha: str, rows: int, size: int) -> np.ndarray:
    try:
        data = codes_path(directory, segment, codec).read_bytes()
    except FileNotFoundError as e:
        raise Damaged(f"the codes of {segment} are missing") from e
    if len(data) != rows * size or _sha(data) != sha:
        raise Damaged(f"the codes of {segment} differ from their SHA-256")
    return np.frombuffer(data, dtype=np.uint8).reshape(rows, size)


def write_codec(directory: Path, name: str, data: bytes) -> str:
    write_atomic(directory / (name + ".faiss"), data)
    return _sha(data)


def read_codec(directory: Path, name: str, sha: str) -> bytes:
    try:
        data = (directory / (name + ".faiss")).read_bytes()
    except FileNotFoundError as e:
        raise Damaged(f"the codec {name} is missing") from e
    if _sha(data) != sha:
        raise Damaged(f"the codec {name} differs from its SHA-256")
    return data


def read_manifest(directory: Path) -> Optional[dict]:
    """The manifest, None if there is none; raises Damaged for one that cannot be read."""
    try:
        m = json.loads((directory / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise Damaged(f"{MANIFEST} is unreadable ({e})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT or not isinstance(m.get("segments"), list):
        raise Damaged(f"{MANIFEST} is not of format {FORMAT}")
    return m


def write_manifest(directory: Path, manifest: dict) -> None:
    write_atomic(directory / MANIFEST, json.dumps({**manifest, "format": FORMAT}, indent=1).encode())


def sweep(directory: Path, manifest: dict) -> int:
    """Remove the files of ``directory`` the manifest does not name; returns how many."""
    keep = {MANIFEST}
    codec = (manifest.get("codec") or {}).get("name")
    if codec:
        keep.add(codec + ".faiss")
    for e in manifest["segments"]:
        keep.add(e["name"] + ".vec")
        if codec and e.get("codes"):
            keep.add(f"{e['name']}.{codec}")
    gone = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        if name not in keep:
            try:
                os.unlink(directory / name)
                gone += 1
            except (FileNotFoundError, IsADirectoryError):
                pass
    return gone


def size_on_disk(directory: Path) -> int:
    total = 0
    try:
        with os.scandir(directory) as it:
            for e in it:
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    pass
    except FileNotFoundError:
        pass
    return total
