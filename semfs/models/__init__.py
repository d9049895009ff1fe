"""Embedder and LLM behind small interfaces, loaded lazily."""
