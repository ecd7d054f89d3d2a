"""Merging window scores into segments."""

from __future__ import annotations

import numpy as np
import pytest

from vidcls.segments import merge_windows, window_bounds

LABELS = ["walk", "run", "jump"]


def probs(*top: int, strength: float = 0.8) -> np.ndarray:
    rows = np.full((len(top), 3), (1 - strength) / 2)
    rows[np.arange(len(top)), list(top)] = strength
    return rows


def test_bounds_fall_midway_between_centres() -> None:
    windows = [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0)]  # hop 2, span 4: centres 2, 4, 6
    assert window_bounds(windows, end=8.0) == [(0.0, 3.0), (3.0, 5.0), (5.0, 8.0)]
    # hop == span: the windows themselves tile the video
    assert window_bounds([(0, 5), (5, 10)], end=10.0) == [(0.0, 5.0), (5.0, 10.0)]


def test_consecutive_windows_with_one_label_merge() -> None:
    windows = [(2.0 * k, 2.0 * k + 4) for k in range(6)]  # ends at 14
    p = probs(0, 0, 1, 1, 1, 2)
    segments = merge_windows(windows, p, LABELS, end=14.0)
    assert [(s.label, s.start, s.end, s.windows) for s in segments] == [
        ("walk", 0.0, 5.0, 2),
        ("run", 5.0, 11.0, 3),
        ("jump", 11.0, 14.0, 1),
    ]
    assert segments[0].score == pytest.approx(0.8)
    # the segments tile [0, end] without gaps or overlap
    assert all(a.end == b.start for a, b in zip(segments, segments[1:], strict=False))


def test_score_is_the_mean_probability_of_the_label() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05]])
    (segment,) = merge_windows([(0, 2), (2, 4)], p, LABELS, end=4.0)
    assert segment.score == pytest.approx(0.75) and segment.index == 0


def test_min_duration_folds_blips_into_the_better_neighbour() -> None:
    windows = [(float(k), k + 1.0) for k in range(7)]
    p = probs(0, 0, 0, 2, 1, 1, 1)
    p[3] = [0.2, 0.35, 0.45]  # the blip prefers "run" over "walk" among its neighbours
    plain = merge_windows(windows, p, LABELS, end=7.0)
    assert [s.label for s in plain] == ["walk", "jump", "run"]
    folded = merge_windows(windows, p, LABELS, end=7.0, min_duration=1.5)
    assert [(s.label, s.start, s.end) for s in folded] == [("walk", 0.0, 3.0), ("run", 3.0, 7.0)]
    assert folded[1].score == pytest.approx(np.mean([0.35, 0.8, 0.8, 0.8]))


def test_min_duration_never_removes_the_last_segment() -> None:
    segments = merge_windows([(0.0, 1.0)], probs(1), LABELS, end=1.0, min_duration=10)
    assert [(s.label, s.start, s.end) for s in segments] == [("run", 0.0, 1.0)]


def test_no_windows_no_segments() -> None:
    assert merge_windows([], np.zeros((0, 3)), LABELS, end=0.0) == []
