"""The semfs service: change events, mounts and state (no click, no FUSE)."""
