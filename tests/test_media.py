"""The synthetic-video makers in media.py / media_broken.py produce what they promise."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from av.video.frame import PictureType

from vidcls_dev.media import (
    VARIANTS,
    corner_colours,
    dominant,
    encode_counter,
    grain_counter,
    make_long_video,
    make_video,
    read_counter,
    square_box,
    top_level_atoms,
    upright,
)
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

UPRIGHT = {"top_left": "red", "top_right": "green", "bottom_left": "blue", "bottom_right": "white"}


def decode_all(source: str | Path | object) -> list[av.VideoFrame]:
    with av.open(str(source) if isinstance(source, Path) else source) as container:
        return list(container.decode(video=0))


def rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def resize_short(images: torch.Tensor, short: int, antialias: bool) -> torch.Tensor:
    """Bilinear resize of N x C x H x W so the short side is ``short``."""
    h, w = images.shape[-2:]
    size = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
    return F.interpolate(images, size=size, mode="bilinear", antialias=antialias)


def three_crops(images: torch.Tensor) -> Iterator[torch.Tensor]:
    """Square crops at the start, centre and end of the long side."""
    h, w = images.shape[-2:]
    s = min(h, w)
    for offset in (0, (max(h, w) - s) // 2, max(h, w) - s):
        yield images[..., :, offset : offset + s] if w >= h else images[..., offset : offset + s, :]


def counters(path: Path) -> list[int]:
    return [read_counter(rgb(f)) for f in decode_all(path)]


# --- frame counter, without a codec -----------------------------------------------------------
@pytest.mark.parametrize("size", [(320, 180), (1920, 1080), (360, 640), (223, 127), (64, 64)])
def test_counter_roundtrip(size: tuple[int, int]) -> None:
    for index in (0, 1, 2, 255, 256, 4097, 30000, 65535):
        image = encode_counter(index, *size)
        assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
        assert read_counter(image) == index


def test_counter_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_counter(65536, 320, 180)
    with pytest.raises(ValueError):
        read_counter(np.full((180, 320, 3), 128, np.uint8))
    with pytest.raises(ValueError):
        read_counter(np.random.default_rng(0).integers(0, 256, (180, 320, 3), dtype=np.uint8))
    image = encode_counter(12345, 320, 180)
    # Rotated or mirrored codes fail loudly instead of reading as another number.
    for wrong in (np.rot90(image, 1), np.rot90(image, 2), np.rot90(image, 3), image[::-1]):
        with pytest.raises(ValueError):
            read_counter(wrong)


def test_counter_any_layout_and_dtype() -> None:
    image = encode_counter(4242, 320, 180)
    normalised = (image / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert read_counter(image[..., ::-1]) == 4242  # BGR
    assert read_counter(normalised.astype(np.float32)) == 4242
    assert read_counter(np.moveaxis(normalised, -1, 0)) == 4242  # C x H x W
    assert read_counter(image[..., 0]) == 4242  # H x W
    assert read_counter(image.astype(np.float16) / 255) == 4242


@pytest.mark.parametrize("size", [(1920, 1080), (320, 180), (360, 640), (223, 127), (480, 480)])
def test_counter_survives_resize_and_crops(size: tuple[int, int]) -> None:
    indices = [0, 777, 65535]
    batch = torch.stack([torch.from_numpy(encode_counter(i, *size)) for i in indices])
    batch = batch.permute(0, 3, 1, 2).float()
    for short in (64, 100, 224, 256):
        for antialias in (False, True):
            resized = resize_short(batch, short, antialias)
            for crop in three_crops(resized):
                assert crop.shape[-2:] == (short, short)
                got = [read_counter(c.permute(1, 2, 0).numpy()) for c in crop]
                assert got == indices, (short, antialias)
    # resize 256 + centre crop 224 also cuts the short side
    resized = resize_short(batch, 256, True)
    h, w = resized.shape[-2:]
    centre = resized[..., (h - 224) // 2 : (h + 224) // 2, (w - 224) // 2 : (w + 224) // 2]
    assert [read_counter(c.numpy()) for c in centre] == indices


# --- H.264 MP4 -------------------------------------------------------------------------------
def test_h264_300_frames_every_counter_and_crop(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.mp4", n_frames=300, fps=30, size=(320, 180))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.format.name) == ("h264", "yuv420p")
        assert (stream.width, stream.height, stream.average_rate) == (320, 180, 30)
        frames = list(container.decode(video=0))
    assert len(frames) == 300
    # Default GOP: x264 keyint 250, not one keyframe per frame (pict_type left on the frames).
    assert sum(f.key_frame for f in frames) <= 3
    assert any(f.pict_type == PictureType.B for f in frames)
    assert [read_counter(rgb(f)) for f in frames] == list(range(300))
    assert np.allclose([f.time for f in frames], np.arange(300) / 30, atol=1e-3)

    batch = torch.from_numpy(np.stack([rgb(f) for f in frames])).permute(0, 3, 1, 2).float()
    for antialias in (True, False):
        for crop in three_crops(resize_short(batch, 224, antialias)):
            assert [read_counter(c.permute(1, 2, 0).numpy()) for c in crop] == list(range(300))


def test_portrait_counter_and_crops(tmp_path: Path) -> None:
    path = make_video(tmp_path / "p.mp4", n_frames=40, size=(360, 640))
    frames = decode_all(path)
    assert (frames[0].width, frames[0].height) == (360, 640)
    batch = torch.from_numpy(np.stack([rgb(f) for f in frames])).permute(0, 3, 1, 2).float()
    for short, antialias in ((224, False), (64, True)):
        for crop in three_crops(resize_short(batch, short, antialias)):
            assert [read_counter(c.numpy()) for c in crop] == list(range(40))


@pytest.mark.parametrize("fps", [25, 60, 24])
def test_frame_rates(tmp_path: Path, fps: int) -> None:
    path = make_video(tmp_path / "f.mp4", duration=1.0, fps=fps)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == fps
        frames = list(container.decode(video=0))
    assert len(frames) == fps
    assert np.allclose([f.time for f in frames], np.arange(fps) / fps, atol=1e-3)
    assert [read_counter(rgb(f)) for f in frames] == list(range(fps))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_times(tmp_path: Path, suffix: str) -> None:
    times = [0.0, 0.04, 0.05, 0.2, 0.333, 0.5, 0.51, 1.0, 1.7, 1.701]
    frames = decode_all(make_video(tmp_path / f"vfr{suffix}", times=times))
    assert [read_counter(rgb(f)) for f in frames] == list(range(len(times)))
    assert np.allclose([f.time for f in frames], times, atol=1e-3)


@pytest.mark.parametrize(("name", "kwargs", "codec", "pix_fmt", "size"), VARIANTS)
def test_codec_variants(
    tmp_path: Path, name: str, kwargs: dict, codec: str, pix_fmt: str, size: tuple[int, int]
) -> None:
    path = make_video(tmp_path / name, n_frames=12, **kwargs)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        frames = list(container.decode(video=0))
    assert frames[0].format.name == pix_fmt
    assert (frames[0].width, frames[0].height) == size
    assert [read_counter(rgb(f)) for f in frames] == list(range(12))
    start = frames[0].time  # MPEG-TS starts later than 0 (B-frame delay)
    # GIF stores centiseconds
    assert np.allclose([f.time - start for f in frames], np.arange(12) / 30, atol=6e-3)


def test_gray_h264_is_monochrome(tmp_path: Path) -> None:
    path = make_video(tmp_path / "g.mp4", n_frames=3, pix_fmt="gray")
    with av.open(str(path)) as container:
        extradata = container.streams.video[0].codec_context.extradata
    # avcC: after the SPS and PPS lists, High profile records chroma_format_idc (0 = 4:0:0).
    pos = 6
    for _ in range(extradata[5] & 31):
        pos += 2 + int.from_bytes(extradata[pos : pos + 2], "big")
    n_pps, pos = extradata[pos], pos + 1
    for _ in range(n_pps):
        pos += 2 + int.from_bytes(extradata[pos : pos + 2], "big")
    assert extradata[1] == 100 and extradata[pos] & 3 == 0


def test_odd_size_yuv420p_h264_is_refused(tmp_path: Path) -> None:
    with pytest.raises(av.error.ExternalError):
        make_video(tmp_path / "odd.mp4", n_frames=2, size=(223, 127))


@pytest.mark.parametrize(
    ("suffix", "audio_codec"), [(".mp4", "aac"), (".mkv", "aac"), (".ts", "aac"), (".webm", "opus")]
)
def test_audio_stream(tmp_path: Path, suffix: str, audio_codec: str) -> None:
    path = make_video(tmp_path / f"av{suffix}", n_frames=30, audio=True)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        assert container.streams.audio[0].codec_context.name == audio_codec
        samples = sum(f.samples for f in container.decode(audio=0))
    assert 0.9 * 48000 <= samples <= 1.2 * 48000
    assert counters(path) == list(range(30))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_second_video_stream(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"two{suffix}", n_frames=10, second_video_stream=True)
    with av.open(str(path)) as container:
        first, second = container.streams.video
        assert (second.width, second.height) == (160, 90)
        other = list(container.decode(second))
    assert len(other) == 10
    assert dominant(rgb(other[0]).reshape(-1, 3).mean(axis=0)) == "blue"
    assert counters(path) == list(range(10))


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_faststart_moves_moov(tmp_path: Path, suffix: str) -> None:
    def order(path: Path) -> list[str]:
        return [kind for kind, _, _ in top_level_atoms(path) if kind in ("moov", "mdat")]

    assert order(make_video(tmp_path / f"a{suffix}", n_frames=5)) == ["moov", "mdat"]
    end = make_video(tmp_path / f"b{suffix}", n_frames=5, faststart=False)
    assert order(end) == ["mdat", "moov"]
    assert counters(end) == list(range(5))


def test_gop_and_no_bframes(tmp_path: Path) -> None:
    path = make_video(tmp_path / "g.mp4", n_frames=60, gop=10, bframes=False)
    with av.open(str(path)) as container:
        assert not container.streams.video[0].codec_context.has_b_frames
        frames = list(container.decode(video=0))
    assert [i for i, f in enumerate(frames) if f.key_frame] == list(range(0, 60, 10))
    assert {PictureType(f.pict_type) for f in frames} == {PictureType.I, PictureType.P}
    assert [read_counter(rgb(f)) for f in frames] == list(range(60))


def test_quality_levels(tmp_path: Path) -> None:
    sizes = {}
    for quality in ("low", "high", "lossless"):
        path = make_video(
            tmp_path / f"{quality}.mp4", n_frames=10, content=grain_counter, quality=quality
        )
        sizes[quality] = path.stat().st_size
        if quality != "low":
            assert counters(path) == list(range(10))
    assert sizes["low"] < sizes["high"] < sizes["lossless"]
    with pytest.raises(ValueError):
        make_video(tmp_path / "x.mp4", quality="best")


# --- rotation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("suffix", "rotation", "frame_rotation"),
    [
        (".mp4", 90, -90),
        (".mp4", 180, -180),
        (".mp4", 270, 90),
        (".mkv", 90, -90),
        (".mov", 270, 90),
        (".mp4", 0, 0),
    ],
)
def test_rotation_corners(tmp_path: Path, suffix: str, rotation: int, frame_rotation: int) -> None:
    path = make_video(tmp_path / f"r{suffix}", n_frames=3, content="corners", rotation=rotation)
    frame = decode_all(path)[0]
    assert frame.rotation == frame_rotation
    stored = (180, 320) if rotation % 180 else (320, 180)
    assert (frame.width, frame.height) == stored
    raw = rgb(frame)
    if rotation:
        assert dominant(corner_colours(raw)["top_left"]) != "red"
    # np.rot90 turns counter-clockwise, frame.rotation is counter-clockwise degrees.
    shown = np.rot90(raw, k=frame.rotation // 90)
    assert shown.shape == (180, 320, 3)
    assert {k: dominant(v) for k, v in corner_colours(shown).items()} == UPRIGHT


def test_rotation_counter_reads_only_upright(tmp_path: Path) -> None:
    path = make_video(tmp_path / "r.mp4", n_frames=5, rotation=90, size=(320, 180))
    frames = decode_all(path)
    assert [read_counter(upright(rgb(f), f.rotation)) for f in frames] == list(range(5))
    with pytest.raises(ValueError):
        read_counter(rgb(frames[0]))


def test_rotation_needs_a_container_that_stores_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_video(tmp_path / "r.ts", rotation=90)


# --- other content ----------------------------------------------------------------------------
def test_square_position_follows_time(tmp_path: Path) -> None:
    path = make_video(tmp_path / "s.mp4", n_frames=60, content="square", size=(320, 180))
    centres = []
    for frame in decode_all(path):
        bright = rgb(frame).mean(axis=2) > 128
        ys, xs = np.nonzero(bright)
        x0, y0, x1, y1 = square_box(frame.time, 320, 180)
        assert abs(xs.min() - x0) <= 1 and abs(xs.max() - (x1 - 1)) <= 1
        assert abs(ys.min() - y0) <= 1 and abs(ys.max() - (y1 - 1)) <= 1
        centres.append(xs.mean())
    assert np.all(np.diff(centres) > 0)  # left to right


def test_callable_content(tmp_path: Path) -> None:
    def stripes(index: int, t: float, width: int, height: int) -> np.ndarray:
        out = np.zeros((height, width, 3), np.uint8)
        out[:, : width // 2] = (255, 0, 0) if index % 2 else (0, 0, 255)
        return out

    frames = decode_all(make_video(tmp_path / "c.mkv", n_frames=4, content=stripes))
    left = [dominant(rgb(f)[:, :100].reshape(-1, 3).mean(axis=0)) for f in frames]
    assert left == ["blue", "red", "blue", "red"]


def test_long_video_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    path = make_long_video(tmp_path / "long.mp4", seconds=300, fps=30, size=(160, 90))
    elapsed = time.perf_counter() - start
    print(f"make_long_video 300 s: {elapsed:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
    assert elapsed < 20
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 9000
        assert abs(container.duration / 1e6 - 300) < 0.1
        container.streams.video[0].thread_type = "AUTO"
        for i, frame in enumerate(container.decode(video=0)):
            if i % 97 == 0 or i == 8999:
                assert read_counter(rgb(frame)) == i
    assert i == 8999 and abs(frame.time - 8999 / 30) < 1e-3


# --- broken and odd inputs ---------------------------------------------------------------------
@pytest.mark.parametrize("maker", [make_empty, make_random_bytes, make_text])
def test_not_media_is_invalid_data(tmp_path: Path, maker) -> None:
    path = maker(tmp_path / "x.mp4")
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(path))


def test_png_opens_as_one_frame_whatever_the_name(tmp_path: Path) -> None:
    png = make_png(tmp_path / "x.png", size=(128, 96))
    disguised = Path(shutil.copy(png, tmp_path / "x.mp4"))
    for path in (png, disguised):
        with av.open(str(path)) as container:
            assert container.format.name == "png_pipe"
            frames = list(container.decode(video=0))
        assert len(frames) == 1 and read_counter(rgb(frames[0])) == 0


@pytest.mark.parametrize(("name", "codec"), [("a.m4a", "aac"), ("a.wav", "pcm_s16le")])
def test_audio_only(tmp_path: Path, name: str, codec: str) -> None:
    path = make_audio_only(tmp_path / name)
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 0
        assert container.streams.audio[0].codec_context.name == codec
        with pytest.raises(IndexError):
            next(container.decode(video=0))  # a generator: raises on first use


def decode_per_packet(source: object) -> tuple[list[av.VideoFrame], list[Exception]]:
    frames, errors = [], []
    with av.open(source) as container:
        for packet in container.demux(video=0):
            try:
                frames.extend(packet.decode())
            except av.error.InvalidDataError as error:
                errors.append(error)
    return frames, errors


def test_truncated_mp4(tmp_path: Path) -> None:
    path = make_truncated(tmp_path / "t.mp4", n_frames=60)
    frames, errors = decode_per_packet(str(path))
    assert 5 <= len(frames) < 60 and len(errors) >= 1
    assert [read_counter(rgb(f)) for f in frames] == list(range(len(frames)))


def test_truncated_header(tmp_path: Path) -> None:
    path = make_truncated_header(tmp_path / "h.mp4")
    assert path.stat().st_size == 200
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 0


def test_corrupt_packets(tmp_path: Path) -> None:
    path = make_corrupt_packets(tmp_path / "c.mp4", n_frames=150)
    with av.open(str(path)) as container, pytest.raises(av.error.InvalidDataError):
        for _ in container.decode(video=0):
            pass
    frames, errors = decode_per_packet(str(path))
    assert len(errors) >= 1 and len(frames) >= 0.8 * 150
    readable = 0
    for frame in frames:
        try:
            read_counter(rgb(frame))
            readable += 1
        except ValueError:
            pass
    assert readable >= 0.4 * 150


def test_moov_at_end_cannot_come_through_a_pipe(tmp_path: Path) -> None:
    path = make_moov_at_end(tmp_path / "e.mp4")
    kinds = [kind for kind, _, _ in top_level_atoms(path)]
    assert kinds.index("mdat") < kinds.index("moov")
    assert counters(path) == list(range(20))
    # av.open succeeds (FFmpeg logs "partial file" and "Could not find codec parameters"); the
    # first demux raises av.error.InvalidDataError: "[Errno 1094995529] Invalid data found when
    # processing input: '<none>'; last error log: [mov,mp4,m4a,3gp,3g2,mj2] stream 0, offset
    # 0x30: partial file".
    with av.open(unseekable(path)) as container:
        assert len(container.streams.video) == 1
        with pytest.raises(av.error.InvalidDataError):
            next(container.demux(video=0))
    # A moov-at-end file small enough for PyAV's 32 KiB I/O buffer still plays from a pipe.
    small = make_video(tmp_path / "small.mp4", n_frames=10, faststart=False)
    assert small.stat().st_size < 32768
    assert [read_counter(rgb(f)) for f in decode_all(unseekable(small))] == list(range(10))


@pytest.mark.parametrize("name", ["p.mkv", "p.ts", "p.webm", "p.mp4", "frag.mp4", "stream.mkv"])
def test_pipe_friendly_files_decode_unseekable(tmp_path: Path, name: str) -> None:
    maker = {"frag.mp4": make_fragmented_mp4, "stream.mkv": make_streamed_mkv}.get(name, make_video)
    path = maker(tmp_path / name, n_frames=40, content=grain_counter, audio=name == "stream.mkv")
    assert path.stat().st_size > 32768  # more than PyAV's I/O buffer: the pipe really streams
    source = io.BufferedReader(unseekable(path))  # what sys.stdin.buffer is on a pipe
    assert not source.seekable()
    with av.open(source) as container:
        if name == "stream.mkv":
            assert container.duration is None  # nothing went back to write it
        frames = list(container.decode(video=0))
    assert [read_counter(rgb(f)) for f in frames] == list(range(40))
