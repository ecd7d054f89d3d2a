"""From per-window scores to a timeline of action segments.

Every moment takes the mean of the class probabilities of all the windows that saw it, and
consecutive moments with the same top-1 label form a segment. With the hop equal to the span
the windows tile the video and each moment has one window; with a smaller hop a moment is seen
by several, and a window that straddles two actions (and may read as neither) is outvoted by its
neighbours that saw one action whole. Moments no window saw (a hop longer than the span) take the
nearest window's scores. Last, each boundary moves from the window edge where that puts it to
where the windows around it fit it best: each window's lead of one label over the other, on the
scale of the windows that saw each side whole, read as the share of it before the boundary
(`_place`).

The timeline is piecewise constant between the window edges, so the work is on those pieces:
`pieces` cuts [start, end] at every window start and end and scores each piece. Folding short
segments goes shortest first from a heap, with prefix sums for each vote, so hours of video at
a small hop (tens of thousands of pieces, thousands of blips) fold in well under a second.
Placing a boundary reads only the windows within a few hops of it (a fraction of a millisecond
each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_EPS = 1e-9
_NEAREST = 4  # windows that saw a run whole, read for the scale of its scores


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

    bounds = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
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


def _best_boundary(
    lo: float, hi: float, edge: float, first: np.ndarray, last: np.ndarray, wanted: np.ndarray
) -> float:
    """The b in [lo, hi] minimising sum((clip((b - first) / length, 0, 1) - wanted) ** 2): the
    earlier label's share of each window against the share its scores ask for. The cost is a
    quadratic in b between consecutive window edges, so each such interval's minimum is exact;
    the lowest wins, the one nearest `edge` on a tie (the cost is flat where no window varies)."""
    import numpy as np

    length = last - first
    knots = np.unique(np.clip(np.concatenate([[lo, hi], first, last]), lo, hi))
    a, z = knots[:-1], knots[1:]
    mid = (a + z) / 2
    inside = (first < mid[:, None]) & (last > mid[:, None])  # (intervals, windows)
    total = (inside / length**2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (inside / length * (wanted + first / length)).sum(1) / total
    b = np.where(total > 0, np.clip(b, a, z), mid)
    candidates = np.concatenate([b, [edge]])
    shares = np.clip((candidates[:, None] - first) / length, 0, 1)
    cost = ((shares - wanted) ** 2).sum(1)
    lowest = np.flatnonzero(cost <= cost.min() + 1e-12)
    return float(candidates[lowest[np.abs(candidates[lowest] - edge).argmin()]])


@dataclass(frozen=True)
class _Edges:
    """What placing the boundaries between runs reads: the windows in centre order, the runs'
    edges in seconds, and for each inner edge the window centres and windows around it."""

    runs: Sequence[tuple[int, int, int]]
    bounds: np.ndarray  # the runs' edges in seconds, len(runs) + 1
    windows: np.ndarray  # (windows, start / end), ordered by centre
    probs: np.ndarray
    centres: np.ndarray
    points: np.ndarray  # the distinct centres
    spare: np.ndarray  # per run: how far a boundary may take from it
    left: np.ndarray  # per inner edge: the last centre before it, the first after it
    right: np.ndarray
    lows: np.ndarray  # per inner edge: the windows within reach of it
    highs: np.ndarray

    @classmethod
    def of(
        cls,
        runs: Sequence[tuple[int, int, int]],
        spans: np.ndarray,
        windows: np.ndarray,
        probs: np.ndarray,
        min_duration: float,
    ) -> _Edges:
        import numpy as np

        bounds = np.array([spans[a, 0] for a, _, _ in runs] + [spans[-1, 1]], dtype=np.float64)
        order = np.argsort(windows.mean(1), kind="stable")
        windows, probs = windows[order], probs[order]
        centres = windows.mean(1)
        points = np.unique(centres)
        lengths = np.diff(bounds)
        spare = np.clip(np.minimum(lengths / 3, (lengths - min_duration) / 2), 0, None)
        edges = bounds[1:-1]
        left = np.searchsorted(points, edges - _EPS) - 1
        right = np.searchsorted(points, edges + _EPS, side="right")
        # each boundary looks only at the windows whose centres lie within `reach` of it: enough
        # for those across it and the nearest ones each side that saw a run whole, so a long
        # video with thousands of boundaries does not scan every window for each
        longest = float((windows[:, 1] - windows[:, 0]).max(initial=0.0))
        gap = float(np.diff(points).max(initial=0.0))
        reach = longest + (_NEAREST + 2) * gap + _EPS
        lows = np.searchsorted(centres, edges - reach)
        highs = np.searchsorted(centres, edges + reach, side="right")
        return cls(runs, bounds, windows, probs, centres, points, spare, left, right, lows, highs)

    def movable(self) -> np.ndarray:
        """The inner edges with window centres on both sides."""
        import numpy as np

        return np.flatnonzero((self.left >= 0) & (self.right < len(self.points)))

    def best(self, j: int) -> float | None:
        """Where the windows around inner edge j put the boundary; None: they cannot tell."""
        import numpy as np

        edge, before, after = self.bounds[j + 1], self.runs[j][2], self.runs[j + 1][2]
        lo = max(self.points[self.left[j]], edge - self.spare[j])
        hi = min(self.points[self.right[j]], edge + self.spare[j + 1])
        window = slice(self.lows[j], self.highs[j])
        w, c = self.windows[window], self.centres[window]
        lead = self.probs[window, before] - self.probs[window, after]
        seen_a, seen_b = self._seen(j, w)
        # the windows that may straddle the boundary, leaving out those that reach into a third
        # run: their scores of A and B do not measure shares of this boundary
        near = (w[:, 0] < hi) & (w[:, 1] > lo) & (w[:, 1] > w[:, 0])
        near &= (w[:, 0] >= self.bounds[j] - _EPS) & (w[:, 1] <= self.bounds[j + 2] + _EPS)
        sure_a = _clearest(lead, seen_a, c, edge)
        sure_b = _clearest(-lead, seen_b, c, edge)
        if sure_a is None and sure_b is None:  # no window saw either side whole: the nearest
            sure_a = sure_b = float(np.abs(lead[near]).max(initial=0.0))
        sure_a = sure_b if sure_a is None else sure_a
        sure_b = sure_a if sure_b is None else sure_b
        if sure_a + sure_b <= _EPS:  # the windows that saw each side do not tell them apart
            return None
        wanted = np.clip((lead[near] + sure_b) / (sure_a + sure_b), 0, 1)
        return _best_boundary(lo, hi, edge, w[near, 0], w[near, 1], wanted)

    def _seen(self, j: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which windows saw the run before edge j whole, and which the run after it. They keep
        clear of the stretch either side of a run's boundaries where the truth may lie (the
        video's own start and end are no boundaries)."""
        edge = self.bounds[j + 1]
        clear = (self.points[self.right[j]] - self.points[self.left[j]]) / 2
        first = self.bounds[j] + (clear if j > 0 else 0.0)
        last = self.bounds[j + 2] - (clear if j + 2 < len(self.bounds) - 1 else 0.0)
        seen_a = (w[:, 0] >= first - _EPS) & (w[:, 1] <= edge - clear + _EPS)
        seen_b = (w[:, 0] >= edge + clear - _EPS) & (w[:, 1] <= last + _EPS)
        return seen_a, seen_b


def _place(
    runs: Sequence[tuple[int, int, int]],
    spans: np.ndarray,
    windows: np.ndarray,
    probs: np.ndarray,
    min_duration: float = 0.0,
) -> np.ndarray:
    """The runs' edges in seconds, each boundary moved to where the windows' scores fit it best.

    The pieces put a boundary on a window edge, up to half a hop from the truth. A boundary at b
    gives each window a share of the earlier label A (its part before b), the rest going to the
    later label B. A model that follows those shares leads A over B by `sure_a` in a window that
    saw A whole, by `sure_b` (negative) in one that saw B whole, and in proportion between: the
    boundary goes where the windows around it come closest to that, in least squares. The two
    scales are read off the clearest of the nearest windows that lie wholly in each run (clear of
    the stretch either side of the edge where the truth may be), so a model that is rarely sure
    places boundaries as well as one that is. A window that straddles the boundary and reads as
    neither label (across a scene cut, often as a third) sits half way between the scales and
    asks for a share of a half: two such windows leave the boundary in the middle of the stretch
    that only they saw, not wherever their small, noisy scores of A and B happen to cross.
    A boundary moves at most to the window centres on either side of its edge, and takes from a
    segment at most a third of it and at most half of what it has beyond `min_duration` (it has
    two boundaries), so segments keep their order and folding's promise.
    """
    edges = _Edges.of(runs, spans, windows, probs, min_duration)
    out = edges.bounds.copy()
    for j in edges.movable():
        moved = edges.best(j)
        if moved is not None:
            out[j + 1] = moved
    return out


def _clearest(lead: np.ndarray, seen: np.ndarray, centres: np.ndarray, edge: float) -> float | None:
    """The highest lead among the _NEAREST windows (to `edge`) that `seen` marks."""
    import numpy as np

    chosen = np.flatnonzero(seen)
    if not len(chosen):
        return None
    chosen = chosen[np.argsort(np.abs(centres[chosen] - edge), kind="stable")[:_NEAREST]]
    return float(lead[chosen].max())


class _Runs:
    """Runs of one top-1 label as a linked list over the window pieces, folded in place."""

    def __init__(self, runs: list[tuple[int, int, int]], spans: np.ndarray, mass: np.ndarray):
        self.first = [a for a, _, _ in runs]  # per run: first piece, last piece + 1, class
        self.last = [b for _, b, _ in runs]
        self.label = [c for _, _, c in runs]
        self.prev: list[int | None] = [None, *range(len(runs) - 1)]
        self.next: list[int | None] = [*range(1, len(runs)), None]
        self.gone = [False] * len(runs)
        self.alive = len(runs)
        self.spans, self.mass = spans, mass

    def entry(self, i: int) -> tuple[float, int, int]:
        """(seconds, first piece, run): the heap's order, shortest then earliest first."""
        span = self.spans[self.last[i] - 1, 1] - self.spans[self.first[i], 0]
        return float(span), self.first[i], i

    def unlink(self, i: int) -> None:
        self.gone[i] = True
        self.alive -= 1
        p, n = self.prev[i], self.next[i]
        if p is not None:
            self.next[p] = n
        if n is not None:
            self.prev[n] = p

    def share(self, i: int, p: int, n: int) -> list[int]:
        """Give run i's pieces up to the cut where p's votes stop leading n's to p, the rest to
        n (ties: the cut nearest the middle); returns the runs that grew."""
        import numpy as np

        cuts = np.arange(self.first[i], self.last[i] + 1)
        lead = self.mass[cuts, self.label[p]] - self.mass[cuts, self.label[n]]
        best = cuts[lead >= lead.max() - 1e-9]
        cut = int(best[np.abs(2 * best - self.first[i] - self.last[i]).argmin()])
        self.last[p], self.first[n] = cut, cut
        self.unlink(i)
        return [p, n]

    def join(self, i: int, p: int | None, n: int | None) -> list[int]:
        """Run i joins the neighbour its time scores higher on (the longer on a tie), and so
        does the other neighbour where it has the same label; returns the run that grew."""
        votes = self.mass[self.last[i]] - self.mass[self.first[i]]
        sides = [s for s in (p, n) if s is not None]
        into = max(sides, key=lambda s: (float(votes[self.label[s]]), self.entry(s)[0]))
        other = n if into == p else p
        group = [i]
        if other is not None and self.label[other] == self.label[into]:
            group.append(other)
        self.first[into] = min(self.first[g] for g in (*group, into))
        self.last[into] = max(self.last[g] for g in (*group, into))
        for g in group:
            self.unlink(g)
        return [into]

    def kept(self) -> list[tuple[int, int, int]]:
        return [
            (self.first[i], self.last[i], self.label[i])
            for i in range(len(self.gone))
            if not self.gone[i]
        ]


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

    state = _Runs(runs, spans, mass)
    heap = [state.entry(i) for i in range(len(runs))]
    heapq.heapify(heap)
    while heap and state.alive > 1:
        item = heapq.heappop(heap)
        i = item[2]
        if state.gone[i] or item != state.entry(i):
            continue  # folded away, or grown since it was pushed
        if item[0] >= min_duration - 1e-6:  # a span of two half-span pieces stays
            break
        p, n = state.prev[i], state.next[i]
        if p is not None and n is not None and state.label[p] != state.label[n]:
            grown = state.share(i, p, n)
        else:
            grown = state.join(i, p, n)
        for g in grown:
            heapq.heappush(heap, state.entry(g))
    return state.kept()


def default_min_duration(span: float, hop: float) -> float:
    """The shortest segment kept unless the user says otherwise.

    The span is the model's resolution in time: a shorter segment comes from windows that
    straddle two actions, not from an action the model saw. When windows overlap (hop < span)
    every moment has several votes, and a segment no longer than one window can rest on that
    window alone, typically one that straddles two actions and reads, sure of itself, as a third:
    a segment must then outlast two consecutive windows (span + hop) to stand on its own.
    """
    return span + hop if hop < span - 1e-9 else span


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
    boundary moves to where the windows' scores of its two labels fit it best (`_place`).
    """
    import numpy as np

    if not len(windows):
        return []
    extents = np.asarray(windows, dtype=np.float64).reshape(-1, 2)  # (windows, start / end)
    spans, table = pieces(extents, probs, end, start)
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
    bounds = _place(runs, spans, extents, probs, min_duration)
    return _segments(bounds, runs, spans, table, mass, labels, extents.mean(1))


def top_k_runs(
    spans: np.ndarray, probs: np.ndarray, k: int
) -> list[tuple[int, float, float, float]]:
    """Each class's own segments, as proposals that may overlap other classes': the runs of
    pieces (P, 2) where the class is among the k most probable, from probs (classes, P); each
    (class row, start, end, mean probability over its time). With k = 1 they are the top-1
    runs before folding; a larger k adds the runners-up, so the same time may carry several
    labels."""
    import numpy as np

    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(spans))
    ranks = np.argsort(np.argsort(-probs, axis=0, kind="stable"), axis=0, kind="stable")
    lengths = spans[:, 1] - spans[:, 0]
    out = []
    for c in range(len(probs)):
        inside = np.concatenate([[0], (ranks[c] < k).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(inside))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            total = float(lengths[a:b].sum())
            score = float((probs[c, a:b] * lengths[a:b]).sum() / total) if total > 0 else 0.0
            out.append((c, float(spans[a, 0]), float(spans[b - 1, 1]), score))
    return out
