"""Clip windows in time: which instants each window samples, and where windows go.

A window starting at t0 takes frame i at t0 + idx_i / reference_fps, with
idx = linspace(0, frames*stride - 1, frames) truncated: on a 30 fps file this is the reference
test loader frame for frame, and at any other rate it samples the same instants. SSv2 models
("segments" sampling) take the middle frame of each of `frames` equal segments of the window,
as their test loader does over a whole clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .registry import ModelSpec


@dataclass(frozen=True)
class Window:
    index: int
    start: float
    end: float
    times: tuple[float, ...]  # seconds from the first frame


def frame_indices(spec: ModelSpec, window_frames: int | None = None) -> list[int]:
    """Frame numbers at the reference rate, counted from the window's start."""
    frames = spec.num_frames
    if spec.sampling == "stride":
        last = spec.num_frames * spec.frame_stride - 1
        # integer arithmetic: exactly the truncated linspace, with no float rounding at integers
        return [i * last // (frames - 1) for i in range(frames)] if frames > 1 else [0]
    length = window_frames or spec.num_frames * spec.frame_stride
    seg = (length - 1) / frames
    return [(round(seg * i) + round(seg * (i + 1))) // 2 for i in range(frames)]


def _window(spec: ModelSpec, index: int, start: float, span: float, length: int | None) -> Window:
    times = tuple(start + i / spec.reference_fps for i in frame_indices(spec, length))
    return Window(index, start, start + span, times)


@dataclass(frozen=True)
class Plan:
    """The windows of one video, and which unfinished ones to keep when it ends early."""

    windows: Iterator[Window] | list[Window]
    keep_partial: Callable[[Window, float], bool]
    span: float
    hop: float | None


def _short(spec: ModelSpec, duration: float) -> Plan:
    """One window from 0 for a video shorter than the span (SSv2: the window is the video)."""
    length = None
    span = spec.span
    if spec.sampling == "segments":
        length = max(1, round(duration * spec.reference_fps))
        span = duration
    return Plan([_window(spec, 0, 0.0, span, length)], lambda w, end: True, span, None)


def _tiled(spec: ModelSpec, hop: float) -> Plan:
    """Windows every `hop` seconds for a stream of unknown length (standard input).

    When it ends, the first window that runs past the end is kept (the tail would otherwise go
    unclassified) and padded with the last frame; later ones are dropped.
    """
    span = spec.span

    def windows() -> Iterator[Window]:
        k = 0
        while True:
            yield _window(spec, k, k * hop, span, None)
            k += 1

    def keep(window: Window, end: float) -> bool:
        k = window.index
        return k == 0 or (window.start < end and (k - 1) * hop + span < end)

    return Plan(windows(), keep, span, hop)


def predict_plan(spec: ModelSpec, duration: float | None, clips: int | None = None) -> Plan:
    """The fewest evenly spaced windows inside the video that cover it, or `clips` of them."""
    span = spec.span
    if duration is None:
        return _tiled(spec, span)
    if duration <= span + 1e-9:
        return _short(spec, duration)
    count = clips if clips is not None else math.ceil(duration / span - 1e-9)
    if count == 1:
        starts = [0.0]
    else:
        step = (duration - span) / (count - 1)
        starts = [k * step for k in range(count)]
    windows = [_window(spec, k, s, span, None) for k, s in enumerate(starts)]
    return Plan(windows, lambda w, end: True, span, None)


def segment_plan(spec: ModelSpec, duration: float | None, hop: float | None = None) -> Plan:
    """Windows every `hop` seconds (default: the span) that lie inside the video.

    If the last of them ends before the video does, one more window ends exactly at the end.
    """
    span = spec.span
    hop = hop or span
    if hop <= 0:
        raise ValueError("hop must be positive")
    if duration is None:
        return _tiled(spec, hop)
    if duration <= span + 1e-9:
        plan = _short(spec, duration)
        return Plan(plan.windows, plan.keep_partial, plan.span, hop)
    count = int((duration - span) / hop + 1e-9) + 1
    starts = [k * hop for k in range(count)]
    if starts[-1] + span < duration - 1e-6:
        starts.append(duration - span)
    windows = [_window(spec, k, s, span, None) for k, s in enumerate(starts)]
    return Plan(windows, lambda w, end: True, span, hop)
