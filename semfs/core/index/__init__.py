"""Keeping the index in step with the backing folder: extraction, chunking, the indexer."""
