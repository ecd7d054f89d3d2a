"""Decoding odd and broken inputs through the public API: the right frames, or a clear error.

Every check reads what reaches the model: `vidcls.model_inputs` tensors (counters, colours) and
the records of `vidcls.predict` / `vidcls.segment` / `vidcls.api.classify`. Expected frame
numbers are computed here from the times the test wrote, never taken from vidcls.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vidcls
from vidcls.api import classify
from vidcls.clips import frame_indices
from vidcls.config import FileOptions as Options
from vidcls.errors import VideoDecodeError
from vidcls.registry import get_spec
from vidcls.video import probe
from vidcls.windows import open_windows
from vidcls_dev.hf_models import save_hub_folder, tiny_timesformer
from vidcls_dev.media import corner_colours, dominant, make_long_video, make_video, read_counter
from vidcls_dev.media_broken import (
    make_audio_only,
    make_corrupt_packets,
    make_empty,
    make_fragmented_mp4,
    make_moov_at_end,
    make_png,
    make_random_bytes,
    make_streamed_mkv,
    make_text,
    make_truncated,
    make_truncated_header,
    unseekable,
)

SPEC = get_spec("timesformer")
INDICES = frame_indices(SPEC)  # [0, 36, 72, 109, 145, 182, 218, 255] at 30 fps
SPAN = 256 / 30
MEAN, STD = 0.45, 0.225
SMALL = (160, 90)
UPRIGHT = {"top_left": "red", "top_right": "green", "bottom_left": "blue", "bottom_right": "white"}

# MKV/WebM store milliseconds and GIF centiseconds: frame 182 of a 30 fps file (6.0667 s) is
# stored at 6.067 / 6.07 s; the picker's tolerance of half a timestamp tick must still take 182.


# --- helpers -----------------------------------------------------------------------------------
def shown(times: Sequence[float], t: float) -> int:
    """Index of the frame shown at instant t: the last whose time is <= t (the first before it)."""
    return max(0, bisect.bisect_right(list(times), t + 1e-6) - 1)


def expected_counters(times: Sequence[float], start: float) -> list[int]:
    return [shown(times, start + i / SPEC.reference_fps) for i in INDICES]


def window_counters(x: torch.Tensor) -> list[list[int]]:
    """Counter of every frame of every crop of one model input (crops, frames, 3, H, W)."""
    return [
        [read_counter(x[c, i].permute(1, 2, 0).numpy()) for i in range(x.shape[1])]
        for c in range(x.shape[0])
    ]


def pixels(chw: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) crop back to H x W x 3 RGB in 0..255."""
    return (chw * STD + MEAN).clamp(0, 1).mul(255).permute(1, 2, 0).numpy()


def colour_names(chw: torch.Tensor) -> dict[str, str]:
    return {k: dominant(v) for k, v in corner_colours(pixels(chw)).items()}


def inputs(path: Path, **kwargs) -> list[tuple[float, float, torch.Tensor]]:
    return list(vidcls.model_inputs(path, "timesformer", **kwargs))


def strip(record: dict) -> dict:
    """A record without its scores, for readable assertion messages."""
    return {k: v for k, v in record.items() if k not in ("top_k", "windows", "segments")}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_timesformer")
    return save_hub_folder(tiny_timesformer(num_frames=8, image_size=224, num_labels=400), folder)


@pytest.fixture(scope="module")
def loaded(ckpt: Path) -> vidcls.LoadedModel:
    return vidcls.load_model("timesformer", weights=ckpt, device="cpu", progress=False)


# --- 1. odd formats: they decode, and the frames are the right ones ---------------------------
# (file name, make_video kwargs, frame count, fps); 270 frames at 30 fps give two predict windows.
FORMATS = [
    pytest.param("h264_25.mp4", {"fps": 25}, 250, 25, id="h264-25fps"),
    pytest.param("h264_30.mp4", {}, 300, 30, id="h264-30fps"),
    pytest.param("h264_60.mp4", {"fps": 60}, 600, 60, id="h264-60fps"),
    pytest.param("odd.mp4", {"size": (223, 127), "pix_fmt": "yuv444p"}, 270, 30, id="odd-223x127"),
    pytest.param("ten.mp4", {"pix_fmt": "yuv420p10le"}, 270, 30, id="10bit"),
    pytest.param("gray.mp4", {"pix_fmt": "gray"}, 270, 30, id="gray"),
    pytest.param("y444.mp4", {"pix_fmt": "yuv444p"}, 270, 30, id="yuv444p"),
    pytest.param("vp9.webm", {}, 270, 30, id="vp9-webm"),
    pytest.param("h264.mkv", {}, 270, 30, id="mkv"),
    pytest.param("h264.ts", {}, 270, 30, id="mpegts"),
    pytest.param("mpeg4.avi", {}, 270, 30, id="avi-mpeg4"),
    pytest.param("anim.gif", {}, 270, 30, id="gif"),
    pytest.param("audio.mp4", {"audio": True}, 270, 30, id="audio-mp4"),
    pytest.param("two.mp4", {"second_video_stream": True}, 270, 30, id="two-streams-mp4"),
    # Short Matroska files: every instant but 0 lies past the end, away from the ms rounding.
    pytest.param("audio.webm", {"audio": True}, 30, 30, id="audio-webm"),
    pytest.param("two.mkv", {"second_video_stream": True}, 30, 30, id="two-streams-mkv"),
]


@pytest.mark.parametrize(("name", "kwargs", "n_frames", "fps"), FORMATS)
def test_format_decodes_the_right_frames(
    tmp_path: Path, name: str, kwargs: dict, n_frames: int, fps: int
) -> None:
    kwargs = {"size": SMALL, **kwargs}
    path = make_video(tmp_path / name, n_frames=n_frames, **kwargs)
    times = [i / fps for i in range(n_frames)]  # what make_video was asked to write
    duration = n_frames / fps

    info = probe(path)
    assert (info.width, info.height) == kwargs["size"]
    assert info.frame_count == n_frames
    assert info.duration == pytest.approx(duration, abs=1e-3)
    assert info.vfr is False
    if not name.endswith(".gif"):  # a GIF's 3/3/4 cs delays have no single rate
        assert info.fps == pytest.approx(fps, rel=1e-3)

    windows = inputs(path)
    starts = [0.0] if duration <= SPAN else [0.0, duration - SPAN]
    assert [w[0] for w in windows] == pytest.approx(starts, abs=1e-6)
    for start, end, x in windows:
        assert end == pytest.approx(min(start + SPAN, duration), abs=1e-3)  # never past the end
        assert x.dtype == torch.float32 and tuple(x.shape) == (3, 8, 3, 224, 224)
        # every crop of every frame carries the first stream's counter, at the right instant
        assert window_counters(x) == [expected_counters(times, start)] * 3, (start, name)
    if n_frames >= 256:
        literal = {
            25: [0, 30, 60, 90, 120, 151, 181, 212],
            30: [0, 36, 72, 109, 145, 182, 218, 255],
            60: [0, 72, 144, 218, 290, 364, 436, 510],
        }[fps]
        assert window_counters(windows[0][2])[1] == literal


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("mode", ["predict", "segment"])
def test_variable_frame_rate_picks_the_last_frame_at_or_before_each_instant(
    tmp_path: Path, suffix: str, mode: str
) -> None:
    # Irregular gaps in whole milliseconds (exact in both containers), bursts and long holds;
    # one frame exactly on an instant (1.2 s = 36/30) and one 1 ms after one (2.401 s).
    gaps_ms = [700, 100, 250, 150, 33, 400, 5, 12, 33, 33, 34]
    gaps_ms += [400, 900, 5, 50, 400, 12, 400, 12, 50, 400]
    ms = [0]
    for gap in gaps_ms * 3:
        ms.append(ms[-1] + gap)
    times = sorted({t / 1000 for t in ms if t < 11500} | {1.2, 2.401})
    path = make_video(tmp_path / f"vfr{suffix}", times=times, size=SMALL)

    info = probe(path)
    assert info.vfr is True
    assert info.frame_count == len(times)
    assert times[-1] < info.duration <= times[-1] + 0.9

    windows = inputs(path, mode=mode, hop=1.3)
    if mode == "predict":
        assert [w[0] for w in windows] == pytest.approx([0.0, info.duration - SPAN])
    else:
        count = math.floor((info.duration - SPAN) / 1.3) + 1
        assert [w[0] for w in windows] == pytest.approx(
            [1.3 * k for k in range(count)] + [info.duration - SPAN]
        )
    for start, _, x in windows:
        assert window_counters(x) == [expected_counters(times, start)] * 3, start
    first = window_counters(windows[0][2])[0]
    assert first[1] == times.index(1.2)  # a frame exactly at the instant is the one shown
    assert first[2] == times.index(2.401) - 1  # one 1 ms late is not


def test_mpegts_times_count_from_the_first_frame(tmp_path: Path) -> None:
    path = make_video(tmp_path / "late.ts", n_frames=90, size=SMALL)
    info = probe(path)
    assert info.duration == pytest.approx(3.0, abs=1e-3)
    ((start, end, x),) = inputs(path, mode="segment", hop=1.0)
    assert (start, end) == (0.0, pytest.approx(3.0, abs=1e-3))  # the window stops at the end
    assert window_counters(x)[1] == [0, 36, 72, 89, 89, 89, 89, 89]


# --- 2. rotation -------------------------------------------------------------------------------
ROTATIONS = [
    pytest.param(90, (180, 320), id="90-phone-portrait"),
    pytest.param(270, (180, 320), id="270-portrait"),
    pytest.param(180, (320, 180), id="180-landscape"),
    pytest.param(90, (320, 180), id="90-landscape"),
    pytest.param(0, (320, 180), id="0"),
]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize(("rotation", "size"), ROTATIONS)
def test_rotated_video_is_fed_upright(
    tmp_path: Path, ckpt: Path, suffix: str, rotation: int, size: tuple[int, int]
) -> None:
    path = make_video(
        tmp_path / f"r{rotation}{suffix}",
        n_frames=5,
        content="corners",
        rotation=rotation,
        size=size,
    )
    info = probe(path)
    assert (info.width, info.height) == size
    assert info.rotation == rotation

    ((_, _, x),) = inputs(path)
    for i in range(x.shape[1]):
        assert colour_names(x[1, i]) == UPRIGHT, i

    result = vidcls.predict(path, "timesformer", weights=ckpt, device="cpu")
    assert result["rotation"] == rotation
    assert (result["width"], result["height"]) == size
    assert 0 < result["frames_decoded"] <= 5  # frames no window needs may be skipped


def test_rotation_survives_standard_input(tmp_path: Path, loaded) -> None:
    path = make_video(
        tmp_path / "phone.mkv", n_frames=5, content="corners", rotation=90, size=(180, 320)
    )
    result = classify(loaded, "-", stdin=unseekable(path))
    assert result["rotation"] == 90
    assert (result["width"], result["height"]) == (180, 320)
    by_path = classify(loaded, path)
    assert [k["index"] for k in result["top_k"]] == [k["index"] for k in by_path["top_k"]]


# --- 3. crop geometry --------------------------------------------------------------------------
def edge(x: torch.Tensor, rows: slice, cols: slice) -> set[str]:
    """Names of the colours in a strip of every frame of one crop (3, H, W per frame)."""
    names = set()
    for frame in x:
        rgb = pixels(frame)[rows, cols]
        names.update(dominant(p) for p in rgb.reshape(-1, 3))
    return names


def test_landscape_crops_run_left_to_right(tmp_path: Path) -> None:
    path = make_video(tmp_path / "land.mp4", n_frames=5, content="corners", size=(320, 180))
    ((_, _, x),) = inputs(path)
    assert x.shape[0] == 3
    left, centre, right = x
    # 320x180 -> 398x224: the left crop's first columns, the right crop's last columns
    assert edge(left, slice(4, 108), slice(0, 3)) == {"red"}
    assert edge(left, slice(116, 220), slice(0, 3)) == {"blue"}
    assert edge(right, slice(4, 108), slice(-3, None)) == {"green"}
    assert edge(right, slice(116, 220), slice(-3, None)) == {"white"}
    assert not edge(left, slice(None), slice(0, 3)) & {"green", "white"}
    assert not edge(right, slice(None), slice(-3, None)) & {"red", "blue"}
    for frame in centre:  # the centre crop straddles the middle of the picture
        assert colour_names(frame) == UPRIGHT

    ((_, _, one),) = inputs(path, crops=1)
    assert one.shape[0] == 1
    assert torch.equal(one[0], centre)


def test_portrait_crops_run_top_to_bottom(tmp_path: Path) -> None:
    path = make_video(tmp_path / "port.mp4", n_frames=5, content="corners", size=(180, 320))
    ((_, _, x),) = inputs(path)
    top, centre, bottom = x
    assert edge(top, slice(0, 3), slice(4, 108)) == {"red"}
    assert edge(top, slice(0, 3), slice(116, 220)) == {"green"}
    assert edge(bottom, slice(-3, None), slice(4, 108)) == {"blue"}
    assert edge(bottom, slice(-3, None), slice(116, 220)) == {"white"}
    for frame in centre:
        assert colour_names(frame) == UPRIGHT
    ((_, _, one),) = inputs(path, crops=1)
    assert one.shape[0] == 1 and torch.equal(one[0], centre)


def _edge_bands(i: int, t: float, w: int, h: int) -> np.ndarray:
    """Grey, with bands an eighth wide along each edge: red left, blue right, green top, white
    bottom. A crop of either orientation loses two of them; the whole picture keeps all four."""
    out = np.full((h, w, 3), 128, np.uint8)
    out[:, : w // 8], out[:, w - w // 8 :] = (255, 0, 0), (0, 0, 255)
    out[: h // 8, w // 8 : w - w // 8], out[h - h // 8 :, w // 8 : w - w // 8] = (0, 255, 0), 255
    return out


def _bands(frame: np.ndarray) -> set[str]:
    """Which of the four edge bands a (64, 64, 3) view shows where `_edge_bands` drew them."""
    middle = slice(20, 44)
    strips = {
        "red": frame[middle, :3], "blue": frame[middle, -3:],
        "green": frame[:3, middle], "white": frame[-3:, middle],
    }  # fmt: skip
    return {k for k, v in strips.items() if {dominant(p) for p in v.reshape(-1, 3)} == {k}}


@pytest.mark.parametrize(
    ("rotation", "size"), [(0, (320, 180)), (90, (320, 180)), (270, (180, 320))]
)
def test_full_frame_resize_squeezes_the_whole_upright_picture(
    tmp_path: Path, rotation: int, size: tuple[int, int]
) -> None:
    """resize = "full" (motion-tiny): the one view shows the whole displayed frame, upright."""
    spec = dataclasses.replace(SPEC, resize="full", short_side=64, crop=64, crops=1)
    path = make_video(
        tmp_path / f"full{rotation}.mp4",
        n_frames=5,
        content=_edge_bands,
        rotation=rotation,
        size=size,
    )
    ((_, views),) = list(open_windows(path, spec, Options(mode="predict")))
    assert views.shape == (1, spec.num_frames, 64, 64, 3)
    for frame in views[0]:
        assert _bands(frame) == {"red", "blue", "green", "white"}
        assert dominant(frame[32, 32]) == "grey"
    # the same file cropped as the hub models are: a band along the long side is gone
    cropped = dataclasses.replace(spec, resize="short_side")
    ((_, views),) = list(open_windows(path, cropped, Options(mode="predict")))
    assert len(_bands(views[0, 0])) == 2


# --- 4. broken inputs --------------------------------------------------------------------------
# (name, maker, reason in the message for a path, reason for the same bytes on standard input)
# (name, maker, reason in the message for a path, reason for the same bytes on standard input)
BROKEN = [
    pytest.param("empty.mp4", make_empty, "empty file", "standard input is empty", id="empty"),
    pytest.param("random.mp4", make_random_bytes, "not a video", "not a video", id="random"),
    pytest.param("text.mp4", make_text, "not a video", "not a video", id="text-as-mp4"),
    pytest.param("image.png", make_png, "still image", "still image", id="png"),
    pytest.param("image.mp4", make_png, "still image", "still image", id="png-as-mp4"),
    # from a pipe an .m4a written without faststart is refused for its index at the end first
    pytest.param(
        "audio.m4a",
        make_audio_only,
        r"no video stream \(audio only\)",
        r"audio only|moov",
        id="m4a",
    ),
    pytest.param(
        "audio.wav",
        make_audio_only,
        r"no video stream \(audio only\)",
        r"no video stream \(audio only\)",
        id="wav",
    ),
    pytest.param(
        "header.mp4",
        make_truncated_header,
        "no video stream",
        "no video stream",
        id="header-200-bytes",
    ),
    # cut inside the moov, after the video track's header: any clear reason will do
    pytest.param(
        "header400.mp4",
        lambda p: make_truncated_header(p, n_bytes=400),
        None,
        None,
        id="header-400-bytes",
    ),
]


@pytest.mark.parametrize(("name", "maker", "reason", "stdin_reason"), BROKEN)
def test_broken_input_is_a_clear_error(
    tmp_path: Path, loaded, ckpt: Path, name: str, maker, reason: str, stdin_reason: str
) -> None:
    path = maker(tmp_path / name)
    calls = {
        "model_inputs": lambda: list(vidcls.model_inputs(path)),
        "classify": lambda: classify(loaded, path),
        "predict": lambda: vidcls.predict(path, "timesformer", weights=ckpt, device="cpu"),
        "segment": lambda: vidcls.segment(path, "timesformer", weights=ckpt, device="cpu"),
        "probe": lambda: probe(path),
    }
    for call, run in calls.items():
        with pytest.raises(VideoDecodeError, match=reason) as caught:
            run()
        assert str(caught.value).startswith(f"{path}: "), call
    with pytest.raises(VideoDecodeError, match=stdin_reason) as caught:
        classify(loaded, "-", stdin=unseekable(path))
    assert str(caught.value).startswith("-: ")


def cut_at_packet_boundary(path: Path, packets: int) -> Path:
    """The file cut right after its first ``packets`` video packets (in file order)."""
    with av.open(str(path)) as container:
        ends = sorted(p.pos + p.size for p in container.demux(video=0) if p.size)
    path.write_bytes(path.read_bytes()[: ends[packets - 1]])
    return path


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("corrupt"),
        pytest.param("truncated-mid-packet"),
        pytest.param("truncated-at-packet"),
    ],
)
def test_damaged_video_decodes_what_it_can_and_warns(tmp_path: Path, ckpt: Path, kind: str) -> None:
    if kind == "corrupt":
        path, total = make_corrupt_packets(tmp_path / "bad.mp4", n_frames=150), 150
    elif kind == "truncated-mid-packet":
        path, total = make_truncated(tmp_path / "cut.mp4", n_frames=60, keep=0.5), 60
    else:
        path, total = make_video(tmp_path / "cut.mp4", n_frames=60), 60
        cut_at_packet_boundary(path, 31)

    ((start, _, x),) = inputs(path)  # no error: the window is filled from what decodes
    assert start == 0.0
    with pytest.warns(UserWarning, match="corrupt|truncat"):
        result = vidcls.predict(path, "timesformer", weights=ckpt, device="cpu")
        assert result["num_windows"] == 1
        assert 0 < result["frames_decoded"] < total
        assert result["corrupt_packets"] > 0 or result["frames_decoded"] < total
        if kind == "corrupt":
            assert result["corrupt_packets"] > 0
        else:
            # frames 0..n-1 decode; every instant after the cut shows the last of them
            last = result["frames_decoded"] - 1
            assert window_counters(x)[1] == [0] + [last] * 7


def decodable_frames(path: Path) -> int:
    """Frames a plain single-threaded decoder gets out of a damaged file, packet by packet."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                pass
    return count


def cut_after_first_packet(path: Path) -> Path:
    """The file cut 4 bytes into its second video packet: the first keyframe is whole."""
    with av.open(str(path)) as container:
        first, second = itertools.islice(container.demux(video=0), 2)
        assert second.pos == first.pos + first.size
        cut = second.pos + 4
    path.write_bytes(path.read_bytes()[:cut])
    return path


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param("first-keyframe"),
        pytest.param("half"),
    ],
)
def test_truncated_video_keeps_every_decodable_frame(tmp_path: Path, cut: str) -> None:
    if cut == "half":
        path = make_truncated(tmp_path / "half.mp4", n_frames=60, keep=0.5)
    else:
        path = cut_after_first_packet(make_video(tmp_path / "key.mp4", n_frames=60, size=SMALL))
    decodable = decodable_frames(path)
    assert decodable >= 1
    ((start, _, x),) = inputs(path)
    times = [i / 30 for i in range(decodable)]
    assert window_counters(x)[1] == expected_counters(times, start)


# --- 5. standard input -------------------------------------------------------------------------
STDIN = [
    pytest.param("s.mkv", lambda p: make_video(p, n_frames=90, size=SMALL), id="mkv"),
    pytest.param("s.ts", lambda p: make_video(p, n_frames=90, size=SMALL), id="mpegts"),
    pytest.param("s.webm", lambda p: make_video(p, n_frames=90, size=SMALL), id="webm"),
    pytest.param(
        "piped.mkv", lambda p: make_streamed_mkv(p, n_frames=90, size=SMALL), id="pipe-written-mkv"
    ),
    pytest.param("fast.mp4", lambda p: make_video(p, n_frames=90, size=SMALL), id="faststart-mp4"),
    pytest.param(
        "frag.mp4", lambda p: make_fragmented_mp4(p, n_frames=90, size=SMALL), id="fragmented-mp4"
    ),
]


@pytest.mark.parametrize(("name", "maker"), STDIN)
def test_standard_input_classifies_like_the_file(tmp_path: Path, loaded, name: str, maker) -> None:
    path = maker(tmp_path / name)
    piped = classify(loaded, "-", mode="segment", hop=1.0, stdin=unseekable(path))
    by_path = classify(loaded, path, mode="segment", hop=1.0)
    assert piped["file"] == "-"
    assert piped["frames_decoded"] == 90
    assert piped["num_windows"] == 1 and piped["corrupt_packets"] == 0
    assert piped["windows"][0]["start"] == 0.0
    # the same single window from 0 (padded with frame 89) gives the same scores
    a, b = piped["windows"][0]["top_k"], by_path["windows"][0]["top_k"]
    assert [k["index"] for k in a] == [k["index"] for k in b]
    assert [k["score"] for k in a] == pytest.approx([k["score"] for k in b], abs=1e-5)


@pytest.mark.parametrize(("name", "maker"), STDIN)
def test_standard_input_duration_and_rate(tmp_path: Path, loaded, name: str, maker) -> None:
    path = maker(tmp_path / name)
    piped = classify(loaded, "-", mode="segment", hop=1.0, stdin=unseekable(path))
    assert piped["fps"] == pytest.approx(30, rel=1e-3), strip(piped)
    assert piped["duration"] == pytest.approx(3.0, abs=1e-3), strip(piped)
    assert piped["windows"][0]["end"] == pytest.approx(3.0, abs=1e-3)
    assert piped["segments"][-1]["end"] == pytest.approx(3.0, abs=1e-3)
    assert probe(path).fps == pytest.approx(30, rel=1e-3)


def test_standard_input_rejects_mp4_with_index_at_the_end(tmp_path: Path, loaded) -> None:
    path = make_moov_at_end(tmp_path / "late_index.mp4")
    with pytest.raises(VideoDecodeError, match="moov") as caught:
        classify(loaded, "-", stdin=unseekable(path))
    message = str(caught.value)
    assert message.startswith("-: ")
    assert "faststart" in message and "by path" in message  # says what to do
    assert classify(loaded, path)["num_windows"] == 1  # the same file by path is fine


def test_standard_input_tiles_windows_and_keeps_the_first_past_the_end(
    tmp_path: Path, loaded
) -> None:
    path = make_video(tmp_path / "twenty.mkv", n_frames=600, size=SMALL)
    piped = classify(loaded, "-", mode="segment", hop=4.0, stdin=unseekable(path))
    assert piped["frames_decoded"] == 600
    assert piped["duration"] == pytest.approx(20.0, abs=1e-3)
    # 12 + span runs past 20 s and is kept (8 + span ends before it); 16 is dropped
    assert [w["start"] for w in piped["windows"]] == [0.0, 4.0, 8.0, 12.0]
    assert [w["end"] for w in piped["windows"]] == pytest.approx(
        [SPAN, 4 + SPAN, 8 + SPAN, 20.0], abs=1e-3
    )
    segments = piped["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(20.0, abs=1e-3)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))


@pytest.mark.parametrize("suffix", [pytest.param(".mkv"), ".ts"])
def test_standard_input_tiled_windows_hold_the_right_frames(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"twenty{suffix}", n_frames=600, size=SMALL)
    # the windows classify runs on: tiled from 0, the last padded with the last frame (599)
    stream = open_windows("-", SPEC, Options(mode="segment", hop=4.0), stdin=unseekable(path))
    got = [
        (w.start, window_counters(torch.from_numpy(v).movedim(-1, -3).float())[1])
        for w, v in stream
    ]
    times = [i / 30 for i in range(600)]
    assert [s for s, _ in got] == [0.0, 4.0, 8.0, 12.0]
    for start, counters in got[:3]:
        assert counters == expected_counters(times, start)
    assert got[3][1] == [360, 396, 432, 469, 505, 542, 578, 599]


# --- 6. a long low-resolution file -------------------------------------------------------------
@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_long_video(
        tmp_path_factory.mktemp("long") / "long.mp4", seconds=300, fps=30, size=SMALL
    )


def test_long_video_segments(long_video: Path, ckpt: Path) -> None:
    duration, n_frames = 300.0, 9000
    # a hop of the span (not the default third): this is about the decode, at the fewest windows
    result = vidcls.segment(long_video, "timesformer", weights=ckpt, device="cpu", hop=SPAN)
    assert result["duration"] == pytest.approx(duration)
    assert result["frames_decoded"] == n_frames
    assert result["hop"] == pytest.approx(SPAN, abs=1e-6)

    count = math.floor((duration - SPAN) / SPAN) + 1
    starts = [k * SPAN for k in range(count)]
    if starts[-1] + SPAN < duration:
        starts.append(duration - SPAN)  # one end-aligned window covers the tail
    assert result["num_windows"] == len(starts) == 36
    windows = result["windows"]
    assert [w["start"] for w in windows] == pytest.approx(starts, abs=1e-3)
    assert [w["end"] for w in windows] == pytest.approx([s + SPAN for s in starts], abs=1e-3)

    segments = result["segments"]
    assert segments[0]["start"] == 0.0
    assert segments[-1]["end"] == pytest.approx(duration)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    assert sum(s["windows"] for s in segments) == len(starts)

    *_, (start, end, x) = vidcls.model_inputs(long_video, "timesformer", mode="segment")
    assert (start, end) == (pytest.approx(duration - SPAN), pytest.approx(duration))
    times = [i / 30 for i in range(n_frames)]
    assert window_counters(x) == [expected_counters(times, start)] * 3
    assert window_counters(x)[0][-1] == n_frames - 1
