"""The events of a run: what the per-file core yields and every writer consumes.

Each is a frozen dataclass of plain data (strings, numbers, JSON-ready dicts), so the local
loop, worker processes, Ray and the Python API all produce the same values, and a worker can
send them through a queue as they are. Per file, in order: `Started`, a `WindowDone` per window,
then either `Failed`, or the file's `SegmentDone`s (segment), its `Warned`s, `FileDone` and
`Timed`. A `Warned` with no file is about the run.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Warned:
    file: str | None
    message: str


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


Event = Started | WindowDone | SegmentDone | FileDone | Warned | Failed | Timed


@contextmanager
def warnings_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Route Python warnings raised inside (by torch, Ray, PyAV…) to `sink` as one line each,
    instead of the interpreter's file:line form on stderr. The one place warnings are caught."""

    def show(message: Any, *args: Any, **kwargs: Any) -> None:
        sink(str(message))

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
