"""The events of a run: what the per-file core yields and every writer consumes.

Each is a frozen dataclass of plain data (strings, numbers, JSON-ready dicts), so the local
loop, worker processes, Ray and the Python API all produce the same values, and a worker can
send them through a queue as they are. Per file, in order: `Started`, a `WindowDone` per window,
then either `Failed`, or the file's `Warned`s and `Noted`s, its `SegmentDone`s (segment),
`FileDone` and `Timed`; with `strict`, a file with warnings ends in `Failed` after them. A
`Warned` with no file is about the run. A followed source's final `SegmentDone`s come between
its windows, and so do the `Warned`s of a live source's jumps and reconnections, as they
happen (the file's closing `Warned`s do not repeat them).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Started:
    file: str
    total: int | None  # windows, when known in advance


@dataclass(frozen=True)
class WindowDone:
    file: str
    done: int  # windows of this file finished so far
    total: int | None
    record: dict[str, Any] | None  # the `window` record (segment); None in predict


@dataclass(frozen=True)
class SegmentDone:
    file: str
    record: dict[str, Any]  # the `segment` record


@dataclass(frozen=True)
class FileDone:
    file: str
    record: dict[str, Any]  # the `file` record, with everything
    # segment with FileOptions.curves: the probability curves of the file's top classes over
    # time, for the views that draw or threshold them, never written as a record:
    # {"pieces": [[t0, t1], ...], "classes": [{"label", "index", "probs": [per piece]}, ...],
    #  "shown": how many of the classes, first, to draw}
    curves: dict[str, Any] | None = None


@dataclass(frozen=True)
class Warned:
    file: str | None
    message: str


@dataclass(frozen=True)
class Noted:
    file: str
    message: str  # a detail for -v only (what FFmpeg logged reading the file)


@dataclass(frozen=True)
class Failed:
    file: str
    message: str  # one line, naming the file and the reason
    kind: str = "VidclsError"  # the error's class in vidcls.errors


@dataclass(frozen=True)
class Timed:
    file: str
    windows: int
    decode: float  # seconds
    preprocess: float
    inference: float
    total: float


Event = Started | WindowDone | SegmentDone | FileDone | Warned | Noted | Failed | Timed


# Libraries that log on their own; their warnings reach the user as vidcls's own lines.
_LOGGERS = ("huggingface_hub", "ray", "ray.data", "filelock")


class _LogToSink(logging.Handler):
    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink(record.getMessage().strip())


@contextmanager
def warnings_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Route Python warnings and the warnings libraries log (huggingface_hub, Ray), raised
    inside, to `sink` as one line each, instead of their own formats on stderr. The one place
    warnings are caught. FFmpeg's log is not a warning: `ffmpeg_log.py` counts it per file."""

    def show(message: Any, *args: Any, **kwargs: Any) -> None:
        sink(str(message))

    previous = warnings.showwarning
    warnings.showwarning = show
    handler = _LogToSink(sink)
    saved = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        # their own stderr handlers step aside, so each message is said once, our way
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        warnings.showwarning = previous
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
