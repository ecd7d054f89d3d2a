"""From per-window scores to a timeline of action segments.

Each window owns the stretch of video nearer to its centre than to any other window's, so with
a hop smaller than the span the boundaries fall midway between window centres and the segments
tile the video without overlap. Consecutive windows with the same top-1 label form a segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    index: int  # class index
    label: str
    score: float  # mean probability of the label over the segment's windows
    windows: int

    def as_dict(self) -> dict[str, object]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "label": self.label,
            "index": self.index,
            "score": round(self.score, 6),
            "windows": self.windows,
        }


def window_bounds(
    windows: Sequence[tuple[float, float]], end: float, start: float = 0.0
) -> list[tuple[float, float]]:
    """The part of [start, end] each (window start, window end) owns: up to the midpoints."""
    if not windows:
        return []
    centres = [(a + b) / 2 for a, b in windows]
    cuts = [start] + [(c + d) / 2 for c, d in zip(centres, centres[1:], strict=False)] + [end]
    return list(zip(cuts, cuts[1:], strict=False))


def _runs(
    owned: Sequence[tuple[float, float]],
    chosen: Sequence[int],
    probs: np.ndarray,
    labels: Sequence[str],
) -> list[Segment]:
    segments: list[Segment] = []
    first = 0
    for i in range(1, len(chosen) + 1):
        if i == len(chosen) or chosen[i] != chosen[first]:
            c = chosen[first]
            score = float(probs[first:i, c].mean())
            segments.append(
                Segment(owned[first][0], owned[i - 1][1], c, labels[c], score, i - first)
            )
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
    """Merge windows (start, end) with class probabilities (windows, classes) into segments.

    Segments shorter than `min_duration` are folded into a neighbour: their windows take
    whichever neighbouring label they score higher on, the longer neighbour on a tie.
    """
    owned = window_bounds(windows, end, start)
    chosen = [int(p.argmax()) for p in probs]
    segments = _runs(owned, chosen, probs, labels)
    while min_duration > 0 and len(segments) > 1:
        short = min(range(len(segments)), key=lambda i: segments[i].end - segments[i].start)
        seg = segments[short]
        if seg.end - seg.start >= min_duration:
            break
        first = sum(s.windows for s in segments[:short])
        rows = probs[first : first + seg.windows]
        neighbours = [segments[j] for j in (short - 1, short + 1) if 0 <= j < len(segments)]
        best = max(neighbours, key=lambda n: (float(rows[:, n.index].mean()), n.end - n.start))
        chosen[first : first + seg.windows] = [best.index] * seg.windows
        segments = _runs(owned, chosen, probs, labels)
    return segments
