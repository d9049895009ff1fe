"""Length-prefixed pickle messages over a pipe between the daemon and a model worker.

Both ends are this project's own processes (the daemon starts the worker
as its child, over pipes nobody else holds), so pickle carries numpy
arrays without copying them through JSON. A message is a 4-byte
big-endian length and the pickled object.
"""

from __future__ import annotations

import pickle
import struct
import threading
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")
MAX_MESSAGE = 1 << 30


class ChannelClosed(EOFError):
    """The other end went away (exited, was killed, or closed the pipe)."""


class Channel:
    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader, self._writer = reader, writer
        self._send_lock = threading.Lock()

    def send(self, obj: Any) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            try:
                self._writer.write(_HEADER.pack(len(data)) + data)
                self._writer.flush()
            except (BrokenPipeError, ValueError, OSError) as e:  # ValueError: the file was closed
                raise ChannelClosed(str(e)) from None

    def recv(self) -> Any:
        head = self._read_exactly(_HEADER.size)
        (n,) = _HEADER.unpack(head)
        if n > MAX_MESSAGE:
            raise ChannelClosed(f"message of {n} bytes is over the limit")
        return pickle.loads(self._read_exactly(n))

    def _read_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                part = self._reader.read(n - len(buf))
            except (ValueError, OSError) as e:
                raise ChannelClosed(str(e)) from None
            if not part:
                raise ChannelClosed("end of stream")
            buf += part
        return bytes(buf)

    def close(self) -> None:
        for f in (self._writer, self._reader):
            try:
                f.close()
            except OSError:
                pass
