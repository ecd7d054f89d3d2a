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
from dataclasses import dataclass, replace

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


def _window(
    spec: ModelSpec, index: int, start: float, span: float, length: int | None, limit: float | None
) -> Window:
    times = [start + i / spec.reference_fps for i in frame_indices(spec, length)]
    if limit is not None:
        # past the end of the video (or range) the last frame before it repeats
        times = [min(t, limit - END_MARGIN) for t in times]
    return Window(index, start, start + span, tuple(times))


END_MARGIN = 1e-4  # seconds: "the frame shown just before the end"


@dataclass(frozen=True)
class Plan:
    """The windows of one video (or time range), and which unfinished ones to keep at its end."""

    windows: Iterator[Window] | list[Window]
    keep_partial: Callable[[Window, float], bool]
    span: float
    hop: float | None  # segment: seconds between windows; predict: None
    start: float = 0.0
    end: float | None = None  # None: not known in advance (standard input)

    @property
    def total(self) -> int | None:
        """How many windows, when known in advance."""
        return len(self.windows) if isinstance(self.windows, list) else None

    def clamp(self, window: Window, stream_end: float | None = None) -> Window:
        """The window as records report it: it ends no later than the range, nor than the
        stream when its end is known (a padded last window of standard input)."""
        end = window.end if self.end is None else min(window.end, self.end)
        if stream_end is not None:
            end = min(end, stream_end)
        return window if end == window.end else replace(window, end=end)


def _keep_all(window: Window, end: float) -> bool:
    return True


def _short(spec: ModelSpec, start: float, end: float, hop: float | None) -> Plan:
    """One window for a range shorter than the span (SSv2: the window is the whole range)."""
    length = None
    span = spec.span
    if spec.sampling == "segments":
        length = max(1, round((end - start) * spec.reference_fps))
        span = end - start
    window = _window(spec, 0, start, span, length, end)
    return Plan([window], _keep_all, span, hop, start, end)


def _tiled(spec: ModelSpec, hop: float, start: float) -> Plan:
    """Windows every `hop` seconds for a stream of unknown length (standard input).

    When it ends, the first window that runs past the end is kept (the tail would otherwise go
    unclassified) and padded with the last frame; later ones are dropped.
    """
    span = spec.span

    def windows() -> Iterator[Window]:
        k = 0
        while True:
            yield _window(spec, k, start + k * hop, span, None, None)
            k += 1

    def keep(window: Window, end: float) -> bool:
        k = window.index
        return k == 0 or (window.start < end and start + (k - 1) * hop + span < end)

    return Plan(windows(), keep, span, hop, start, None)


def _bounds(duration: float | None, start: float, end: float | None) -> tuple[float, float | None]:
    if duration is not None:
        end = duration if end is None else min(end, duration)
    if end is not None and end <= start:
        raise ValueError(f"the time range {start:g}–{end:g} s is empty")
    return start, end


def predict_plan(
    spec: ModelSpec,
    duration: float | None,
    clips: int | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> Plan:
    """The fewest evenly spaced windows inside the video (or range) that cover it, or `clips`."""
    span = spec.span
    start, end = _bounds(duration, start, end)
    if end is None:
        return _tiled(spec, span, start)
    length = end - start
    if length <= span + 1e-9:
        return _short(spec, start, end, None)
    count = clips if clips is not None else math.ceil(length / span - 1e-9)
    step = (length - span) / (count - 1) if count > 1 else 0.0
    windows = [_window(spec, k, start + k * step, span, None, end) for k in range(count)]
    return Plan(windows, _keep_all, span, None, start, end)


# segment's default hop as a share of the span: the one that labels the most of a video's
# duration correctly (README, "How clips are taken": the measurement, and what it costs)
HOP_FRACTION = 1 / 3


def default_hop(span: float) -> float:
    """Seconds between the windows of `segment` when the user names none."""
    return span * HOP_FRACTION


def segment_plan(
    spec: ModelSpec,
    duration: float | None,
    hop: float | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> Plan:
    """Windows every `hop` seconds (default: `default_hop`) that lie inside the video (or range).

    If the last of them ends before the video does, one more window ends exactly at the end.
    """
    span = spec.span
    hop = hop or default_hop(span)
    if hop <= 0:
        raise ValueError("hop must be positive")
    start, end = _bounds(duration, start, end)
    if end is None:
        return _tiled(spec, hop, start)
    length = end - start
    if length <= span + 1e-9:
        return _short(spec, start, end, hop)
    count = int((length - span) / hop + 1e-9) + 1
    starts = [start + k * hop for k in range(count)]
    if starts[-1] + span < end - 1e-6:
        starts.append(end - span)
    windows = [_window(spec, k, s, span, None, end) for k, s in enumerate(starts)]
    return Plan(windows, _keep_all, span, hop, start, end)
