"""One streaming decode pass that hands each window the frames shown at its instants.

Frames are chosen by presentation time, never by counting decoded frames or trusting the
container's frame count. The frame "shown at t" is the last one whose time is <= t, with a
tolerance of half a timestamp tick (at least 1 µs) so that a container that rounds timestamps to
milliseconds never makes us pick the previous frame; before the first frame it is the first, past
the last it is the last. Only frames that a pending window asks for are converted, already
resized, so memory stays bounded whatever the length of the video.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import VideoDecodeError
from .ffmpeg_log import FFmpegLog, ffmpeg_log
from .video import (
    STREAM_APPEARED,
    LimitError,
    Limits,
    Watchdog,
    guard,
    reason,
    time_jumps,
    video_stream,
)

if TYPE_CHECKING:
    import av
    import numpy as np

EPS = 1e-6


class NoFrames(VideoDecodeError):
    """Nothing decoded; with frame threading a damaged start can hide decodable frames."""


@dataclass
class DecodeStats:
    frames: int = 0
    corrupt_packets: int = 0
    end_time: float = 0.0  # presentation time of the last decoded frame, from the first
    last_step: float = 0.0  # time between the last two frames
    finished: bool = False  # decoded to the end of the stream (not stopped when done)
    rotation: int | None = None  # of the first decoded frame, clockwise as a player turns it
    size: tuple[int, int] | None = None  # (width, height) as displayed
    decode_seconds: float = 0.0
    convert_seconds: float = 0.0
    unwanted_packets: int = 0  # sent with skip_frame NONREF: decoded only if referenced
    seeks: int = 0  # jumps over whole groups of pictures no window needs
    # a jump that landed no further than the reader had been: jumping stopped, decoding went on
    # in order (a damaged index sends the demuxer back to the same keyframe)
    seek_failed: bool = False
    concealed_frames: int = 0  # decoded with errors that the decoder concealed
    log: FFmpegLog = field(default_factory=FFmpegLog)  # FFmpeg's errors while decoding
    # where the frames' own times leap (at, by), as decoded; meaningful only where nothing is
    # skipped on purpose, that is without an index (standard input)
    jumps: list[tuple[float, float]] = field(default_factory=list)
    previous_time: float = 0.0  # of the last frame decoded, from the first


Convert = Callable[["av.VideoFrame"], "np.ndarray"]


def frame_threads() -> int:
    """Decoder threads: two more than the cores, where libavcodec's own choice is one more.

    Measured, not derived (BENCHMARKS.md, "Figures behind design choices"). The likely reason is
    that with the frames no window needs skipped, what is left is a chain of reference frames,
    each waiting on the one before, and one more frame in flight keeps a waiting core busy.
    libavcodec warns above 16 frame threads.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(16, cores + 2)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at `short_side`, the long side floored (PySlowFast)."""
    if min(width, height) == short_side:
        return width, height
    if width <= height:
        return short_side, int(height / width * short_side)
    return int(width / height * short_side), short_side


def frame_converter(short_side: int, full: int | None = None) -> Convert:
    """Turn a decoded frame into an upright RGB uint8 array with its short side resized
    (or, with `full`, the whole upright frame squeezed to full × full).

    swscale resizes while converting to RGB, far cheaper than converting at full size and
    resizing after (BENCHMARKS.md). Its bilinear filter widens with the downscale factor, so a
    1080p frame is averaged rather than aliased on its way down to 224. The output size is fixed
    by the first frame, so a stream that changes resolution still stacks into clips.
    """
    import numpy as np

    size: list[tuple[int, int]] = []

    def convert(frame: av.VideoFrame) -> np.ndarray:
        k = (int(frame.rotation) // 90) % 4
        if not size:
            w, h = (frame.height, frame.width) if k % 2 else (frame.width, frame.height)
            size.append((full, full) if full else resized_size(w, h, short_side))
        out_w, out_h = size[0]
        if k % 2:
            out_w, out_h = out_h, out_w
        rgb = frame.to_ndarray(format="rgb24", width=out_w, height=out_h, interpolation="BILINEAR")
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    return convert


class DecodePlan:
    """Which frames the windows need, in stream ticks, from a file's packet index.

    With it the decoder skips non-reference frames that no window takes (they are never used to
    predict other frames, so the wanted frames come out bit-identical), and jumps over whole
    groups of pictures that hold no wanted frame.
    """

    def __init__(self, wanted: list[int], keyframes: list[int]) -> None:
        self.wanted = sorted(set(wanted))
        self._wanted_set = set(self.wanted)
        self.keyframes = keyframes

    @classmethod
    def build(
        cls, times: Iterable[float], packet_pts: list[int], keyframe_pts: list[int],
        origin: float, time_base: float, tolerance: float,
    ) -> DecodePlan:  # fmt: skip
        """The frame shown at each time (seconds from `origin`), as the picker will choose it."""
        import bisect

        wanted = []
        for t in times:
            i = bisect.bisect_right(packet_pts, (origin + t + tolerance) / time_base) - 1
            wanted.append(packet_pts[max(i, 0)])
        return cls(wanted, keyframe_pts)

    def needs(self, pts: int | None) -> bool:
        return pts is None or pts in self._wanted_set

    def jump(self, keyframe: int) -> int | None:
        """At a keyframe packet: the keyframe to seek to when this group of pictures holds no
        wanted frame, -1 when no wanted frame is left at all, else None (decode on)."""
        import bisect

        i = bisect.bisect_left(self.wanted, keyframe)
        if i == len(self.wanted):
            return -1
        k = bisect.bisect_right(self.keyframes, keyframe)
        next_keyframe = self.keyframes[k] if k < len(self.keyframes) else None
        if next_keyframe is None or self.wanted[i] < next_keyframe:
            return None  # this group has a wanted frame
        target = self.keyframes[bisect.bisect_right(self.keyframes, self.wanted[i]) - 1]
        return target if target > keyframe else None


class WindowTimes(Protocol):
    index: int
    start: float
    times: tuple[float, ...]


@dataclass(order=True)
class _Target:
    time: float
    window: int
    slot: int


def _keep_all(window: WindowTimes, end: float) -> bool:
    return True


@dataclass(frozen=True)
class Picking:
    """How one decode pass picks frames, besides the container and the windows.

    Times are seconds from the first frame of the file, whose stream time is `origin` (None:
    the first frame decoded). With `seek` > 0 the decoder starts at the keyframe before that
    time instead of the beginning. With `stop_when_done` decoding stops once every window is
    served. A `plan` lets the decoder skip frames and groups of pictures that no window needs.
    When the stream ends, a window still waiting gets the last frame repeated if
    `keep_partial(window, end_time)` says so, and is dropped otherwise.
    """

    name: str  # the file, for errors
    convert: Convert
    keep_partial: Callable[[WindowTimes, float], bool] = _keep_all
    origin: float | None = None
    seek: float = 0.0
    stop_when_done: bool = False
    threads: str = "AUTO"  # frame and slice threads; "SLICE" decodes in order
    thread_count: int | None = None  # with "AUTO": decoder threads; None: frame_threads()
    plan: DecodePlan | None = None
    limits: Limits = Limits()
    pipe: bool = False  # standard input: waiting for its bytes is not decoding time


def pick_frames(
    container: av.container.InputContainer,
    windows: Iterable[WindowTimes],
    picking: Picking,
    stats: DecodeStats,
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Decode once and yield (window index, frames) as each window's frames are complete.

    `windows` come in order of start time.
    """
    _crash_for_tests(picking.name)
    with ffmpeg_log(stats.log):
        stream = _start(container, picking)
        stats.log.after_seek = picking.seek > 0 and picking.origin is not None
        tolerance = max(EPS, float(stream.time_base or 0) / 2)
        picker = _Picker(windows, picking.convert, stats, tolerance)
        origin = picking.origin
        limits = picking.limits
        watchdog = Watchdog(picking.name, limits.decode_timeout, "decoding")
        for frame in _decoded(container, stream, stats, picking, watchdog):
            origin, t = _clock(frame, origin, stats)
            watchdog.progress(t)
            if stats.frames == 1:
                width, height = stats.size or (0, 0)
                limits.check_size(picking.name, width, height, "its first decoded frame's size")
            if picking.origin is None and t > limits.max_duration:
                # without an index the windows follow the frames: a leap to an absurd time
                # would begin a window for every hop on the way
                raise LimitError(
                    f"{picking.name}: a frame at {t:.6g} s is past --max-duration "
                    f"{limits.max_duration:g} s"
                )
            yield from picker.frame(frame, t)
            if picking.stop_when_done and picker.served_all:
                return  # every window served: the rest of the file is not needed
    stats.finished = True
    if picker.prev is None:
        raise NoFrames(f"{picking.name}: no frame could be decoded")
    yield from picker.finish(lambda window: picking.keep_partial(window, stats.end_time))


def _crash_for_tests(name: str) -> None:
    """A test-only hook: VIDCLS_TEST_DECODER_CRASH=SIGSEGV:MARK makes the process decoding a
    file whose name contains MARK die of that signal, as a crash in FFmpeg's native code
    would, HANG:MARK makes it stop as a native call that never returns would, and RAISE:MARK
    makes it raise an error vidcls does not expect (tests/test_adversarial.py proves that a run
    survives each)."""
    hook = os.environ.get("VIDCLS_TEST_DECODER_CRASH")
    if not hook or ":" not in hook:
        return
    signame, mark = hook.split(":", 1)
    if mark and mark in name:
        import signal
        import time

        if signame == "HANG":
            time.sleep(10**6)
        if signame == "RAISE":
            raise RuntimeError(f"{name}: the test hook raised")
        os.kill(os.getpid(), getattr(signal, signame, signal.SIGSEGV))


def _start(container: av.container.InputContainer, picking: Picking) -> Any:
    """The video stream, its threads set, positioned where decoding starts."""
    stream = video_stream(container)
    guard(stream, picking.limits)
    stream.thread_type = picking.threads
    if picking.threads == "AUTO":
        stream.codec_context.thread_count = picking.thread_count or frame_threads()
    if picking.seek > 0 and picking.origin is not None:
        import av

        target = int((picking.origin + picking.seek) / float(stream.time_base))
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as e:
            raise VideoDecodeError(
                f"{picking.name}: cannot seek to {picking.seek:g} s ({reason(e)})"
            ) from e
    return stream


def _clock(frame: Any, origin: float | None, stats: DecodeStats) -> tuple[float, float]:
    """(origin, the frame's time from it), counting the frame into `stats`."""
    t = frame.time
    if t is None or t != t:  # no timestamp: assume the frame follows the last one
        t = (origin or 0.0) + stats.end_time + stats.last_step
    if origin is None:
        origin = t
    t -= origin
    stats.concealed_frames += bool(frame.is_corrupt)
    if stats.frames == 0:
        stats.rotation = -int(frame.rotation) % 360
        turned = stats.rotation in (90, 270)
        stats.size = (frame.height, frame.width) if turned else (frame.width, frame.height)
    else:
        if len(stats.jumps) < 20:
            stats.jumps += time_jumps((stats.previous_time, t), stats.last_step)
        if t > stats.end_time:
            stats.last_step = t - stats.end_time
    stats.previous_time = t
    stats.frames += 1
    stats.end_time = max(stats.end_time, t)
    return origin, t


class _Picker:
    """Which frame each window slot takes: the last one shown at or before its time."""

    def __init__(
        self, windows: Iterable[WindowTimes], convert: Convert, stats: DecodeStats, tolerance: float
    ) -> None:
        self.convert = convert
        self.stats = stats
        self.tolerance = tolerance
        self.pending: list[_Target] = []  # the slots of begun windows, earliest time first
        self.slots: dict[int, list[Any]] = {}
        self.active: dict[int, WindowTimes] = {}
        self.upcoming = iter(windows)
        self.next_window = next(self.upcoming, None)
        self.prev: Any = None  # the frame before the current one
        self.prev_rgb: np.ndarray | None = None  # converted once, when some slot takes it

    @property
    def served_all(self) -> bool:
        return self.next_window is None and not self.pending

    def frame(self, frame: Any, t: float) -> Iterator[tuple[int, list[np.ndarray]]]:
        """A frame shown from `t` on: the slots before `t` take the frame before it."""
        while self.next_window is not None and min(self.next_window.times) + self.tolerance < t:
            self._begin(self.next_window)
            self.next_window = next(self.upcoming, None)
        while self.pending and self.pending[0].time + self.tolerance < t:
            target = heapq.heappop(self.pending)
            if self.prev_rgb is None:  # convert only frames some window asks for, once
                self.prev_rgb = self._converted(self.prev if self.prev is not None else frame)
            if (done := self._serve(target, self.prev_rgb)) is not None:
                yield done
        self.prev, self.prev_rgb = frame, None

    def finish(self, keep: Callable[[WindowTimes], bool]) -> Iterator[tuple[int, list[np.ndarray]]]:
        """At the end of the stream: the windows `keep` says to keep get the last frame."""
        last = self._converted(self.prev)
        while self.next_window is not None and keep(self.next_window):
            self._begin(self.next_window)
            self.next_window = next(self.upcoming, None)
        kept = {i for i in self.slots if keep(self.active[i])}
        for target in sorted(self.pending):
            if target.window in kept and (done := self._serve(target, last)) is not None:
                yield done

    def _begin(self, window: WindowTimes) -> None:
        self.active[window.index] = window
        self.slots[window.index] = [None] * len(window.times)
        for slot, t in enumerate(window.times):
            heapq.heappush(self.pending, _Target(t, window.index, slot))

    def _serve(self, target: _Target, rgb: np.ndarray) -> tuple[int, list[np.ndarray]] | None:
        if target.window not in self.slots:
            return None
        window = self.slots[target.window]
        window[target.slot] = rgb
        if all(f is not None for f in window):
            del self.slots[target.window]
            return target.window, window
        return None

    def _converted(self, frame: Any) -> np.ndarray:
        started = time.perf_counter()
        rgb = self.convert(frame)
        self.stats.convert_seconds += time.perf_counter() - started
        return rgb


def _decoded(
    container: av.container.InputContainer,
    stream: Any,
    stats: DecodeStats,
    picking: Picking,
    watchdog: Watchdog,
) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; damaged packets are skipped and counted.

    Every jump must land further than any packet read before it; one that does not (a damaged
    index sends the demuxer back) ends jumping, and decoding goes on in order from where it
    landed. The watchdog is told the time spent here, not the time a consumer holds a frame."""
    import av

    name, plan = picking.name, picking.plan
    ctx = stream.codec_context
    packets = container.demux(stream)
    furthest: int | None = None  # the latest packet time read, in stream ticks
    landing = False  # the next packet with a time is where the last jump landed
    while True:
        started = time.perf_counter()
        try:
            packet = next(packets)
        except (StopIteration, STREAM_APPEARED):
            break  # the end (a stream that appeared while reading ends PyAV's demux so)
        except av.error.FFmpegError as e:
            if stats.frames == 0:
                raise VideoDecodeError(f"{name}: cannot read the video ({reason(e)})") from e
            stats.corrupt_packets += 1
            break  # the demuxer cannot go on: keep what was decoded
        if picking.pipe:  # waiting for standard input's bytes is not decoding
            started = time.perf_counter()
        if packet.pts is not None:
            if landing:
                landing = False
                if furthest is not None and packet.pts <= furthest:
                    stats.seek_failed = True
                    plan, ctx.skip_frame = None, "DEFAULT"
            furthest = packet.pts if furthest is None else max(furthest, packet.pts)
        if plan is not None and packet.size and packet.is_keyframe and packet.pts is not None:
            target = plan.jump(packet.pts)
            if target is not None:
                # frames still inside the decoder's threads come out before the jump
                drained = _drain(stream, stats)
                ctx.flush_buffers()
                jumped = target >= 0 and _seek(container, stream, target, stats)
                _spent(started, stats, watchdog)
                yield from drained
                if target < 0:
                    return  # no window needs anything further
                if jumped:
                    packets = container.demux(stream)
                    landing = True
                    continue
                # the index cannot be sought in: decode on in order, from here
                plan, ctx.skip_frame = None, "DEFAULT"
        if plan is not None and packet.size:
            wanted = plan.needs(packet.pts)
            ctx.skip_frame = "DEFAULT" if wanted else "NONREF"
            stats.unwanted_packets += not wanted
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            stats.corrupt_packets += 1  # a damaged packet: skip it, count it
            continue
        finally:
            _spent(started, stats, watchdog)
        yield from frames


def _seek(container: Any, stream: Any, target: int, stats: DecodeStats) -> bool:
    """Seek to the keyframe at or before `target`; False where the demuxer cannot."""
    import av

    try:
        container.seek(target, stream=stream, backward=True)
    except av.error.FFmpegError:
        stats.seek_failed = True
        return False
    stats.seeks += 1
    stats.log.after_seek = True
    return True


def _spent(started: float, stats: DecodeStats, watchdog: Watchdog) -> None:
    seconds = time.perf_counter() - started
    stats.decode_seconds += seconds
    watchdog.spent(seconds)


def _drain(stream: Any, stats: DecodeStats) -> list[av.VideoFrame]:
    import av

    try:
        frames = stream.codec_context.decode(None)
    except av.error.FFmpegError:
        stats.corrupt_packets += 1
        return []
    for frame in frames:
        frame.time_base = stream.time_base  # frames drained from the codec come without one
    return list(frames)
