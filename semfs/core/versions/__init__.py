"""Versions: the keeper (content kept before a change destroys it), retention, change notes, open files."""
