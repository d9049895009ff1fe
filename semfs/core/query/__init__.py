"""Finding files: hybrid search, prompts read by rules and the LLM, query results, summaries."""
