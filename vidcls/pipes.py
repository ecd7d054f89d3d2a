"""A named pipe read by vidcls itself, so that `--timeout` bounds how long it may stay silent.

FFmpeg's file protocol opens a FIFO with a blocking open (no writer: it waits forever) and
blocking reads (a writer that stalls: it waits forever). `Fifo` opens it without blocking and
waits for each read with poll(2) for at most `timeout` seconds; PyAV reads it as a file object,
as it reads standard input. On Linux a FIFO that no writer has opened yet polls as neither
readable nor hung up, so a writer that never comes is a timeout too, not an empty stream.
"""

from __future__ import annotations

import errno
import io
import os
import select
import stat
from typing import Any

from .errors import VideoDecodeError


def is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


class Fifo(io.RawIOBase):
    """A named pipe as PyAV should see it: readable, never seekable, each wait bounded."""

    def __init__(self, path: str, timeout: float | None) -> None:
        self.path = path
        self.timeout = timeout
        self._fd = -1
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            raise VideoDecodeError(f"{path}: cannot open the named pipe ({e.strerror})") from e
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        if not self._ready():
            self.close()
            raise VideoDecodeError(
                f"{path}: nothing was written to the named pipe within {timeout:g} s (--timeout)"
            )

    def _ready(self) -> bool:
        """Whether data or the writer's end came within the timeout."""
        ms = None if self.timeout is None else max(1, round(self.timeout * 1000))
        return bool(self._poll.poll(ms))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        while True:
            if not self._ready():
                # PyAV hands this to whoever reads the packets: a live source's stall
                raise TimeoutError(
                    errno.ETIMEDOUT, f"timed out: nothing came for {self.timeout:g} s"
                )
            try:
                data = os.read(self._fd, len(buffer))
            except BlockingIOError:
                continue  # woken with nothing to read after all
            buffer[: len(data)] = data
            return len(data)  # 0: every writer has closed it, the stream ended

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()
