"""Results as they happen: which sources are followed, final segments, dropped windows.

A followed source (`--follow`, the default for live ones) gets each window's record as soon as
the model has scored it, and each segment as soon as it can no longer change. `Follower` decides
that with the same merge as a whole file (`segments.merge_windows`, through the core's `merge`),
run on the windows since the last final segment: a segment is final once the windows have moved
past its end by the fold horizon, beyond which no later window can change it. What is still
pending when the source ends (or is stopped) is merged once more and emitted, so the segments
tile the timeline as a file's do.

`dropping` stands between a live source's decoder and the model when the model is slower than
the source (`--drop oldest`): the source is read at its own pace, and the oldest windows that
wait are dropped, each drop counted in the next window's record.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import sources
from .windows import Decoded, Item

if TYPE_CHECKING:
    import numpy as np

    from .config import FileOptions

Merge = Callable[[list[tuple[float, float]], "np.ndarray", float, float], list[dict[str, Any]]]


def following(name: str, options: FileOptions, live: bool = False) -> bool:
    """Whether a source's records go out as they happen: `live` when it turned out to be read
    as it comes (a URL with no known length)."""
    if options.live.follow is not None:
        return options.live.follow
    return live or sources.is_live(name)


def may_follow(names: Iterable[str], options: FileOptions) -> bool:
    """Whether some of `names` may be followed, before they are opened: what the run sets up
    for (one window per batch, records flushed one by one, Ctrl-C as a clean stop)."""
    if options.live.follow is not None:
        return options.live.follow
    return any(sources.is_live(name) or sources.is_url(name) for name in names)


def horizon(span: float, shortest: float) -> float:
    """How far the windows must have moved past a segment's end before it is final.

    Folding gives a run shorter than `shortest` to its neighbours, so a run that starts at a
    segment's end can still move that segment's end until it is `shortest` long; placing a
    boundary reads the windows that overlap it, up to a span on either side."""
    return shortest + 2 * span


class Follower:
    """One followed file's segments, emitted once final (see the module's docstring)."""

    def __init__(self, merge: Merge, start: float, span: float, shortest: float) -> None:
        self.merge = merge
        self.base = start  # where the pending timeline starts: the last final segment's end
        self.horizon = horizon(span, shortest)
        self.spans: list[tuple[float, float]] = []  # the windows that reach past `base`
        self.rows: list[Any] = []
        self.final: list[dict[str, Any]] = []

    def add(self, span: tuple[float, float], row: np.ndarray) -> list[dict[str, Any]]:
        """A scored window (probabilities as shown); returns the segments it made final."""
        import numpy as np

        self.spans.append(span)
        self.rows.append(row)
        end = max(b for _, b in self.spans)
        if end - self.base < self.horizon:
            return []
        merged = self.merge(self.spans, np.stack(self.rows), end, self.base)
        done = []
        for segment in merged[:-1]:  # the last one is still growing
            if segment["end"] > end - self.horizon:
                break
            done.append(segment)
        if done:
            self.base = done[-1]["end"]
            keep = [i for i, (_, b) in enumerate(self.spans) if b > self.base]
            self.spans = [self.spans[i] for i in keep]
            self.rows = [self.rows[i] for i in keep]
            self.final.extend(done)
        return done

    def finish(self, end: float) -> list[dict[str, Any]]:
        """At the end of the source: the pending segments, now final too."""
        import numpy as np

        rest: list[dict[str, Any]] = []
        if self.spans and end > self.base:
            rest = self.merge(self.spans, np.stack(self.rows), end, self.base)
        self.final.extend(rest)
        self.spans, self.rows = [], []
        return rest


def dropping(items: Iterable[Item], waiting: int = 1) -> Iterator[Item]:
    """Items read in a thread of their own, at the source's pace; when more than `waiting`
    windows wait for the model, the oldest go. Each Decoded that comes out says how many were
    dropped before it (`Decoded.dropped`, counted from the start of its file)."""
    queue: collections.deque[Item | None] = collections.deque()
    ready = threading.Condition()
    dropped: dict[str, int] = collections.Counter()
    failure: list[BaseException] = []

    def read() -> None:
        try:
            for item in items:
                with ready:
                    if isinstance(item, Decoded):
                        windows = [i for i in queue if isinstance(i, Decoded)]
                        while len(windows) >= waiting:
                            oldest = windows.pop(0)
                            queue.remove(oldest)
                            dropped[oldest.file] += 1
                        item = _counted(item, dropped[item.file])
                    queue.append(item)
                    ready.notify()
        except BaseException as e:  # handed to the consumer, raised there
            failure.append(e)
        finally:
            with ready:
                queue.append(None)
                ready.notify()

    threading.Thread(target=read, daemon=True, name="vidcls-live-reader").start()
    while True:
        with ready:
            while not queue:
                ready.wait()
            item = queue.popleft()
        if item is None:
            if failure:
                raise failure[0]
            return
        if isinstance(item, Decoded):
            item = _counted(item, dropped[item.file])
        yield item


def _counted(item: Decoded, dropped: int) -> Decoded:
    import dataclasses

    return dataclasses.replace(item, dropped=dropped)
