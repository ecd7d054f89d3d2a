"""The planned decode (skip unwanted non-reference frames, jump over unneeded GOPs) is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcls.config import FileOptions as Options
from vidcls.registry import get_spec
from vidcls.windows import open_windows
from vidcls_dev.media import make_video


def windows(path: Path, model: str, options: Options, planned: bool):
    stream = open_windows(path, get_spec(model), options)
    if not planned:
        stream.info.packet_pts = []  # no index: decode every frame in order
    out = [(w.start, views.tobytes()) for w, views in stream]
    return out, stream.stats


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planner")
    vfr = [0.0]
    for i in range(1, 700):
        vfr.append(vfr[-1] + (0.02 if i % 7 else 0.09))
    return {
        "gop30": make_video(root / "gop30.mp4", n_frames=900, size=(160, 90), gop=30),
        "gop250": make_video(root / "gop250.mp4", n_frames=900, size=(160, 90)),
        "no-b": make_video(root / "nob.mp4", n_frames=900, size=(160, 90), gop=30, bframes=False),
        "vfr": make_video(root / "vfr.mkv", times=vfr, size=(160, 90), gop=24),
    }


@pytest.mark.parametrize("video", ["gop30", "gop250", "no-b", "vfr"])
@pytest.mark.parametrize(
    "model, options",
    [
        ("timesformer", Options()),
        ("timesformer", Options(mode="segment", hop=3.0)),
        ("timesformer", Options(start=4.0, end=21.0)),
        ("vivit", Options()),
        ("timesformer-hr", Options(crops=1)),
    ],
    ids=["8x32", "segment-hop3", "range", "vivit-32x2", "hr-16x16"],
)
def test_planned_decode_is_bit_identical(videos, video: str, model: str, options: Options) -> None:
    planned, stats = windows(videos[video], model, options, planned=True)
    plain, plain_stats = windows(videos[video], model, options, planned=False)
    assert [s for s, _ in planned] == [s for s, _ in plain]
    assert all(a == b for (_, a), (_, b) in zip(planned, plain, strict=True))
    assert stats.unwanted_packets > 0  # the plan was used
    assert stats.frames < plain_stats.frames or video == "no-b"


def test_sparse_windows_jump_over_whole_gops(videos) -> None:
    _, stats = windows(videos["gop30"], "timesformer", Options(), planned=True)
    assert stats.seeks >= 3  # between the 4 windows, whole 1-s GOPs are not needed
    _, stats = windows(videos["gop30"], "timesformer", Options(clips=1), planned=True)
    assert stats.frames < 300  # one window at the start: the rest of the file is never decoded
