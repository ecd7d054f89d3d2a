"""Synthetic test videos whose content is known, written with PyAV only (no ffmpeg binary).

Frame content kinds:

* ``"counter"``: mid-grey frame with the frame index written as a small black/white code in
  the centre (`encode_counter` / `read_counter`). It reads back after near-lossless coding,
  resizing to a short side >= 64 px and any of the three square crops, up to ~16:9 aspect.
* ``"corners"``: quadrants red / green / blue / white (`corner_colours`, `dominant`).
* ``"square"``: a white square on black moving left to right (`square_box`).

Rotation convention (checked against PyAV 18.1 / FFmpeg 8.1): ``make_video(rotation=R)`` takes
the legacy ``rotate`` tag a phone writes, i.e. a player must turn the *stored* pixels ``R``
degrees clockwise to show them upright. FFmpeg reports the display matrix as a
counter-clockwise angle, so decoded frames have ``frame.rotation == -R`` normalised to
[-180, 180] (90 -> -90, 180 -> -180, 270 -> 90), and ``np.rot90(raw, k=frame.rotation // 90)``
(np.rot90 turns counter-clockwise) gives the upright picture; see `upright`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType

ContentFn = Callable[[int, float, int, int], np.ndarray]

# --- frame counter -----------------------------------------------------------------------------
# The code is a strip of 2 x 12 cells across the short axis, centred on the long axis. Its width
# is 0.14 x the short side because the left/centre/right square crops of a 16:9 frame only share
# a central band 0.22 x the short side wide. Row 0 holds the black and white references, rows
# 1-10 hold 16 index bits and a 4-bit CRC (so a misread raises rather than returns a wrong
# number), row 11 is white/white so a rotated or mirrored code never passes as a valid one.
_ROWS = 12
_THICK = 0.14
# Ends kept clear so a 224-of-256 centre crop (which also cuts the short axis) keeps the code.
_MARGIN = 0.08
_MAX_INDEX = 0xFFFF


def _crc4(value: int) -> int:
    reg = 0xF
    for i in range(15, -1, -1):
        top = (reg >> 3) & 1
        reg = (reg << 1) & 0xF
        if ((value >> i) & 1) ^ top:
            reg ^= 0x3
    return reg


def _counter_cells(index: int) -> np.ndarray:
    if not 0 <= index <= _MAX_INDEX:
        raise ValueError(f"counter index {index} outside 0..{_MAX_INDEX}")
    word = (index << 4) | _crc4(index)
    bits = [(word >> (19 - i)) & 1 for i in range(20)]
    cells = np.zeros((_ROWS, 2), dtype=bool)
    cells[0] = (False, True)
    cells[1:-1] = np.array(bits, dtype=bool).reshape(_ROWS - 2, 2)
    cells[-1] = True
    return cells


def _edges(start: float, length: float, n: int) -> np.ndarray:
    return np.round(start + length * np.arange(n + 1) / n).astype(int)


def encode_counter(index: int, width: int, height: int) -> np.ndarray:
    """Mid-grey ``height x width x 3`` uint8 RGB frame carrying ``index`` (0..65535)."""
    short, long = min(width, height), max(width, height)
    canvas = np.full((short, long), 128, dtype=np.uint8)  # landscape layout: vertical strip
    thick = max(4, round(_THICK * short))
    xs = _edges((long - thick) // 2, thick, 2)
    ys = _edges(_MARGIN * short, (1 - 2 * _MARGIN) * short, _ROWS)
    cells = _counter_cells(index)
    for r in range(_ROWS):
        for c in range(2):
            canvas[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = 255 if cells[r, c] else 0
    if height > width:
        canvas = canvas.T  # portrait: horizontal strip, first column on top
    return np.repeat(canvas[:, :, None], 3, axis=2)


def grain_counter(index: int, t: float, width: int, height: int) -> np.ndarray:
    """Counter frame with faint per-frame noise: packets stay large, read_counter still works."""
    noise = np.random.default_rng(index).integers(-3, 4, (height, width, 1), dtype=np.int16)
    return np.clip(encode_counter(index, width, height) + noise, 0, 255).astype(np.uint8)


def _brightness(image: np.ndarray) -> np.ndarray:
    """Min-max normalised brightness (HxW, float) of HxW, HxWxC or CxHxW input of any dtype."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)  # plain mean: identical for RGB and BGR
    if a.ndim != 2:
        raise ValueError(f"expected an image array, got shape {np.shape(image)}")
    lo, hi = float(a.min()), float(a.max())
    if not hi - lo > 0:
        raise ValueError("flat image carries no counter")
    return (a - lo) / (hi - lo)


def read_counter(image: np.ndarray) -> int:
    """Frame index written by `encode_counter`; ValueError if no valid code is found."""
    g = _brightness(image)
    # Cells are black or white, the background mid-grey: a half-amplitude threshold puts the
    # bounding box on the true (blurred) edges.
    mask = np.abs(g - np.median(g[::3, ::3])) > 0.22
    cols, rows = mask.mean(axis=0), mask.mean(axis=1)
    if cols.max() == 0:
        raise ValueError("no counter code found")
    xi = np.flatnonzero(cols > 0.5 * cols.max())
    yi = np.flatnonzero(rows > 0.5 * rows.max())
    box = g[yi[0] : yi[-1] + 1, xi[0] : xi[-1] + 1]
    if box.shape[1] > box.shape[0]:
        box = box.T
    length, thick = box.shape
    if length < 2 * _ROWS or thick < 3 or length < 2 * thick:
        raise ValueError(f"counter code not found (box {box.shape})")
    values = np.empty((_ROWS, 2))
    for r in range(_ROWS):
        y0 = int((r + 0.3) * length / _ROWS)
        y1 = max(y0 + 1, int(np.ceil((r + 0.7) * length / _ROWS)))
        for c in range(2):
            x0 = int((c + 0.3) * thick / 2)
            x1 = max(x0 + 1, int(np.ceil((c + 0.7) * thick / 2)))
            values[r, c] = box[y0:y1, x0:x1].mean()
    black, white = values[0]
    if white - black < 0.4:
        raise ValueError("counter reference cells not found")
    threshold = (black + white) / 2
    if np.any(values[-1] < threshold):
        raise ValueError("counter end marker not found (rotated or mirrored?)")
    payload = values[1:-1].ravel()
    if np.any(np.abs(payload - threshold) < 0.2 * (white - black)):
        raise ValueError("ambiguous counter cell")
    word = 0
    for bit in payload > threshold:
        word = (word << 1) | int(bit)
    index, crc = word >> 4, word & 0xF
    if _crc4(index) != crc:
        raise ValueError("counter checksum mismatch")
    return index


# --- other content -----------------------------------------------------------------------------
CORNER_COLOURS = {
    "top_left": (255, 0, 0),
    "top_right": (0, 255, 0),
    "bottom_left": (0, 0, 255),
    "bottom_right": (255, 255, 255),
}
SQUARE_SWEEP_S = 4.0  # seconds for the square to cross the frame before it wraps around


def _quadrants(height: int, width: int) -> dict[str, tuple[slice, slice]]:
    rows = {"top": slice(0, height // 2), "bottom": slice(height // 2, height)}
    cols = {"left": slice(0, width // 2), "right": slice(width // 2, width)}
    return {f"{v}_{u}": (rows[v], cols[u]) for v in rows for u in cols}


def corners_frame(width: int, height: int) -> np.ndarray:
    """Upright quadrant picture: red, green / blue, white."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    for name, (ys, xs) in _quadrants(height, width).items():
        out[ys, xs] = CORNER_COLOURS[name]
    return out


def corner_colours(rgb: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """Mean colour of each quadrant's middle half (away from the edges and the other quadrants)."""
    a = np.asarray(rgb, dtype=np.float64)
    out = {}
    for name, (ys, xs) in _quadrants(*a.shape[:2]).items():
        qh, qw = ys.stop - ys.start, xs.stop - xs.start
        patch = a[ys.start + qh // 4 : ys.stop - qh // 4, xs.start + qw // 4 : xs.stop - qw // 4]
        r, g, b = (round(float(v)) for v in patch[..., :3].reshape(-1, 3).mean(axis=0))
        out[name] = (r, g, b)
    return out


def dominant(colour: Sequence[float]) -> str:
    """Name a colour: red/green/blue/white/black/grey, or "other" (e.g. yellow)."""
    r, g, b = (float(v) for v in colour[:3])
    lo, hi = min(r, g, b), max(r, g, b)
    if lo > 200:
        return "white"
    if hi < 55:
        return "black"
    if hi - lo < 60:
        return "grey"
    ranked = sorted(((r, "red"), (g, "green"), (b, "blue")), reverse=True)
    if ranked[0][0] - ranked[1][0] < 100:
        return "other"
    return ranked[0][1]


def square_box(t: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the moving square at time ``t``; x0 grows linearly, wraps each sweep."""
    side = max(2, height // 4)
    travel = max(1, width - side)
    x0 = int(round((t % SQUARE_SWEEP_S) / SQUARE_SWEEP_S * travel))
    y0 = (height - side) // 2
    return x0, y0, x0 + side, y0 + side


def square_frame(t: float, width: int, height: int) -> np.ndarray:
    out = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0, x1, y1 = square_box(t, width, height)
    out[y0:y1, x0:x1] = 255
    return out


def upright(raw: np.ndarray, frame_rotation: int) -> np.ndarray:
    """Stored pixels (HxW...) turned the way a player shows them, given ``frame.rotation``."""
    return np.rot90(raw, k=(frame_rotation // 90) % 4)


def _content_fn(content: str | ContentFn) -> ContentFn:
    if callable(content):
        return content
    if content == "counter":
        return lambda i, t, w, h: encode_counter(i, w, h)
    if content == "corners":
        return lambda i, t, w, h: corners_frame(w, h)
    if content == "square":
        return lambda i, t, w, h: square_frame(t, w, h)
    raise ValueError(f"unknown content {content!r}")


# --- writing -----------------------------------------------------------------------------------
_DEFAULT_CODEC = {".webm": "libvpx-vp9", ".avi": "mpeg4", ".gif": "gif"}
_ROTATABLE = {".mp4", ".mov", ".mkv", ".webm"}
_CRF = {"high": 10, "low": 35}


def _codec_options(codec: str, quality: str, gop: int | None, bframes: bool) -> dict[str, str]:
    if codec in ("libx264", "libx265"):
        preset = "ultrafast" if not bframes else "veryfast"  # ultrafast turns B-frames off
        opts = {"preset": preset}
        if quality == "lossless":
            opts["qp"] = "0"
        else:
            opts["crf"] = str(_CRF[quality])
        params = [] if bframes else ["bframes=0"]
        if gop is not None:
            params += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
        if params:
            opts["x264-params" if codec == "libx264" else "x265-params"] = ":".join(params)
        return opts
    if codec == "libvpx-vp9":
        opts = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "b": "0"}
        if quality == "lossless":
            opts["lossless"] = "1"
        else:
            opts["crf"] = str(_CRF[quality] + 5)
        return opts
    if codec in ("mpeg4", "mjpeg"):
        q = {"high": 2, "low": 20, "lossless": 1}[quality]
        # Same as the ffmpeg CLI's -q:v: fixed quantiser via global_quality in lambda units.
        return {"flags": "+qscale", "global_quality": str(q * 118)}
    return {}


def make_video(
    path: str | Path,
    *,
    n_frames: int | None = None,
    duration: float | None = None,
    fps: float = 30,
    size: tuple[int, int] = (320, 180),
    codec: str | None = None,
    pix_fmt: str | None = None,
    content: str | ContentFn = "counter",
    rotation: int = 0,
    times: Sequence[float] | None = None,
    gop: int | None = None,
    bframes: bool = True,
    audio: bool = False,
    second_video_stream: bool = False,
    faststart: bool = True,
    quality: str = "high",
) -> Path:
    """Write a synthetic video; container from the suffix, ``size`` is the displayed (W, H).

    ``codec`` defaults to libx264 (libvpx-vp9 for .webm, mpeg4 for .avi, gif for .gif) and
    ``pix_fmt`` to the codec's natural 8-bit format. Frame i is shown at ``times[i]`` or i/fps.
    Default: 30 frames.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or _DEFAULT_CODEC.get(suffix, "libx264")
    pix_fmt = pix_fmt or {"gif": "rgb8", "mjpeg": "yuvj420p"}.get(codec, "yuv420p")
    if times is None:
        if n_frames is None:
            n_frames = round(duration * fps) if duration is not None else 30
        times = [i / fps for i in range(n_frames)]
    times = [float(t) for t in times]
    if rotation % 90 or (rotation % 360 and suffix not in _ROTATABLE):
        raise ValueError(f"rotation {rotation} not possible in {suffix}")
    if quality not in ("high", "low", "lossless"):
        raise ValueError(f"unknown quality {quality!r}")
    if audio and suffix in (".gif", ".avi"):
        raise ValueError(f"audio not supported for {suffix} here")
    width, height = size
    k = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if k % 2 else (width, height)
    make_frame = _content_fn(content)

    rate = Fraction(fps).limit_denominator(1001)
    if suffix == ".gif":
        time_base = Fraction(1, 100)
    elif suffix == ".avi":
        time_base = 1 / rate  # AVI has no per-frame timestamps: one tick per frame
    else:
        time_base = Fraction(1, 90000)  # mkv/webm store 1/1000 anyway; 1/90000 is exact for both
    container_options = (
        {"movflags": "+faststart"} if faststart and suffix in (".mp4", ".mov") else {}
    )

    with av.open(str(path), "w", container_options=container_options) as out:
        video = _add_video(out, codec, rate, time_base, stored_w, stored_h, pix_fmt)
        video.codec_context.options = _codec_options(codec, quality, gop, bframes)
        if gop is not None:
            video.codec_context.gop_size = gop
        if not bframes:
            video.codec_context.max_b_frames = 0
        if k:
            # set_display_rotation takes a counter-clockwise angle (what frame.rotation reads).
            video.set_display_rotation(-rotation)
        extra = None
        if second_video_stream:
            extra = _add_video(
                out, codec, rate, time_base, _even(stored_w // 2), _even(stored_h // 2), pix_fmt
            )
            extra.codec_context.options = _codec_options(codec, "low", gop, bframes)
        end = times[-1] + 1 / float(rate) if times else 0.0
        # Audio is muxed alongside the video (not after it) so the file is interleaved.
        tone = _tone(_add_audio(out, suffix), end) if audio else iter(())
        pending = next(tone, None)

        solid = np.zeros((extra.height, extra.width, 3), np.uint8) if extra else None
        if solid is not None:
            solid[:] = (0, 128, 255)
        for i, t in enumerate(times):
            rgb = make_frame(i, t, width, height)
            if k:
                rgb = np.rot90(rgb, k=k)  # stored = upright turned counter-clockwise by R
            _encode(out, video, rgb, t, time_base)
            if extra is not None:
                _encode(out, extra, solid, t, time_base)
            while pending is not None and pending[0] <= t:
                out.mux(pending[1])
                pending = next(tone, None)
        for stream in (video, extra):
            if stream is not None:
                out.mux(stream.encode(None))
        while pending is not None:
            out.mux(pending[1])
            pending = next(tone, None)
    return path


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _add_video(
    out: av.container.OutputContainer,
    codec: str,
    rate: Fraction,
    time_base: Fraction,
    width: int,
    height: int,
    pix_fmt: str,
) -> av.VideoStream:
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.codec_context.time_base = time_base
    stream.time_base = time_base
    return stream


def _encode(
    out: av.container.OutputContainer,
    stream: av.VideoStream,
    rgb: np.ndarray,
    t: float,
    time_base: Fraction,
) -> None:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame.pts = round(t / time_base)
    frame.time_base = time_base
    # A pict_type left on a frame forces that picture type in libx264 (all-intra streams).
    frame.pict_type = PictureType.NONE
    out.mux(stream.encode(frame))


def _add_audio(out: av.container.OutputContainer, suffix: str) -> av.AudioStream:
    codec = "libopus" if suffix == ".webm" else "aac"
    stream = out.add_stream(codec, rate=48000)
    stream.layout = "stereo"
    return stream


def _tone(stream: av.AudioStream, seconds: float) -> Iterator[tuple[float, list[av.Packet]]]:
    """(start time, packets) of a quiet 440 Hz stereo tone ``seconds`` long, then the flush."""
    rate = 48000
    fmt = stream.codec_context.codec.audio_formats[0].name  # fltp for aac, s16 for libopus
    chunk = stream.codec_context.frame_size or 1024
    total = max(chunk, int(seconds * rate))
    for start in range(0, total, chunk):
        wave = 0.1 * np.sin(2 * np.pi * 440 * (start + np.arange(min(chunk, total - start))) / rate)
        if fmt == "s16":  # packed: L R L R ...
            data = np.repeat((wave * 32767).astype(np.int16), 2)[None]
        else:
            data = np.repeat(wave.astype(np.float32)[None], 2, axis=0)
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        yield start / rate, stream.encode(frame)
    yield seconds, stream.encode(None)


def make_long_video(
    path: str | Path, seconds: float = 300, fps: float = 30, size: tuple[int, int] = (160, 90)
) -> Path:
    """Long, small counter video, fast to write (libx264 ultrafast, no B-frames)."""
    path = Path(path)
    width, height = size
    n = round(seconds * fps)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "18"}
        # Build yuv420p directly: the counter is grey/black/white, so Y is the limited-range luma
        # of that grey and chroma is neutral. Skips an RGB->YUV conversion per frame.
        luma_of = np.round(16 + np.arange(256) * 219 / 255).astype(np.uint8)
        i420 = np.full((height * 3 // 2, width), 128, np.uint8)
        for i in range(n):
            i420[:height] = luma_of[encode_counter(i, width, height)[:, :, 0]]
            frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# --- inspecting --------------------------------------------------------------------------------
def top_level_atoms(path: str | Path) -> list[tuple[str, int, int]]:
    """(type, offset, size) of each top-level MP4/MOV box, in file order."""
    data = Path(path).read_bytes()
    atoms, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            break
        atoms.append((kind, pos, size))
        pos += size
    return atoms


# Codec and container variants, all clean: (file name, make_video kwargs, codec, pix_fmt, size)
VARIANTS = [
    ("odd444.mp4", {"size": (223, 127), "pix_fmt": "yuv444p"}, "h264", "yuv444p", (223, 127)),
    ("odd.mkv", {"size": (223, 127), "codec": "ffv1"}, "ffv1", "yuv420p", (223, 127)),
    ("odd.webm", {"size": (223, 127)}, "vp9", "yuv420p", (223, 127)),
    ("ten.mp4", {"pix_fmt": "yuv420p10le"}, "h264", "yuv420p10le", (320, 180)),
    ("ten.mkv", {"codec": "ffv1", "pix_fmt": "yuv420p10le"}, "ffv1", "yuv420p10le", (320, 180)),
    ("gray.mkv", {"codec": "ffv1", "pix_fmt": "gray"}, "ffv1", "gray", (320, 180)),
    # FFmpeg's h264 decoder hands out 4:0:0 (monochrome) H.264 as yuv420p with flat chroma.
    ("gray.mp4", {"pix_fmt": "gray"}, "h264", "yuv420p", (320, 180)),
    ("y444.mp4", {"pix_fmt": "yuv444p"}, "h264", "yuv444p", (320, 180)),
    ("vp9.webm", {}, "vp9", "yuv420p", (320, 180)),
    ("h264.mkv", {}, "h264", "yuv420p", (320, 180)),
    ("h264.ts", {}, "h264", "yuv420p", (320, 180)),
    ("h264.mov", {}, "h264", "yuv420p", (320, 180)),
    ("mpeg4.avi", {}, "mpeg4", "yuv420p", (320, 180)),
    ("mjpeg.avi", {"codec": "mjpeg"}, "mjpeg", "yuvj420p", (320, 180)),
    ("ffv1.avi", {"codec": "ffv1"}, "ffv1", "yuv420p", (320, 180)),
    ("anim.gif", {}, "gif", "bgra", (320, 180)),
]
