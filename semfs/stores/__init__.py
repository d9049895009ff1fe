"""Storage: SQLite metadata, FAISS vectors, content-addressed blobs."""
