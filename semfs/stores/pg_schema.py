"""A folder's tables in PostgreSQL, as numbered migrations (the same tables as SQLite's, in PostgreSQL types).

The vector column is added by :mod:`.pgvectors` when it first opens, with the
embedder's dimension (an HNSW index needs one).
"""

from __future__ import annotations

from typing import Callable

from ..errors import SemfsError
from .sql import apply_migrations


def _p001_index(db) -> None:
    for stmt in (
        """CREATE TABLE files (id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE, size BIGINT NOT NULL,
             mtime_ns BIGINT NOT NULL, sha256 TEXT, kind TEXT, text_len BIGINT NOT NULL DEFAULT 0,
             indexed_at DOUBLE PRECISION, error TEXT)""",
        # lease_until/leased_by: an embedding worker's claim (see pgvectors.claim)
        """CREATE TABLE chunks (id BIGSERIAL PRIMARY KEY,
             file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE, ordinal INTEGER NOT NULL,
             start BIGINT NOT NULL, "end" BIGINT NOT NULL, text TEXT NOT NULL, has_vector INTEGER NOT NULL,
             lex_segment BIGINT, lex_len INTEGER NOT NULL DEFAULT 0,
             text_hash BYTEA, lease_until DOUBLE PRECISION, leased_by TEXT)""",
        "CREATE INDEX chunks_file ON chunks(file_id)",
        "CREATE INDEX chunks_unposted ON chunks(id) WHERE lex_segment IS NULL",
        "CREATE INDEX chunks_segment ON chunks(lex_segment)",
        "CREATE INDEX chunks_text_hash ON chunks(text_hash) WHERE text_hash IS NOT NULL",
        # lease_until: the mount indexing it now (two mounts never read one path at once)
        """CREATE TABLE queue (path TEXT PRIMARY KEY, due DOUBLE PRECISION NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION)""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE lex_segments (id BIGSERIAL PRIMARY KEY, n BIGINT NOT NULL, total_len BIGINT NOT NULL,
             dead BIGINT NOT NULL, dead_len BIGINT NOT NULL, ids BYTEA NOT NULL, lens BYTEA NOT NULL)""",
        """CREATE TABLE lex_postings (id BIGSERIAL PRIMARY KEY, term TEXT NOT NULL, segment BIGINT NOT NULL,
             pos BYTEA NOT NULL, tf BYTEA NOT NULL)""",
        "CREATE UNIQUE INDEX lex_postings_term ON lex_postings(term, segment)",
        "CREATE INDEX lex_postings_segment ON lex_postings(segment)",
        # SQLite's names_fts (FTS5) as a table with a generated tsvector
        """CREATE TABLE names_fts (rowid BIGINT PRIMARY KEY, name TEXT NOT NULL,
             tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', name)) STORED)""",
        "CREATE INDEX names_fts_tsv ON names_fts USING gin(tsv)",
    ):
        db.execute(stmt)


def _p002_chunk_lines(db) -> None:
    db.execute("ALTER TABLE chunks ADD COLUMN line INTEGER")  # as SQLite's migration 8


MIGRATIONS: list[Callable] = [_p001_index, _p002_chunk_lines]


def migrate(db) -> None:
    """Bring the folder's schema up to date (the caller holds the bootstrap lock, in a transaction)."""
    apply_migrations(
        db, MIGRATIONS, lambda n: SemfsError(f"the index in PostgreSQL is from a newer semfs (migration {n})")
    )
