"""Clip windows against the reference formulas (model-facts §1.7, §1.8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcls.clips import Window, frame_indices, predict_plan, segment_plan
from vidcls.registry import get_spec

TSF = get_spec("timesformer")


def reference_indices(frames: int, stride: int, fps: float, video_frames: int) -> list[int]:
    """PySlowFast's test clip 0 of 1: linspace over clip_size, clamped, truncated."""
    clip_size = stride * frames / 30 * fps
    delta = max(video_frames - clip_size, 0)
    start = 0 * delta
    end = start + clip_size - 1
    index = torch.linspace(start, end, frames).clamp(0, video_frames - 1).long()
    return index.tolist()


def frames_shown(window: Window, fps: float, count: int) -> list[int]:
    """Frame numbers shown at a window's instants on a constant-rate video of `count` frames."""
    return [min(int(t * fps + 1e-6), count - 1) for t in window.times]


def test_indices_at_the_reference_rate() -> None:
    assert frame_indices(TSF) == [0, 36, 72, 109, 145, 182, 218, 255]
    assert frame_indices(get_spec("timesformer-hr")) == list(range(0, 256, 17))
    assert frame_indices(get_spec("vivit")) == [i * 63 // 31 for i in range(32)]


@pytest.mark.parametrize("name", ["timesformer", "timesformer-hr", "timesformer-l"])
def test_30fps_matches_the_reference_loader(name: str) -> None:
    spec = get_spec(name)
    window = predict_plan(spec, 300 / 30).windows[0]
    expected = reference_indices(spec.num_frames, spec.frame_stride, 30.0, 300)
    assert frames_shown(window, 30.0, 300) == expected


def test_large_model_repeats_the_last_frame_21_times() -> None:
    window = predict_plan(get_spec("timesformer-l"), 10.0).windows[0]
    shown = frames_shown(window, 30.0, 300)
    assert shown[-21:] == [299] * 21 and shown[-22] == 298
    assert shown[:4] == [0, 4, 8, 12]


def test_other_rates_sample_the_same_instants() -> None:
    window = predict_plan(TSF, 10.0).windows[0]
    assert frames_shown(window, 25.0, 250) == [0, 30, 60, 90, 120, 151, 181, 212]
    assert frames_shown(window, 60.0, 600) == [0, 72, 144, 218, 290, 364, 436, 510]
    # the reference, which counts source frames, differs by at most one frame at 25 fps
    reference = reference_indices(8, 32, 25.0, 250)
    assert reference == [0, 30, 60, 91, 121, 151, 182, 212]
    assert (
        max(abs(a - b) for a, b in zip(frames_shown(window, 25.0, 250), reference, strict=True))
        <= 1
    )


def test_ssv2_takes_segment_midpoints_of_a_short_clip() -> None:
    spec = get_spec("timesformer-ssv2")
    assert frame_indices(spec, 48) == [3, 9, 15, 21, 26, 32, 38, 44]
    (window,) = predict_plan(spec, 4.0).windows  # a 48-frame 12 fps clip
    assert frames_shown(window, 12.0, 48) == [3, 9, 15, 21, 26, 32, 38, 44]


@pytest.mark.parametrize(
    "duration, starts",
    [
        (5.0, [0.0]),  # shorter than the span: one window from 0
        (8.5333333, [0.0]),
        (10.0, [0.0, 10 - 256 / 30]),
        (30.0, list(np.linspace(0, 30 - 256 / 30, 4))),
    ],
)
def test_predict_covers_the_video_with_the_fewest_windows(duration, starts) -> None:
    windows = predict_plan(TSF, duration).windows
    assert [w.start for w in windows] == pytest.approx(starts)
    assert all(w.end <= max(duration, TSF.span) + 1e-9 for w in windows)


def test_predict_clips_n() -> None:
    windows = predict_plan(TSF, 60.0, clips=5).windows
    assert [w.start for w in windows] == pytest.approx(list(np.linspace(0, 60 - TSF.span, 5)))
    assert [w.start for w in predict_plan(TSF, 60.0, clips=1).windows] == [0.0]


def test_segment_windows_every_hop_inside_the_video() -> None:
    windows = segment_plan(TSF, 60.0).windows  # the default hop: a third of the span
    starts = [w.start for w in windows]
    hop = TSF.span / 3
    assert starts[:7] == pytest.approx([k * hop for k in range(7)])
    assert starts[-1] == pytest.approx(60 - TSF.span)  # the tail gets an end-aligned window
    assert starts[-2] < starts[-1] < starts[-2] + hop
    windows = segment_plan(TSF, 60.0, hop=TSF.span).windows
    assert [w.start for w in windows][:7] == pytest.approx([k * TSF.span for k in range(7)])
    windows = segment_plan(TSF, 60.0, hop=2.0).windows
    assert [w.start for w in windows] == pytest.approx(
        [2.0 * k for k in range(26)] + [60 - TSF.span]
    )


def test_unknown_length_tiles_and_keeps_one_window_past_the_end() -> None:
    plan = segment_plan(TSF, None, hop=4.0)
    windows = plan.windows
    first = [next(windows) for _ in range(6)]  # type: ignore[call-overload]
    assert [w.start for w in first] == [0, 4, 8, 12, 16, 20]
    end = 15.0  # windows at 0 and 4 fit; 8 runs past the end and is kept; 12 is not
    assert [plan.keep_partial(w, end) for w in first] == [True, True, True, False, False, False]
