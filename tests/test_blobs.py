"""The content-addressed blob store behind versions."""

from __future__ import annotations

import io
import os
import struct

import pytest

from semfs.stores.blobs import FORMAT, MAGIC, BlobError, BlobStore


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "blobs")


def test_round_trip_and_dedup(store):
    data = b"hello world\n" * 1000
    sha, size = store.put_bytes(data)
    assert size == len(data) and store.read(sha) == data
    assert store.path(sha).stat().st_size < len(data) / 10  # compressed
    assert store.put_bytes(data) == (sha, size)  # stored once
    assert list(store.names()) == [sha]
    assert store.put_bytes(b"")[1] == 0 and store.read(store.put_bytes(b"")[0]) == b""


def test_large_content_streams(store, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for i in range(5):
            f.write(os.urandom(1 << 20))
    with open(src, "rb") as f:
        sha, size = store.put_file(f)
    assert size == 5 << 20
    dest = tmp_path / "restored.bin"
    store.copy_to(sha, dest)
    assert dest.read_bytes() == src.read_bytes()


def test_damage_is_detected_and_never_returned(store, tmp_path):
    sha, _ = store.put_bytes(b"precious words " * 100)
    p = store.path(sha)
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0xFF
    p.write_bytes(bytes(raw))
    dest = tmp_path / "out.txt"
    dest.write_text("untouched")
    with pytest.raises(BlobError, match="damaged"):
        store.copy_to(sha, dest)
    assert dest.read_text() == "untouched"
    assert not list(tmp_path.glob(".out.txt.*"))  # no temporary left behind
    p.write_bytes(b"garbage")
    with pytest.raises(BlobError, match="damaged"):
        store.read(sha)


def test_missing_newer_and_foreign_blobs(store):
    sha, _ = store.put_bytes(b"x")
    other = "0" * 64
    with pytest.raises(BlobError, match="missing"):
        store.read(other)
    head = store.path(sha).read_bytes()
    store.path(sha).write_bytes(struct.pack("<8sBBQ", MAGIC, FORMAT + 1, 1, 1) + head[18:])
    with pytest.raises(BlobError, match="newer than this semfs"):
        store.read(sha)
    with pytest.raises(BlobError, match="not a blob name"):
        store.path("../../etc/passwd")


def test_crash_leftovers_are_swept(store):
    store.put_bytes(b"a")
    leftover = store.root / ".blob-abc.tmp"
    leftover.write_bytes(b"half a blob")
    assert store.sweep() == len(b"half a blob")
    assert not leftover.exists() and len(list(store.names())) == 1


def test_failed_write_leaves_nothing(store):
    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        store.put_file(Broken())
    assert not store.root.exists() or list(store.root.iterdir()) == []


def text_of(n: int, seed: int = 0) -> bytes:
    import random

    r = random.Random(seed)
    words = [bytes(r.choice(b"abcdefghij") for _ in range(r.randint(2, 9))) for _ in range(5000)]
    out = bytearray()
    while len(out) < n:
        out += r.choice(words) + (b"\n" if r.random() < 0.1 else b" ")
    return bytes(out[:n])


def test_large_content_is_stored_in_pieces_shared_between_versions(store):
    v1 = text_of(3 << 20)
    sha1, _ = store.put_bytes(v1)
    pieces1 = store.pieces(sha1)
    assert len(pieces1) > 10 and store.read(sha1) == v1
    before = store.size_on_disk()
    v2 = v1[: 1 << 20] + b"an edit in the middle" + v1[(1 << 20) + 5 :]
    sha2, _ = store.put_bytes(v2)
    assert store.read(sha2) == v2 and store.read(sha1) == v1
    shared = set(store.pieces(sha2)) & set(pieces1)
    assert len(shared) >= len(pieces1) - 3  # only the pieces around the edit are new
    assert store.size_on_disk() - before < before / 10
    assert store.pieces(store.put_bytes(b"small")[0]) == []
    with open(store.path(sha1), "rb") as f:
        assert struct.unpack("<8sBBQ", f.read(18))[1:3] == (2, 2)  # format 2, a manifest


def test_a_missing_or_damaged_piece_is_reported(store):
    data = text_of(2 << 20, seed=1)
    sha, _ = store.put_bytes(data)
    first, second = store.pieces(sha)[:2]
    store.path(second).write_bytes(store.path(second).read_bytes()[:-7])
    with pytest.raises(BlobError, match="one of its pieces"):
        store.read(sha)
    store.path(first).unlink()
    with pytest.raises(BlobError, match="is missing"):
        store.read(sha)
    small_sha, _ = store.put_bytes(b"other versions are unaffected")
    assert store.read(small_sha) == b"other versions are unaffected"


def test_a_failed_store_in_pieces_gives_the_space_back(store, monkeypatch):
    store.put_bytes(b"already here")
    real, calls = store._write, []

    def fails_on_the_fifth(final, blob):
        calls.append(final)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real(final, blob)

    monkeypatch.setattr(store, "_write", fails_on_the_fifth)
    with pytest.raises(OSError):
        store.put_bytes(text_of(2 << 20, seed=3))
    assert len(list(store.names())) == 1  # only what was there before
