"""From per-window scores to a timeline of action segments.

Every moment takes the mean of the class probabilities of all the windows that saw it, and
consecutive moments with the same top-1 label form a segment. With the hop equal to the span
the windows tile the video and each moment has one window; with a smaller hop a moment is seen
by several, and a window that straddles two actions (and may read as neither) is outvoted by its
neighbours that saw one action whole. Moments no window saw (a hop longer than the span) take the
nearest window's scores. Last, each boundary moves from the window edge where that puts it to
where its two labels' scores cross, interpolated between window centres (`_sharpen`).

The timeline is piecewise constant between the window edges, so the work is on those pieces:
`pieces` cuts [start, end] at every window start and end and scores each piece. Folding short
segments goes shortest first from a heap, with prefix sums for each vote, so hours of video at
a small hop (tens of thousands of pieces, thousands of blips) fold in well under a second.
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
) -> tuple[np.ndarray, np.ndarray]:
    """[start, end] cut at every window edge: the pieces (P, 2) and the mean probabilities of
    the windows covering each (P, classes), the nearest window's where none does."""
    import numpy as np

    bounds = np.array(windows, dtype=np.float64).reshape(-1, 2)
    edges = np.unique(np.concatenate([[start, end], bounds.clip(start, end).ravel()]))
    # edges a rounding error apart are one edge (k * hop + span vs (k + 2) * hop); the pieces
    # stay contiguous, from exactly start to exactly end
    edges = edges[np.concatenate([[True], np.diff(edges) > _EPS])]
    if len(edges) > 1:
        edges[-1] = end
    spans = np.stack([edges[:-1], edges[1:]], axis=1)
    # a window covers the pieces from the one starting at its start to the one ending at its
    # end: add its row over that range with a difference array
    first = np.searchsorted(spans[:, 0], bounds[:, 0] - _EPS)
    last = np.searchsorted(spans[:, 1], bounds[:, 1] + _EPS, side="right")
    total = np.zeros((len(spans) + 1, probs.shape[1]))
    count = np.zeros(len(spans) + 1)
    np.add.at(total, first, probs)
    np.add.at(total, last, -probs)
    np.add.at(count, first, 1)
    np.add.at(count, last, -1)
    total, count = total.cumsum(0)[:-1], count.cumsum()[:-1].round()
    table = total / np.maximum(count, 1)[:, None]
    unseen = np.flatnonzero(count < 1)
    if len(unseen):
        centres = bounds.mean(1)
        middle = spans[unseen].mean(1)
        table[unseen] = probs[np.abs(centres[None] - middle[:, None]).argmin(1)]
    return spans, table


def _segments(
    bounds: np.ndarray,
    runs: Sequence[tuple[int, int, int]],
    spans: np.ndarray,
    table: np.ndarray,
    mass: np.ndarray,
    labels: Sequence[str],
    centres: np.ndarray,
) -> list[Segment]:
    """Segments from the runs' classes and their edges in seconds (len(runs) + 1 of them)."""
    import numpy as np

    # each class's probability integrated from the start to each bound, the last piece partly
    piece = np.clip(np.searchsorted(spans[:, 0], bounds, side="right") - 1, 0, len(spans) - 1)
    integral = mass[piece] + table[piece] * (bounds - spans[piece, 0])[:, None]
    classes = np.array([c for _, _, c in runs], dtype=np.int64)
    seconds = np.diff(bounds)
    index = np.arange(len(classes))
    gained = integral[index + 1, classes] - integral[index, classes]
    scores = gained / np.maximum(seconds, _EPS)
    # windows whose centre lies in [lo, hi), the last segment's end included
    ordered = np.sort(centres)
    below = np.searchsorted(ordered, bounds, side="left")
    below[-1] = np.searchsorted(ordered, bounds[-1], side="right")
    counts = np.diff(below)
    rows = zip(bounds[:-1], bounds[1:], classes, scores, counts, strict=True)
    return [
        Segment(float(a), float(b), int(c), labels[c], float(s), int(n)) for a, b, c, s, n in rows
    ]


def _sharpen(
    runs: Sequence[tuple[int, int, int]],
    spans: np.ndarray,
    centres: np.ndarray,
    probs: np.ndarray,
    min_duration: float = 0.0,
) -> np.ndarray:
    """The runs' edges in seconds, each boundary moved to where the scores of the labels on
    either side cross, read off the windows' scores interpolated between their centres.

    The pieces put a boundary on a window edge, up to half a hop from the truth. A window that
    straddles a boundary at b, centred at c, sees the earlier action for (b - c) + span / 2 of
    its span; a model whose scores follow those shares scores the two labels equally at c = b,
    and linear interpolation between centres finds that point exactly when the hop is half the
    span. A boundary moves at most to the centres on either side of its edge, and takes from a
    segment at most a third of it and at most half of what it has beyond `min_duration` (it has
    two boundaries), so segments keep their order and folding's promise.
    """
    import numpy as np

    bounds = np.array([spans[a, 0] for a, _, _ in runs] + [spans[-1, 1]], dtype=np.float64)
    # windows that share a centre are one point: their mean
    points, where = np.unique(centres, return_inverse=True)
    scores = np.zeros((len(points), probs.shape[1]))
    np.add.at(scores, where, probs)
    scores /= np.bincount(where, minlength=len(points))[:, None]
    lengths = np.diff(bounds)
    spare = np.clip(np.minimum(lengths / 3, (lengths - min_duration) / 2), 0, None)
    edges = bounds[1:-1]
    before = np.array([c for _, _, c in runs[:-1]], dtype=np.int64)
    after = np.array([c for _, _, c in runs[1:]], dtype=np.int64)
    left = np.searchsorted(points, edges - _EPS) - 1  # the last centre before each edge
    right = np.searchsorted(points, edges + _EPS, side="right")  # the first centre after it
    usable = (left >= 0) & (right < len(points))
    best = np.full(len(edges), np.nan)
    # the lead of the earlier label over the later one, a line between each pair of neighbouring
    # centres from `left` to `right` (two or three of them): keep the crossing nearest the edge
    for k in range(int((right - left)[usable].max(initial=0))):
        j0 = np.clip(left + k, 0, len(points) - 1)
        j1 = np.clip(left + k + 1, 0, len(points) - 1)
        lead0 = scores[j0, before] - scores[j0, after]
        lead1 = scores[j1, before] - scores[j1, after]
        turns = usable & (left + k + 1 <= right) & (lead0 >= 0) & (lead1 <= 0) & (lead0 > lead1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = points[j0] + (points[j1] - points[j0]) * lead0 / (lead0 - lead1)
        nearer = turns & ~(np.abs(best - edges) <= np.abs(cross - edges))
        best[nearer] = cross[nearer]
    moved = np.where(np.isnan(best), edges, best)
    out = bounds.copy()
    out[1:-1] = np.clip(moved, edges - spare[:-1], edges + spare[1:])
    return out


def _fold(
    runs: list[tuple[int, int, int]], spans: np.ndarray, mass: np.ndarray, min_duration: float
) -> list[tuple[int, int, int]]:
    """Fold runs shorter than `min_duration`, shortest (then earliest) first.

    A run between two different labels is shared between them: its pieces up to the cut where
    the earlier label's votes stop leading go to the earlier neighbour, the rest to the later
    one, so a boundary that a straddling window blurred lands where the scores cross. A run at
    either end, or between two runs of one label, joins its neighbour whole (the one its time
    scores higher on, the longer on a tie).
    """
    import heapq

    import numpy as np

    first = [a for a, _, _ in runs]  # per run: first piece, last piece + 1, class
    last = [b for _, b, _ in runs]
    label = [c for _, _, c in runs]
    prev: list[int | None] = [None, *range(len(runs) - 1)]
    nxt: list[int | None] = [*range(1, len(runs)), None]
    gone = [False] * len(runs)

    def entry(i: int) -> tuple[float, int, int]:
        return float(spans[last[i] - 1, 1] - spans[first[i], 0]), first[i], i

    def unlink(i: int) -> None:
        gone[i] = True
        p, n = prev[i], nxt[i]
        if p is not None:
            nxt[p] = n
        if n is not None:
            prev[n] = p

    heap = [entry(i) for i in range(len(runs))]
    heapq.heapify(heap)
    alive = len(runs)
    while heap and alive > 1:
        item = heapq.heappop(heap)
        i = item[2]
        if gone[i] or item != entry(i):
            continue  # folded away, or grown since it was pushed
        if item[0] >= min_duration - 1e-6:  # a span of two half-span pieces stays
            break
        p, n = prev[i], nxt[i]
        if p is not None and n is not None and label[p] != label[n]:
            cuts = np.arange(first[i], last[i] + 1)
            lead = mass[cuts, label[p]] - mass[cuts, label[n]]
            best = cuts[lead >= lead.max() - 1e-9]
            cut = int(best[np.abs(2 * best - first[i] - last[i]).argmin()])  # ties: the middle
            last[p], first[n] = cut, cut
            unlink(i)
            alive -= 1
            grown = [p, n]
        else:
            votes = mass[last[i]] - mass[first[i]]
            sides = [s for s in (p, n) if s is not None]
            into = max(sides, key=lambda s: (float(votes[label[s]]), entry(s)[0]))
            other = n if into == p else p
            group = [i] + ([other] if other is not None and label[other] == label[into] else [])
            first[into] = min(first[g] for g in (*group, into))
            last[into] = max(last[g] for g in (*group, into))
            for g in group:
                unlink(g)
            alive -= len(group)
            grown = [into]
        for g in grown:
            heapq.heappush(heap, entry(g))
    return [(first[i], last[i], label[i]) for i in range(len(runs)) if not gone[i]]


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
    whichever neighbouring label it scores higher on, the longer neighbour on a tie. Then each
    boundary moves to where its two labels' scores cross between window centres.
    """
    import numpy as np

    if not len(windows):
        return []
    spans, table = pieces(windows, probs, end, start)
    if not len(spans):  # an empty range
        return []
    chosen = table.argmax(1)
    cuts = [0, *(np.flatnonzero(np.diff(chosen)) + 1).tolist(), len(chosen)]
    runs = [(a, b, int(chosen[a])) for a, b in zip(cuts, cuts[1:], strict=False)]
    # mass[i, c]: class c's probability integrated over pieces [0, i); a vote over pieces [a, b)
    # is a difference of two rows
    lengths = spans[:, 1] - spans[:, 0]
    mass = np.vstack([np.zeros(table.shape[1]), np.cumsum(table * lengths[:, None], 0)])
    if min_duration > 0:
        runs = _fold(runs, spans, mass, min_duration)
    centres = np.array(windows, dtype=np.float64).mean(1)
    bounds = _sharpen(runs, spans, centres, probs, min_duration)
    return _segments(bounds, runs, spans, table, mass, labels, centres)
