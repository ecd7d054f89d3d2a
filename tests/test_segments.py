"""Merging window scores into segments."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.segments import default_min_duration, merge_windows, pieces

LABELS = ["walk", "run", "jump"]


def probs(*top: int, strength: float = 0.8) -> np.ndarray:
    rows = np.full((len(top), 3), (1 - strength) / 2)
    rows[np.arange(len(top)), list(top)] = strength
    return rows


def summary(segments) -> list[tuple[str, float, float, int]]:
    return [(s.label, s.start, s.end, s.windows) for s in segments]


def test_pieces_average_the_windows_that_saw_them() -> None:
    windows = [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0)]  # hop 2, span 4
    p = probs(0, 1, 2)
    spans, table = pieces(windows, p, end=8.0)
    assert spans.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0]]
    np.testing.assert_allclose(table, [p[0], (p[0] + p[1]) / 2, (p[1] + p[2]) / 2, p[2]])


def test_pieces_no_window_saw_take_the_nearest() -> None:
    windows = [(0.0, 1.0), (3.0, 4.0)]  # hop 3, span 1: [1, 3] unseen
    spans, table = pieces(windows, probs(0, 1), end=4.5)
    assert spans.tolist() == [[0.0, 1.0], [1.0, 3.0], [3.0, 4.0], [4.0, 4.5]]
    # [1, 3] is as near to both centres (0.5, 3.5) as can be; the first wins the tie
    assert [int(r.argmax()) for r in table] == [0, 0, 1, 1]


def test_windows_that_tile_the_video_give_their_own_labels() -> None:
    windows = [(4.0 * k, 4.0 * k + 4) for k in range(4)]  # hop == span
    segments = merge_windows(windows, probs(0, 0, 1, 2), LABELS, end=16.0)
    assert summary(segments) == [
        ("walk", 0.0, 8.0, 2),
        ("run", 8.0, 12.0, 1),
        ("jump", 12.0, 16.0, 1),
    ]
    assert segments[0].score == pytest.approx(0.8)


def test_a_straddling_window_is_outvoted_by_its_neighbours() -> None:
    """Hop half the span: the window across the walk->run boundary reads as 'jump' (neither),
    but each half of it was also seen whole by a neighbour that is sure."""
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(5)]  # ends at 12, centres 2, 4, ... 10
    p = np.array(
        [[0.95, 0.03, 0.02], [0.95, 0.03, 0.02], [0.3, 0.2, 0.5], [0.03, 0.95, 0.02],
         [0.03, 0.95, 0.02]]
    )  # fmt: skip
    segments = merge_windows(windows, p, LABELS, end=12.0)
    # the pieces put the boundary at the straddling window's centre (6). The windows that saw
    # each side whole ([0, 4], [8, 12]) lead by 0.92 either way, so a lead of 0.1 says 1.02 /
    # 1.84 of [4, 8] is walk; [2, 6] and [6, 10] say walk ends in [6, 8], where only [6, 10]
    # (all run, it says) disagrees: least squares puts the boundary at the middle of the two
    # asks, 5 + 2 * 1.02 / 1.84, and the straddling window is counted in the earlier segment
    cross = 5 + 2 * 1.02 / 1.84
    assert summary(segments) == [("walk", 0.0, pytest.approx(cross), 3), ("run", cross, 12.0, 2)]
    assert segments[0].end == segments[1].start
    assert sum(s.windows for s in segments) == len(windows)
    # walk over [0, 2] (0.95), [2, 4] (0.95), [4, 6] ((0.95 + 0.3) / 2) and the start of [6, 8]
    # ((0.3 + 0.03) / 2), weighted by time
    walk = 2 * (0.95 + 0.95 + 0.625) + (cross - 6) * 0.165
    assert segments[0].score == pytest.approx(walk / cross)


def test_windows_across_a_cut_that_read_as_neither_leave_the_boundary_between_them() -> None:
    """Across a scene cut both windows that straddle the walk->run boundary (at 7) read, sure of
    themselves, as a third action. Their scores of walk and run say nothing about where in
    [6, 8] (the stretch only they saw) the cut lies, so it goes to the middle: not to where
    their small, equal scores of walk and run happen to cross (an edge of that stretch)."""
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(7)]  # centres 2, 4, ... 14
    p = probs(0, 0, 2, 2, 1, 1, 1, strength=0.9)
    p[2:4] = [0.1, 0.1, 0.8]
    segments = merge_windows(windows, p, LABELS, end=16.0, min_duration=6.0)
    # folded at 6; the old rule (the crossing of walk and run, interpolated between centres)
    # found no crossing in [6, 8], where both lead by 0, and kept 6
    assert [(s.label, s.start, s.end) for s in segments] == [
        ("walk", 0.0, pytest.approx(7.0)), ("run", pytest.approx(7.0), 16.0)
    ]  # fmt: skip


@pytest.mark.parametrize("sure", [1.0, 0.3])
def test_a_boundary_is_placed_the_same_however_sure_the_model_is(sure: float) -> None:
    """Scores that follow the shares of each action, but never above `sure` (the rest spread
    over all labels, as a model of hundreds of classes does): the boundary is still exact."""
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(7)]
    truth = [(0.0, 6.7, 0), (6.7, 16.0, 1)]
    p = sure * _share_scores(windows, truth) + (1 - sure) / 3
    segments = merge_windows(windows, p, LABELS, end=16.0, min_duration=6.0)
    assert [s.label for s in segments] == ["walk", "run"]
    assert segments[0].end == pytest.approx(6.7, abs=1e-9)


def test_an_end_aligned_last_window_shares_its_overlap() -> None:
    windows = [(0.0, 4.0), (4.0, 8.0), (5.0, 9.0)]  # the last one ends with the video
    p = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.3, 0.7]])
    segments = merge_windows(windows, p, LABELS, end=9.0)
    # [5, 8] is seen by both of the last two: run 0.55 beats jump 0.35; both centres (6, 7) lie
    # in it, so the jump at the tail has no window of its own, and no centre after 8 to move
    # that boundary. No window lies wholly in walk or run clear of the walk->run edge (4), so
    # the clearest lead near it (0.8, walk in [0, 4]) sets the scale: [4, 8] trails by 0.6, so
    # (0.8 - 0.6) / 1.6 of it is walk. [5, 9] reaches into jump and is left out.
    cross = 4 + 4 * 0.2 / 1.6
    assert summary(segments) == [
        ("walk", 0.0, pytest.approx(cross), 1),
        ("run", pytest.approx(cross), 8.0, 2),
        ("jump", 8.0, 9.0, 0),
    ]


def test_score_is_the_mean_probability_of_the_label() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05]])
    (segment,) = merge_windows([(0, 2), (2, 4)], p, LABELS, end=4.0)
    assert segment.score == pytest.approx(0.75) and segment.index == 0


def test_a_range_starts_where_it_starts() -> None:
    segments = merge_windows([(10.0, 14.0), (14.0, 18.0)], probs(2, 2), LABELS, 18.0, start=10.0)
    assert summary(segments) == [("jump", 10.0, 18.0, 2)]


def test_min_duration_folds_blips_into_the_better_neighbour() -> None:
    windows = [(float(k), k + 1.0) for k in range(7)]
    p = probs(0, 0, 0, 2, 1, 1, 1)
    p[3] = [0.2, 0.35, 0.45]  # the blip prefers "run" over "walk" among its neighbours
    plain = merge_windows(windows, p, LABELS, end=7.0)
    assert [s.label for s in plain] == ["walk", "jump", "run"]
    folded = merge_windows(windows, p, LABELS, end=7.0, min_duration=1.5)
    # folded at 3. The windows wholly in walk lead by 0.7, those wholly in run trail by 0.7:
    # the blip [3, 4], trailing by 0.15, is (0.7 - 0.15) / 1.4 walk, and [2, 3] is all walk
    cross = 3 + 0.55 / 1.4
    assert [(s.label, s.start, s.end) for s in folded] == [
        ("walk", 0.0, pytest.approx(cross)), ("run", pytest.approx(cross), 7.0)
    ]  # fmt: skip
    assert folded[1].score == pytest.approx((0.35 * (4 - cross) + 0.8 * 3) / (7 - cross))
    assert sum(s.windows for s in folded) == len(windows)


def test_a_short_run_between_two_labels_is_cut_where_their_votes_cross() -> None:
    """Hop half the span: the window across the walk->run boundary is sure it saw a jump and
    wins the two pieces it shares with sure neighbours. Folded, its time is shared between
    walk and run at the straddling window's centre, not handed whole to one of them."""
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(7)]  # centres 2, 4, ... 14
    p = probs(0, 0, 0, 2, 1, 1, 1, strength=0.95)
    p[3] = [0.01, 0.01, 0.98]
    kept = merge_windows(windows, p, LABELS, end=16.0, min_duration=4.0)
    assert [(s.label, s.start, s.end) for s in kept] == [
        ("walk", 0.0, 6.0), ("jump", 6.0, 10.0), ("run", 10.0, 16.0)
    ]  # fmt: skip
    folded = merge_windows(windows, p, LABELS, end=16.0, min_duration=5.0)
    assert summary(folded) == [("walk", 0.0, 8.0, 3), ("run", 8.0, 16.0, 4)]


def test_a_folded_run_at_the_end_joins_its_only_neighbour() -> None:
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(4)]
    p = probs(0, 0, 0, 2)
    p[3] = [0.01, 0.01, 0.98]
    segments = merge_windows(windows, p, LABELS, end=10.0, min_duration=6.0)
    assert [(s.label, s.start, s.end) for s in segments] == [("walk", 0.0, 10.0)]


def test_min_duration_never_removes_the_last_segment() -> None:
    segments = merge_windows([(0.0, 1.0)], probs(1), LABELS, end=1.0, min_duration=10)
    assert [(s.label, s.start, s.end) for s in segments] == [("run", 0.0, 1.0)]


def test_no_windows_no_segments() -> None:
    assert merge_windows([], np.zeros((0, 3)), LABELS, end=0.0) == []


def test_a_segment_as_long_as_min_duration_stays() -> None:
    span = 56 / 30  # motion-tiny's: window edges at multiples of span / 2, in floating point
    windows = [(k * span / 2, k * span / 2 + span) for k in range(6)]
    p = probs(0, 0, 0, 1, 0, 0)
    p[3] = [0.005, 0.99, 0.005]
    segments = merge_windows(windows, p, LABELS, end=windows[-1][1], min_duration=span)
    # the sure window outvotes either neighbour on the two pieces it shares: exactly one span
    assert [s.label for s in segments] == ["walk", "run", "walk"]
    assert segments[1].end - segments[1].start == pytest.approx(span)


def _fold_by_hand(spans: np.ndarray, table: np.ndarray, min_duration: float) -> list[tuple]:
    """The rule spelt out slowly: find the shortest run (the earliest of equals). Between two
    different labels, cut it where the earlier label's time-weighted score on the left plus the
    later one's on the right is highest (the cut nearest the middle on a tie), each side joining
    its neighbour; otherwise give it the neighbouring label it scores higher on (the longer
    neighbour on a tie). Start again."""
    chosen = list(table.argmax(1))
    lengths = spans[:, 1] - spans[:, 0]
    while True:
        runs, a = [], 0
        for i in range(1, len(chosen) + 1):
            if i == len(chosen) or chosen[i] != chosen[a]:
                runs.append((a, i, chosen[a]))
                a = i
        seconds = [spans[b - 1, 1] - spans[a, 0] for a, b, _ in runs]
        k = int(np.argmin(seconds))
        if len(runs) == 1 or seconds[k] >= min_duration - 1e-6:
            return [(spans[a, 0], spans[b - 1, 1], c) for a, b, c in runs]
        a, b, _ = runs[k]
        sides = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        if len(sides) == 2 and runs[k - 1][2] != runs[k + 1][2]:
            before, after = runs[k - 1][2], runs[k + 1][2]
            score = {
                c: float(table[a:c, before] @ lengths[a:c] + table[c:b, after] @ lengths[c:b])
                for c in range(a, b + 1)
            }
            top = max(score.values())
            cut = min(
                (c for c in score if score[c] >= top - 1e-9), key=lambda c: abs(2 * c - a - b)
            )
            chosen[a:cut] = [before] * (cut - a)
            chosen[cut:b] = [after] * (b - cut)
            continue
        best = max(
            sides,
            key=lambda j: (np.average(table[a:b, runs[j][2]], weights=lengths[a:b]), seconds[j]),
        )
        chosen[a:b] = [runs[best][2]] * (b - a)


def _sure_by_hand(
    w: np.ndarray, lead: np.ndarray, edge: float, lo: float, hi: float
) -> float | None:
    """The highest lead among the four windows nearest `edge` that lie in [lo, hi]."""
    seen = [k for k in range(len(w)) if w[k, 0] >= lo - 1e-9 and w[k, 1] <= hi + 1e-9]
    seen = sorted(seen, key=lambda k: abs(w[k].mean() - edge))[:4]
    return max(lead[k] for k in seen) if seen else None


def _place_by_hand(
    folded: list[tuple], windows: list[tuple[float, float]], p: np.ndarray, min_duration: float
) -> list[tuple]:
    """Each boundary moved to the point of a fine grid between the window centres either side
    of it where the windows fit it best: each window that may straddle it and reaches no third
    segment asks that the earlier label's share of it be its lead of that label over the later
    one, mapped from [-sure_b, sure_a] to [0, 1] and clipped; the squared misses add up. sure_a
    is the highest lead among the four windows nearest the boundary that lie in the earlier
    segment and stay half the centres' gap clear of its boundaries; sure_b the same for the later
    one; one missing takes the other's; both missing, the largest lead either way among the
    straddling windows. Clamped so a segment loses at most a third of itself, and at most half
    of what it has beyond min_duration."""
    w = np.array(windows)
    centres = w.mean(1)
    bounds = [folded[0][0]] + [b for _, b, _ in folded]
    spare = [max(0.0, min((b - a) / 3, (b - a - min_duration) / 2)) for a, b, _ in folded]
    out = list(bounds)
    for i in range(1, len(folded)):
        edge, before, after = bounds[i], folded[i - 1][2], folded[i][2]
        left, right = centres[centres < edge - 1e-9], centres[centres > edge + 1e-9]
        if not len(left) or not len(right):
            continue
        lo, hi = max(left.max(), edge - spare[i - 1]), min(right.min(), edge + spare[i])
        clear = (right.min() - left.max()) / 2
        lead = p[:, before] - p[:, after]
        a0 = bounds[i - 1] + (clear if i > 1 else 0)
        b1 = bounds[i + 1] - (clear if i + 1 < len(bounds) - 1 else 0)

        sure_a = _sure_by_hand(w, lead, edge, a0, edge - clear)
        sure_b = _sure_by_hand(w, -lead, edge, edge + clear, b1)
        near = [
            k for k in range(len(w))
            if w[k, 0] < hi and w[k, 1] > lo and w[k, 0] >= bounds[i - 1] - 1e-9
            and w[k, 1] <= bounds[i + 1] + 1e-9
        ]  # fmt: skip
        if sure_a is None and sure_b is None:
            sure_a = sure_b = max([abs(lead[k]) for k in near], default=0.0)
        sure_a = sure_b if sure_a is None else sure_a
        sure_b = sure_a if sure_b is None else sure_b
        if sure_a + sure_b <= 1e-9 or not near:
            continue
        grid = np.linspace(lo, hi, 200_001)
        cost = np.zeros_like(grid)
        for k in near:
            share = np.clip((grid - w[k, 0]) / (w[k, 1] - w[k, 0]), 0, 1)
            cost += (share - np.clip((lead[k] + sure_b) / (sure_a + sure_b), 0, 1)) ** 2
        best = np.flatnonzero(cost <= cost.min() + 1e-12)
        out[i] = grid[best[np.abs(grid[best] - edge).argmin()]]
    return [(out[j], out[j + 1], c) for j, (_, _, c) in enumerate(folded)]


@pytest.mark.parametrize("seed", range(20))
def test_folding_matches_the_rule_spelt_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, span = int(rng.integers(5, 80)), float(rng.uniform(1, 4))
    hop = span * float(rng.choice([0.25, 0.5, 1.0, 1.5]))
    windows = [(k * hop, k * hop + span) for k in range(n)]
    labels = [str(c) for c in range(4)]
    p = rng.dirichlet(np.full(4, 0.3), n)
    end = windows[-1][1]
    min_duration = span * float(rng.uniform(0.5, 3))
    got = merge_windows(windows, p, labels, end=end, min_duration=min_duration)
    spans, table = pieces(windows, p, end)
    want = _place_by_hand(_fold_by_hand(spans, table, min_duration), windows, p, min_duration)
    assert [s.index for s in got] == [c for _, _, c in want]
    grid_step = 2 * max(hop, span) / 200_000
    np.testing.assert_allclose([s.end for s in got], [b for _, b, _ in want], atol=grid_step)
    assert all(a.end == b.start for a, b in zip(got, got[1:], strict=False))
    assert got[0].start == 0.0 and got[-1].end == end
    if len(got) > 1:  # moving boundaries keeps what folding promised
        assert min(s.end - s.start for s in got) >= min_duration - 1e-6
    assert sum(s.windows for s in got) == n


def _share_scores(windows: list[tuple[float, float]], truth: list[tuple]) -> np.ndarray:
    """Each window scores each label by the share of its time that label fills."""
    p = np.zeros((len(windows), 3))
    for i, (a, b) in enumerate(windows):
        for start, end, c in truth:
            p[i, c] += max(0.0, min(b, end) - max(a, start)) / (b - a)
    return p


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_boundaries_land_where_scores_that_follow_time_shares_say(fraction: float) -> None:
    """A model whose window scores are the share of the window each action fills (motion-tiny
    is trained towards that) gets its boundaries back exactly, not to the nearest window edge,
    whether windows overlap or tile the video (where interpolating the scores between centres
    a span apart is off by up to (3 - 2 sqrt 2) / 2 = 8.6 % of a span)."""
    rng = np.random.default_rng(7)
    span, errors = 2.0, []
    hop = span * fraction
    for _ in range(50):
        lengths = rng.uniform(2 * span, 4 * span, 8)
        n = int(np.ceil((lengths.sum() - span) / hop)) + 1
        windows = [(k * hop, k * hop + span) for k in range(n)]
        end = windows[-1][1]
        edges = [0.0, *np.cumsum(lengths)[:-1].tolist(), end]
        classes = [int(rng.integers(3))]
        for _ in lengths[1:]:
            classes.append(int(rng.choice([c for c in range(3) if c != classes[-1]])))
        truth = [(edges[j], edges[j + 1], c) for j, c in enumerate(classes)]
        scores = _share_scores(windows, truth)
        got = merge_windows(windows, scores, LABELS, end, default_min_duration(span, hop))
        assert [s.index for s in got] == classes
        errors += [abs(s.end - t[1]) for s, t in zip(got, truth, strict=False)]
    assert max(errors) < 1e-9


def test_default_min_duration_outlasts_one_window_only_when_windows_overlap() -> None:
    # windows that tile (or leave gaps): each is the only vote on its time, so one stands
    assert default_min_duration(4.0, 4.0) == 4.0
    assert default_min_duration(4.0, 6.0) == 4.0
    assert default_min_duration(56 / 30, 56 / 30 * (1 - 1e-12)) == 56 / 30  # rounding: tiling
    # overlapping windows: a segment must outlast two consecutive windows
    assert default_min_duration(4.0, 2.0) == 6.0
    assert default_min_duration(4.0, 1.0) == 5.0
