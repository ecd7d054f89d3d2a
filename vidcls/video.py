"""Decoding with PyAV: open, index, and pick frames by presentation time in one streaming pass.

Frames are chosen by their presentation time, never by counting decoded frames or trusting the
container's frame count. The frame "shown at t" is the last one whose time is <= t (plus 1 µs so
rounding never picks the previous frame); before the first frame it is the first, after the last
it is the last. Only frames that a pending window asks for are converted, already resized, so
memory stays bounded whatever the length of the video.
"""

from __future__ import annotations

import heapq
import io
import statistics
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from .errors import VideoDecodeError

if TYPE_CHECKING:
    import av
    import numpy as np

EPS = 1e-6
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe")


@dataclass
class VideoInfo:
    """What vidcls knows about a video before decoding it (times in seconds)."""

    file: str
    container: str
    codec: str
    pix_fmt: str | None
    width: int  # as displayed, after rotation
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees a player turns the stored picture clockwise (a phone: 90)
    duration: float | None
    fps: float | None
    vfr: bool | None
    frame_count: int | None  # packets counted in the index pass, when there was one
    audio_streams: int
    seekable: bool
    keyframes: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "container": self.container,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "width": self.width,
            "height": self.height,
            "coded_width": self.coded_width,
            "coded_height": self.coded_height,
            "rotation": self.rotation,
            "duration": None if self.duration is None else round(self.duration, 6),
            "fps": None if self.fps is None else round(self.fps, 6),
            "vfr": self.vfr,
            "frame_count": self.frame_count,
            "audio_streams": self.audio_streams,
        }


class _Pipe(io.RawIOBase):
    """Standard input as PyAV should see it: readable, never seekable."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.head = raw.read(4096)  # looked at before PyAV reads it, then served first
        self._served = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        if self._served < len(self.head):
            data = self.head[self._served : self._served + len(buffer)]
            self._served += len(data)
        else:
            data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def mp4_index_at_end(self) -> bool:
        """True for an MP4 whose media data (mdat) comes before its index (moov)."""
        pos = 0
        while pos + 8 <= len(self.head):
            size = int.from_bytes(self.head[pos : pos + 4], "big")
            kind = self.head[pos + 4 : pos + 8]
            if pos == 0 and kind != b"ftyp":
                return False
            if kind == b"moov":
                return False
            if kind == b"mdat":
                return True
            if size < 8:
                return False
            pos += size
        return False


def _label(source: str | Path) -> str:
    return "-" if str(source) == "-" else str(source)


def open_container(
    source: str | Path, stdin: BinaryIO | None = None
) -> av.container.InputContainer:
    """Open a path, or '-' for standard input, with errors that name the file and the reason."""
    import av

    name = _label(source)
    if name == "-":
        target: Any = _Pipe(stdin if stdin is not None else sys.stdin.buffer)
        if not target.head:
            raise VideoDecodeError("-: standard input is empty")
        if target.mp4_index_at_end():
            raise VideoDecodeError(
                "-: this MP4 keeps its index (moov atom) at the end, which cannot be read from a "
                "pipe; pass the file by path, or send a streamable container "
                "(ffmpeg ... -f matroska -, or remux it with -movflags +faststart)"
            )
    else:
        path = Path(source)
        if not path.exists():
            raise VideoDecodeError(f"{name}: no such file")
        if path.is_dir():
            raise VideoDecodeError(f"{name}: is a directory")
        if path.stat().st_size == 0:
            raise VideoDecodeError(f"{name}: empty file")
        target = str(path)
    try:
        container = av.open(target, "r", metadata_errors="replace")
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{name}: not a video PyAV can read ({_reason(e)})") from e
    if container.format.name in _IMAGE_FORMATS:
        container.close()
        raise VideoDecodeError(f"{name}: a still image, not a video")
    if not container.streams.video:
        audio = len(container.streams.audio)
        container.close()
        raise VideoDecodeError(f"{name}: no video stream" + (" (audio only)" if audio else ""))
    return container


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return str(text).strip().rstrip(".") or type(e).__name__


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The default video stream when one is marked default, else the first."""
    import av

    streams = list(container.streams.video)
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0]


def probe(source: str | Path, container: av.container.InputContainer | None = None) -> VideoInfo:
    """Describe a video; on a seekable file this reads every packet header (no decoding)."""
    own = container is None
    container = container or open_container(source)
    try:
        return _probe(_label(source), container)
    finally:
        if own:
            container.close()


def _probe(name: str, container: av.container.InputContainer) -> VideoInfo:
    import av

    stream = video_stream(container)
    ctx = stream.codec_context
    seekable = name != "-"
    fps = float(stream.average_rate) if stream.average_rate else None
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    vfr = frame_count = None
    keyframes: list[float] = []
    if seekable:
        pts: list[int] = []
        ends: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                ends.append(packet.pts + (packet.duration or 0))
                if packet.is_keyframe:
                    keyframes.append(float(packet.pts * stream.time_base))
        except av.error.FFmpegError:
            pass  # a damaged tail: index what could be read
        if pts:
            tb = float(stream.time_base)
            pts.sort()
            deltas = [b - a for a, b in zip(pts, pts[1:], strict=False) if b > a]
            step = statistics.median(deltas) if deltas else 0
            end = max(max(ends), pts[-1] + step)
            duration = (end - pts[0]) * tb
            frame_count = len(pts)
            if deltas:
                vfr = any(abs(d - step) > max(1, 0.05 * step) for d in deltas)
                fps = fps or 1 / (step * tb)
            keyframes = [k - pts[0] * tb for k in sorted(keyframes)]
    rotation = _first_frame_rotation(container, stream) if seekable else 0
    w, h = ctx.width, ctx.height
    return VideoInfo(
        file=name,
        container=container.format.name,
        codec=ctx.name,
        pix_fmt=ctx.pix_fmt,
        width=h if rotation in (90, 270) else w,
        height=w if rotation in (90, 270) else h,
        coded_width=w,
        coded_height=h,
        rotation=rotation,
        duration=duration,
        fps=fps,
        vfr=vfr,
        frame_count=frame_count,
        audio_streams=len(container.streams.audio),
        seekable=seekable,
        keyframes=keyframes,
    )


def _first_frame_rotation(container: av.container.InputContainer, stream: Any) -> int:
    """The display-matrix rotation PyAV reports on the first decodable frame (0 when none)."""
    import av

    try:
        container.seek(0)
        for frame in container.decode(stream):
            return -int(frame.rotation) % 360
    except av.error.FFmpegError:
        pass
    return 0


@dataclass
class DecodeStats:
    frames: int = 0
    corrupt_packets: int = 0
    end_time: float = 0.0  # presentation time of the last decoded frame, from the first
    rotation: int | None = None  # of the first decoded frame
    size: tuple[int, int] | None = None  # (width, height) as displayed


Convert = Callable[["av.VideoFrame"], "np.ndarray"]


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at `short_side`, the long side floored (PySlowFast)."""
    if min(width, height) == short_side:
        return width, height
    if width <= height:
        return short_side, int(height / width * short_side)
    return int(width / height * short_side), short_side


def frame_converter(short_side: int) -> Convert:
    """Turn a decoded frame into an upright RGB uint8 array with its short side resized.

    swscale resizes while converting to RGB (6–14× cheaper than converting at full size and
    resizing after). Its bilinear filter widens with the downscale factor, so a 1080p frame is
    averaged rather than aliased on its way down to 224.
    """
    import numpy as np

    def convert(frame: av.VideoFrame) -> np.ndarray:
        k = (int(frame.rotation) // 90) % 4
        w, h = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)
        out_w, out_h = resized_size(w, h, short_side)
        if k % 2:
            out_w, out_h = out_h, out_w
        rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="BILINEAR")
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    return convert


class WindowTimes(Protocol):
    index: int
    start: float
    times: tuple[float, ...]


@dataclass(order=True)
class _Target:
    time: float
    window: int
    slot: int


def pick_frames(
    container: av.container.InputContainer,
    windows: Iterable[WindowTimes],
    convert: Convert,
    stats: DecodeStats,
    name: str,
    keep_partial: Callable[[WindowTimes, float], bool] = lambda window, end: True,
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Decode once and yield (window index, frames) as each window's frames are complete.

    `windows` come in order of start time; their times are seconds from the first frame. When
    the stream ends, a window still waiting gets the last frame repeated if
    `keep_partial(window, end_time)` says so, and is dropped otherwise.
    """
    stream = video_stream(container)
    stream.thread_type = "AUTO"
    pending: list[_Target] = []
    slots: dict[int, list[Any]] = {}
    active: dict[int, WindowTimes] = {}
    upcoming = iter(windows)
    next_window = next(upcoming, None)
    origin: float | None = None
    prev: Any = None
    prev_rgb: np.ndarray | None = None

    def start(window: WindowTimes) -> None:
        active[window.index] = window
        slots[window.index] = [None] * len(window.times)
        for slot, t in enumerate(window.times):
            heapq.heappush(pending, _Target(t, window.index, slot))

    def serve(target: _Target, rgb: np.ndarray) -> tuple[int, list[np.ndarray]] | None:
        if target.window not in slots:
            return None
        window = slots[target.window]
        window[target.slot] = rgb
        if all(f is not None for f in window):
            del slots[target.window]
            return target.window, window
        return None

    for frame in _decoded(container, stream, stats, name):
        t = frame.time if frame.time is not None else stats.end_time + EPS
        origin = t if origin is None else origin
        t -= origin
        if stats.frames == 0:
            stats.rotation = -int(frame.rotation) % 360
            turned = stats.rotation in (90, 270)
            stats.size = (frame.height, frame.width) if turned else (frame.width, frame.height)
        stats.frames += 1
        stats.end_time = t
        while next_window is not None and min(next_window.times) + EPS < t:
            start(next_window)
            next_window = next(upcoming, None)
        while pending and pending[0].time + EPS < t:
            target = heapq.heappop(pending)
            if prev_rgb is None:  # convert only frames some window asks for, once
                prev_rgb = convert(prev if prev is not None else frame)
            if (done := serve(target, prev_rgb)) is not None:
                yield done
        prev, prev_rgb = frame, None

    if prev is None:
        raise VideoDecodeError(f"{name}: no frame could be decoded")
    last = convert(prev)
    while next_window is not None and keep_partial(next_window, stats.end_time):
        start(next_window)
        next_window = next(upcoming, None)
    kept = {i for i in slots if keep_partial(active[i], stats.end_time)}
    for target in sorted(pending):
        if target.window in kept and (done := serve(target, last)) is not None:
            yield done


def _decoded(
    container: av.container.InputContainer, stream: Any, stats: DecodeStats, name: str
) -> Iterator[av.VideoFrame]:
    import av

    try:
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                if stats.frames == 0:
                    raise VideoDecodeError(f"{name}: cannot read the video ({_reason(e)})") from e
                stats.corrupt_packets += 1
                break  # the demuxer cannot go on: keep what was decoded
            try:
                yield from packet.decode()
            except av.error.FFmpegError:
                stats.corrupt_packets += 1  # a damaged packet: skip it, count it
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{name}: cannot read the video ({_reason(e)})") from e
