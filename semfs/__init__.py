"""semfs: a semantic filesystem for Linux."""

__version__ = "0.1.0"
