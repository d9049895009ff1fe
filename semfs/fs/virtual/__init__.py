"""The virtual folders of a mount, one module per kind, registered in :mod:`.kinds`.

A new kind is one module with a class following
:class:`~semfs.fs.virtual.base.VirtualFolder` and one entry in
:data:`.kinds.KINDS`. Nothing is imported here: the CLI reads the
registry without loading libfuse.
"""
