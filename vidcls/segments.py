"""From per-window scores to a timeline of action segments.

Every moment takes the mean of the class probabilities of all the windows that saw it, and
consecutive moments with the same top-1 label form a segment. With the hop equal to the span
the windows tile the video and each moment has one window; with a smaller hop a moment is seen
by several, and a window that straddles two actions (and may read as neither) is outvoted by its
neighbours that saw one action whole. Moments no window saw (a hop longer than the span) take the
nearest window's scores.

The timeline is piecewise constant between the window edges, so the work is on those pieces:
`pieces` cuts [start, end] at every window start and end and scores each piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_EPS = 1e-9


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    index: int  # class index
    label: str
    score: float  # the label's probability, averaged over the segment's time
    windows: int  # windows whose centre lies in the segment

    def as_dict(self) -> dict[str, object]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "index": self.index,
            "score": round(self.score, 6),
            "windows": self.windows,
        }


def pieces(
    windows: Sequence[tuple[float, float]], probs: np.ndarray, end: float, start: float = 0.0
) -> tuple[list[tuple[float, float]], np.ndarray]:
    """[start, end] cut at every window edge: the pieces and the mean probabilities of the
    windows covering each (the nearest window's where none does)."""
    import numpy as np

    edges = sorted({start, end, *(min(max(t, start), end) for w in windows for t in w)})
    spans = [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b - a > _EPS]
    bounds = np.array(windows, dtype=np.float64).reshape(-1, 2)
    centres = bounds.mean(1)
    rows = []
    for a, b in spans:
        covering = (bounds[:, 0] <= a + _EPS) & (bounds[:, 1] >= b - _EPS)
        if not covering.any():
            covering = np.arange(len(bounds)) == np.abs(centres - (a + b) / 2).argmin()
        rows.append(probs[covering].mean(0))
    return spans, np.array(rows).reshape(len(spans), probs.shape[1])


def _runs(
    spans: Sequence[tuple[float, float]],
    chosen: Sequence[int],
    probs: np.ndarray,
    labels: Sequence[str],
    centres: np.ndarray,
) -> list[Segment]:
    import numpy as np

    lengths = np.array([b - a for a, b in spans])
    segments: list[Segment] = []
    first = 0
    for i in range(1, len(chosen) + 1):
        if i == len(chosen) or chosen[i] != chosen[first]:
            c = chosen[first]
            a, b = spans[first][0], spans[i - 1][1]
            score = float(np.average(probs[first:i, c], weights=lengths[first:i]))
            last = i == len(chosen)
            inside = (centres >= a) & ((centres <= b) if last else (centres < b))
            segments.append(Segment(a, b, c, labels[c], score, int(inside.sum())))
            first = i
    return segments


def merge_windows(
    windows: Sequence[tuple[float, float]],
    probs: np.ndarray,
    labels: Sequence[str],
    end: float,
    min_duration: float = 0.0,
    start: float = 0.0,
) -> list[Segment]:
    """Merge windows (start, end) with class probabilities (windows, classes) into segments
    that tile [start, end].

    Segments shorter than `min_duration` are folded into a neighbour: their time takes
    whichever neighbouring label it scores higher on, the longer neighbour on a tie.
    """
    import numpy as np

    if not len(windows):
        return []
    spans, table = pieces(windows, probs, end, start)
    centres = np.array(windows, dtype=np.float64).mean(1)
    lengths = np.array([b - a for a, b in spans])
    chosen = [int(p.argmax()) for p in table]
    segments = _runs(spans, chosen, table, labels, centres)
    while min_duration > 0 and len(segments) > 1:
        short = min(range(len(segments)), key=lambda i: segments[i].end - segments[i].start)
        seg = segments[short]
        if seg.end - seg.start >= min_duration - 1e-6:  # a span of two half-span pieces stays
            break
        first = next(i for i, (a, _) in enumerate(spans) if a >= seg.start - _EPS)
        last = next(i for i, (_, b) in enumerate(spans) if b >= seg.end - _EPS) + 1
        rows, weights = table[first:last], lengths[first:last]
        neighbours = [segments[j] for j in (short - 1, short + 1) if 0 <= j < len(segments)]
        best = max(
            neighbours,
            key=lambda n: (float(np.average(rows[:, n.index], weights=weights)), n.end - n.start),
        )
        chosen[first:last] = [best.index] * (last - first)
        segments = _runs(spans, chosen, table, labels, centres)
    return segments
