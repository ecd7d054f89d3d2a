"""FFmpeg's own log, captured per file instead of printed.

FFmpeg writes its errors ("[h264 @ 0x…] error while decoding MB …") straight to stderr unless a
callback takes them. PyAV's callback hands them to Python's `libav.*` loggers, from every thread
(frame-threaded decoders log from their workers); here they go to the innermost capture, and
nowhere outside one. What a capture holds becomes a file's warnings (`facts.warnings_of`) and,
with -v, a summary.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Once a reader has jumped into a stream the decoder misses the pictures before the jump.
_AFTER_SEEK = (
    "co located POCs unavailable",
    "Missing reference picture",
    "reference picture missing during reorder",
    "mmco: unref short failure",
)


@dataclass(eq=False)  # captures are told apart by identity: two empty logs are not one
class FFmpegLog:
    """FFmpeg's error messages while a file was read: how many, and the first few as said."""

    count: int = 0
    first: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)  # message without its numbers -> count
    # Once the reader has jumped into the stream, the decoder misses pictures from before the
    # jump and says so: expected then, not damage.
    after_seek: bool = False

    def add(self, source: str, message: str) -> None:
        if self.after_seek and any(m in message for m in _AFTER_SEEK):
            return
        self.count += 1
        message = message.strip().splitlines()[0] if message.strip() else ""
        line = f"[{source}] {message}"
        if len(self.first) < 3:
            self.first.append(line)
        kind = f"[{source}] " + re.sub(r"-?\d+", "N", message)
        if kind in self.kinds or len(self.kinds) < 50:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def merged(self, other: FFmpegLog) -> FFmpegLog:
        out = FFmpegLog(self.count + other.count, (self.first + other.first)[:3], dict(self.kinds))
        for kind, n in other.kinds.items():
            out.kinds[kind] = out.kinds.get(kind, 0) + n
        return out


_sinks: list[FFmpegLog] = []
_sinks_lock = threading.Lock()


class _ToSink(logging.Handler):
    """FFmpeg's messages (PyAV's `libav.*` loggers, any thread) go to the innermost capture;
    outside one they are dropped, never printed."""

    def emit(self, record: logging.LogRecord) -> None:
        with _sinks_lock:
            if _sinks:
                _sinks[-1].add(record.name.removeprefix("libav."), record.getMessage())


def _quiet_ffmpeg() -> None:
    """Route FFmpeg's own log (which would print to stderr) into captures; once a process."""
    import av.logging

    logger = logging.getLogger("libav")
    if any(isinstance(h, _ToSink) for h in logger.handlers):
        return
    logger.addHandler(_ToSink())
    logger.propagate = False
    # PyAV would hold a repeated message back and tell its count with the next one, which may
    # come while another file is read
    av.logging.set_skip_repeated(False)
    av.logging.set_level(av.logging.ERROR)


@contextmanager
def ffmpeg_log(into: FFmpegLog) -> Iterator[FFmpegLog]:
    """Collect FFmpeg's errors into `into` while a file is read (decoder threads included)."""
    _quiet_ffmpeg()
    with _sinks_lock:
        _sinks.append(into)
    try:
        yield into
    finally:
        with _sinks_lock:
            _sinks.remove(into)
