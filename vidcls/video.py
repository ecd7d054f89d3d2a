"""Opening and describing videos with PyAV: containers, standard input, the packet index.

On a file, `probe` reads every packet header once without decoding (cheap: BENCHMARKS.md), which
gives the true duration, frame count and keyframes whatever the container's header claims.
"""

from __future__ import annotations

import io
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from .errors import VideoDecodeError
from .ffmpeg_log import FFmpegLog, ffmpeg_log
from .pipes import Fifo, is_fifo

if TYPE_CHECKING:
    import av

_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe")
# A gap between frames this many times the usual step (and at least JUMP_SECONDS) is a jump.
JUMP_STEPS = 10
JUMP_SECONDS = 1.0
_KEPT_JUMPS = 20
# A frame this many times wider than tall (or taller than wide) is refused: resizing its short
# side to the model's would make the long side, and memory, grow without bound.
MAX_ASPECT = 32
MAX_SIDE = 16384  # pixels a side, whatever --max-pixels allows
MAX_RATE = 1e6  # frames a second a header may claim; more is a broken header, not a camera
# A file that spans more than ten minutes with less than a frame every ten seconds on average is
# a timestamp leap, not a video: its windows would repeat a frame for hours (each window costs
# the model).
SPARSE_AFTER = 600.0
MAX_FRAME_INTERVAL = 10.0
# a time base outside this (seconds a tick) is a broken header: no container ticks slower than
# an hour or faster than a picosecond
TIME_BASES = (1e-12, 3600.0)


@dataclass(frozen=True)
class Limits:
    """What a file may cost: frame size, length, and decoding time without progress."""

    max_pixels: int = 1 << 28  # a frame's width × height
    max_duration: float = 86400.0  # seconds of video from the first frame to the last
    decode_timeout: float = 60.0  # seconds reading or decoding may go without progress

    @property
    def codec_options(self) -> dict[str, str]:
        """libavcodec's own guard: a decoder refuses larger pictures before allocating them."""
        return {"max_pixels": str(self.max_pixels)}

    def check_size(self, name: str, width: int, height: int, what: str) -> None:
        """A one-line error for a frame size beyond the limits (0: not known yet, passes)."""
        if width <= 0 or height <= 0:
            return
        size = f"{width}×{height}"
        if max(width, height) > MAX_SIDE:
            raise LimitError(f"{name}: {what} {size} is more than {MAX_SIDE} pixels a side")
        if width * height > self.max_pixels:
            raise LimitError(
                f"{name}: {what} {size} is more than --max-pixels {self.max_pixels} pixels"
            )
        if max(width, height) > MAX_ASPECT * min(width, height):
            raise LimitError(f"{name}: {what} {size} has one side more than {MAX_ASPECT} times the other")  # fmt: skip # noqa: E501

    def check_duration(self, name: str, duration: float | None, what: str) -> None:
        if duration is not None and duration > self.max_duration:
            raise LimitError(
                f"{name}: {what} {duration:.6g} s is more than --max-duration "
                f"{self.max_duration:g} s"
            )


class LimitError(VideoDecodeError):
    """A file whose header or stream asks for more than the limits allow."""


class Stalled(VideoDecodeError):
    """Reading or decoding a file went --decode-timeout seconds without progress."""


class Watchdog:
    """Seconds of work on a file since it last made progress; past `limit`, `Stalled`.

    Only the time spent working counts (the caller says how much), not the time a consumer
    keeps the reader waiting."""

    # called on each progress where a decoding child tells its parent it is still working
    heartbeat: ClassVar[Callable[[], None] | None] = None

    def __init__(self, name: str, limit: float | None, doing: str) -> None:
        self.name = name
        self.limit = limit
        self.doing = doing
        self.idle = 0.0
        self.reached: dict[str, float] = {}

    def spent(self, seconds: float) -> None:
        self.idle += seconds
        if self.limit is not None and self.idle > self.limit:
            raise Stalled(
                f"{self.name}: {self.doing} made no progress in {self.limit:g} s "
                "(--decode-timeout): the file loops or is damaged"
            )

    def progress(self, position: float, kind: str = "time") -> None:
        """A new position of a kind (a time, an offset): progress only when beyond every earlier
        one of that kind."""
        if position > self.reached.get(kind, -math.inf):
            self.reached[kind] = position
            self.idle = 0.0
            if Watchdog.heartbeat is not None:
                Watchdog.heartbeat()


def time_jumps(times: Sequence[float], step: float) -> list[tuple[float, float]]:
    """(where, by how much) the timestamps of successive packets leap, back or forward, by more
    than JUMP_STEPS frame steps and JUMP_SECONDS; times in seconds, in the order read.

    Small steps back are normal where packets come in decode order with only presentation
    times (B-frames in Matroska), so only a leap counts, either way."""
    limit = max(JUMP_SECONDS, JUMP_STEPS * step)
    return [(a, b - a) for a, b in zip(times, times[1:], strict=False) if abs(b - a) > limit]


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
    start_time: float | None = None  # stream time of the first frame (indexed files)
    time_base: float = 1e-6  # of the stream's timestamps
    header_duration: float | None = None  # what the container claims, to detect truncation
    damaged: bool = False  # the index pass hit an error, or the file ends before its header says
    unreadable_after: float | None = None  # the index pass could read no further than this
    jumps: list[tuple[float, float]] = field(default_factory=list, repr=False)  # (at, by) s
    log: FFmpegLog = field(default_factory=FFmpegLog, repr=False)  # while probing
    keyframes: list[float] = field(default_factory=list, repr=False)  # from the first frame
    packet_pts: list[int] = field(default_factory=list, repr=False)  # sorted, stream ticks
    keyframe_pts: list[int] = field(default_factory=list, repr=False)  # sorted, stream ticks

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


@dataclass(frozen=True)
class Opening:
    """How FFmpeg opens a source it reads itself (a URL, a camera, a pipe)."""

    target: str  # what FFmpeg opens (a camera's device path for `v4l2:/dev/video0`)
    input_format: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # seconds, to open and for each read


def open_container(
    source: str | Path,
    stdin: BinaryIO | None = None,
    limits: Limits | None = None,
    opening: Opening | None = None,
) -> av.container.InputContainer:
    """Open a path, or '-' for standard input, with errors that name the file and the reason.
    With an `opening`, FFmpeg opens its target itself, with its format, options and timeout.

    The decoders that opening runs to find the streams' parameters get the limits' guard, so a
    header that claims a giant picture is refused before its buffers are allocated."""
    import av

    limits = limits or Limits()
    name = _label(source)
    kwargs: dict[str, Any] = {"options": dict(limits.codec_options)}
    target: Any
    if opening is not None and is_fifo(opening.target):
        # read here, not by FFmpeg's file protocol, whose waits on a pipe have no timeout
        target = Fifo(opening.target, opening.timeout)
        options = {**limits.codec_options, **dict(opening.options)}
        kwargs = {"format": opening.input_format, "options": options}
    elif opening is not None:
        target = opening.target
        options = {**limits.codec_options, **dict(opening.options)}
        kwargs = {"format": opening.input_format, "options": options}
        if opening.timeout is not None:
            kwargs["timeout"] = opening.timeout
    elif name == "-":
        target = _Pipe(stdin if stdin is not None else sys.stdin.buffer)
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
        with ffmpeg_log(FFmpegLog()) as said:
            container = av.open(target, "r", metadata_errors="replace", **kwargs)
    except av.error.FFmpegError as e:
        # FFmpeg's own last word ("moov atom not found") says more than the error's class
        why = reason(e) + (
            ": " + said.first[-1].split("] ", 1)[-1].rstrip(".") if said.first else ""
        )
        raise VideoDecodeError(f"{name}: not a video PyAV can read ({why})") from e
    except TimeoutError as e:  # a named pipe's writer stalled before FFmpeg knew the format
        raise VideoDecodeError(f"{name}: {reason(e)} (--timeout)") from e
    if container.format.name in _IMAGE_FORMATS:
        container.close()
        raise VideoDecodeError(f"{name}: a still image, not a video")
    if not any(s.codec_context is not None for s in container.streams.video):
        audio = len(container.streams.audio)
        container.close()
        why = " (audio only)" if audio else " (the header may be cut short)"
        raise VideoDecodeError(f"{name}: no video stream" + why)
    return container


def close(container: av.container.InputContainer) -> None:
    """Close a container after decoding, its decoders' threads stopped first.

    A frame-threaded decoder freed while a worker thread is logging can deadlock: the worker
    waits for the GIL to hand FFmpeg's message to Python, while freeing the decoder holds the
    GIL and waits for the worker. Flushing releases the GIL while the workers finish, so none is
    busy when the decoder is freed."""
    for stream in container.streams.video:
        if stream.codec_context is not None:
            stream.codec_context.flush_buffers()  # a no-op on a decoder never opened
    container.close()
    if isinstance(getattr(container, "file", None), Fifo):
        container.file.close()  # PyAV leaves a file object it was given open


def guard(stream: Any, limits: Limits) -> None:
    """Give a stream's decoder the limits' guard before it opens (PyAV opens it lazily)."""
    ctx = stream.codec_context
    if not ctx.is_open:
        ctx.options = {**(ctx.options or {}), **limits.codec_options}


def reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return str(text).strip().rstrip(".") or type(e).__name__


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The default video stream when one is marked default, else the first."""
    import av

    streams = [s for s in container.streams.video if s.codec_context is not None]
    for stream in streams:
        if stream.disposition & av.stream.Disposition.default:
            return stream
    return streams[0]


def probe(
    source: str | Path,
    container: av.container.InputContainer | None = None,
    limits: Limits | None = None,
    opening: Opening | None = None,
    live: bool = False,
) -> VideoInfo:
    """Describe a video; on a seekable file this reads every packet header (no decoding). A
    `live` source, like standard input, is read once: nothing is read ahead.

    A header or index beyond `limits` (frame size, length, time base, rate) is a `LimitError`
    before anything is decoded."""
    limits = limits or Limits()
    log = FFmpegLog()
    with ffmpeg_log(log):
        own = container is None
        container = container or open_container(source, limits=limits, opening=opening)
        try:
            info = _probe(_label(source), container, limits, live)
        finally:
            if own:
                close(container)
    info.log = log
    return info


def _probe(
    name: str, container: av.container.InputContainer, limits: Limits, live: bool = False
) -> VideoInfo:
    stream = video_stream(container)
    guard(stream, limits)
    ctx = stream.codec_context
    seekable = name != "-" and not live
    limits.check_size(name, ctx.width, ctx.height, "its header's frame size")
    tb = _time_base(name, stream.time_base)
    header_duration = float(stream.duration * stream.time_base) if stream.duration else None
    duration = header_duration
    if duration is None and container.duration is not None:
        duration = container.duration / 1_000_000
    rate = _rate(name, stream.guessed_rate or stream.average_rate)
    fps = rate if rate and rate < 1000 else None
    info = VideoInfo(
        file=name,
        container=container.format.name,
        codec=ctx.name,
        pix_fmt=ctx.pix_fmt,
        width=ctx.width,
        height=ctx.height,
        coded_width=ctx.width,
        coded_height=ctx.height,
        rotation=0,
        duration=duration,
        fps=fps,
        vfr=None,
        frame_count=None,
        audio_streams=len(container.streams.audio),
        seekable=seekable,
        time_base=tb,
        header_duration=header_duration,
    )
    if seekable:
        _index(container, stream, info, limits)
        limits.check_duration(name, info.duration, "its packets span")
        _check_sparse(name, info)
        info.rotation = _first_frame_rotation(container, stream)
        if info.rotation in (90, 270):
            info.width, info.height = info.height, info.width
    return info


def _check_sparse(name: str, info: VideoInfo) -> None:
    """Refuse a file whose timestamps leap so far that its frames are an hour's sparse dust."""
    span, frames = info.duration, info.frame_count
    if span and frames and span > SPARSE_AFTER and span / frames > MAX_FRAME_INTERVAL:
        raise LimitError(
            f"{name}: its timestamps span {span:.6g} s with only {frames} frame(s), less than "
            f"one every {MAX_FRAME_INTERVAL:g} s: they leap (a damaged file?)"
        )


def _time_base(name: str, value: Any) -> float:
    """A stream's time base in seconds; zero, negative or absurd is a broken header."""
    tb = float(value) if value is not None else 0.0
    if not TIME_BASES[0] <= tb <= TIME_BASES[1]:
        raise LimitError(f"{name}: the time base {value or 0} in its header is {'zero' if tb == 0 else 'absurd'}")  # fmt: skip # noqa: E501
    return tb


def _rate(name: str, value: Any) -> float | None:
    """A header's frame rate; zero or missing says nothing, negative or absurd is refused."""
    if not value:
        return None
    rate = float(value)
    if not 0 < rate <= MAX_RATE:
        raise LimitError(f"{name}: the frame rate {value} in its header is absurd")
    return rate


def _index(
    container: av.container.InputContainer, stream: Any, info: VideoInfo, limits: Limits
) -> None:
    """Read every packet header (no decoding): true duration, frame count, rate, keyframes."""
    import av

    pts: list[int] = []
    decode_order: list[int] = []  # dts, else pts, as the packets come
    end = None
    keyframes: list[int] = []
    # a demuxer that loops over damaged data would read forever: progress is a packet from
    # further into the file
    watchdog = Watchdog(info.file, limits.decode_timeout, "reading its packets")
    clock = time.perf_counter()
    try:
        for packet in container.demux(stream):
            now = time.perf_counter()
            watchdog.spent(now - clock)
            clock = now
            if packet.pos is not None and packet.pos >= 0:
                watchdog.progress(packet.pos, "offset")
            if packet.pts is None or packet.size == 0:
                continue
            watchdog.progress(packet.pts)
            pts.append(packet.pts)
            decode_order.append(packet.dts if packet.dts is not None else packet.pts)
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
    except STREAM_APPEARED:
        pass  # every packet was read: see STREAM_APPEARED
    except av.error.FFmpegError:
        info.damaged = True  # a damaged tail: index what could be read
        if pts:
            info.unreadable_after = (max(pts) - min(pts)) * info.time_base
    if not pts:
        return
    pts.sort()
    deltas = [b - a for a, b in zip(pts, pts[1:], strict=False) if b > a]
    step = statistics.median(deltas) if deltas else 0
    end = max(end or 0, pts[-1] + step)
    tb = info.time_base
    info.start_time = pts[0] * tb
    info.duration = (end - pts[0]) * tb
    info.frame_count = len(pts)
    if info.duration > 0 and len(pts) > 1:
        info.fps = len(pts) / info.duration
    if deltas:
        # a couple of odd gaps (a cut, a dropped frame) do not make a file variable-rate
        odd = sum(abs(d - step) > max(1, 0.05 * step) for d in deltas)
        info.vfr = odd > max(2, 0.01 * len(deltas))
    origin = pts[0]
    info.jumps = time_jumps([(t - origin) * tb for t in decode_order], step * tb)[:_KEPT_JUMPS]
    keyframes.sort()
    info.keyframes = [(k - pts[0]) * tb for k in keyframes]
    info.packet_pts = pts
    info.keyframe_pts = keyframes
    if info.header_duration and info.duration < truncated_below(info.header_duration):
        info.damaged = True


# PyAV 18's demux() ends with a flush loop over the container's streams as they are then; a
# stream that appeared while reading (MPEG-TS can announce one mid-file) is not in its list, and
# the loop raises IndexError after the last packet. Caught where a demux is iterated, as its end.
STREAM_APPEARED = IndexError


def truncated_below(claimed: float) -> float:
    """A video shorter than this, for a header that claims `claimed` seconds, was cut short."""
    return claimed - max(0.5, 0.05 * claimed)


def _first_frame_rotation(container: av.container.InputContainer, stream: Any) -> int:
    """The display-matrix rotation PyAV reports on the first decodable frame (0 when none)."""
    import av

    try:
        container.seek(0)
        for frame in container.decode(stream):
            return -int(frame.rotation) % 360
    except (av.error.FFmpegError, STREAM_APPEARED):
        pass
    return 0


def _decodes(container: av.container.InputContainer, stream: Any, until: float | None) -> int:
    """Frames decoded from the current position (until a stream time, or the end)."""
    import av

    count = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        for frame in frames:
            count += 1
            if until is not None and frame.time is not None and frame.time >= until:
                return count
    return count


def check_ends(
    source: str | Path, info: VideoInfo, limits: Limits | None = None
) -> tuple[bool, bool]:
    """Whether the first and the last second of a file decode (`vidcls probe`); what FFmpeg
    logs meanwhile joins `info.log`."""
    with ffmpeg_log(info.log):
        return _check_ends(source, info, limits or Limits())


def _check_ends(source: str | Path, info: VideoInfo, limits: Limits) -> tuple[bool, bool]:
    import av

    first = last = False
    try:
        container = open_container(source, limits=limits)
    except VideoDecodeError:
        return False, False
    try:
        stream = video_stream(container)
        guard(stream, limits)
        start = info.start_time or 0.0
        first = _decodes(container, stream, start + 1.0) > 0
        if info.duration is not None:
            at = start + max(0.0, info.duration - 1.0)
            info.log.after_seek = True
            container.seek(int(at / info.time_base), stream=stream, backward=True)
            last = _decodes(container, stream, None) > 0
    except (av.error.FFmpegError, STREAM_APPEARED):
        pass
    finally:
        close(container)
    return first, last
