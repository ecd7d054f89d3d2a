"""The window stream of one video: probe, plan the windows, decode, crop.

`open_windows` probes a file (or standard input) and plans its windows; iterating the stream
decodes once and yields each window (its end clamped as records report it) with its uint8
views (crops, frames, H, W, 3). When it is done, `facts()` tells what the file turned out to
be. Nothing here knows a model: the spec gives only the protocol (times, sizes, crops).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import clips, decode, sources, streams, video
from .errors import VidclsError
from .facts import FileFacts, facts_of, stream_duration
from .registry import ModelSpec

if TYPE_CHECKING:
    import numpy as np

    from .config import FileOptions


@dataclass
class WindowStream:
    """The windows of one video as uint8 views (crops, frames, H, W, 3), decoded when iterated."""

    source: str | Path
    spec: ModelSpec
    info: video.VideoInfo
    plan: clips.Plan
    crops: int
    container: Any = None  # standard input, opened once to probe it and read by the decoder
    stats: decode.DecodeStats = field(default_factory=decode.DecodeStats)
    opening: video.Opening | None = None  # a source FFmpeg opens itself (a URL, a camera)
    live: streams.LiveContainer | None = None  # a source read once, as it comes
    decode_threads: int | None = None  # frame threads; None: decode.frame_threads()

    @property
    def total(self) -> int | None:
        return self.plan.total

    def facts(self) -> FileFacts:
        """What the file turned out to be; complete once the stream is exhausted."""
        facts = facts_of(self.info, self.stats, self.plan, self.crops)
        if self.live is not None and self.live.warnings:
            warnings = facts.warnings + tuple(self.live.warnings)
            facts = dataclasses.replace(facts, warnings=warnings)
        return facts

    def __iter__(self) -> Iterator[tuple[clips.Window, np.ndarray]]:
        # Frame threading is faster but loses the frames in flight at a damaged spot, so a file
        # known to be cut or broken is decoded in order (slice threads only).
        threads = "SLICE" if self.info.damaged else "AUTO"
        try:
            yield from self._windows(threads)
        except decode.NoFrames:
            if not (self.info.seekable and self.stats.corrupt_packets):
                raise
            # Frame threading loses the frames in flight at a damaged spot; a damaged start can
            # hide every decodable frame. Nothing was yielded yet, so decode again, in order.
            self.stats = decode.DecodeStats()
            yield from self._windows("SLICE")

    def _windows(self, threads: str) -> Iterator[tuple[clips.Window, np.ndarray]]:
        from .transforms import crop_views

        container = self.container or video.open_container(self.source, opening=self.opening)
        self.container = None
        pending: dict[int, clips.Window] = {}

        def remember(windows: Any) -> Iterator[clips.Window]:
            for w in windows:
                pending[w.index] = w
                yield w

        try:
            picking = decode.Picking(
                self.info.file,
                self._converter(),
                self.plan.keep_partial,
                origin=self.info.start_time,
                seek=self.plan.start if self.info.seekable else 0.0,
                stop_when_done=isinstance(self.plan.windows, list),
                threads=threads,
                thread_count=self.decode_threads,
                plan=None if self.info.damaged else self._decode_plan(),
            )
            picked = decode.pick_frames(container, remember(self.plan.windows), picking, self.stats)
            for index, frames in picked:
                started = time.perf_counter()
                views = crop_views(frames, self.spec.crop, self.crops)
                self.stats.convert_seconds += time.perf_counter() - started
                yield self._clamped(pending.pop(index)), views
        finally:
            video.close(container)

    def _converter(self) -> decode.Convert:
        full = self.spec.crop if self.spec.resize == "full" else None
        return decode.frame_converter(self.spec.short_side, full)

    def _decode_plan(self) -> decode.DecodePlan | None:
        """Which frames the windows need, where the file has a packet index to plan with."""
        info = self.info
        if not (info.seekable and info.packet_pts and isinstance(self.plan.windows, list)):
            return None
        tolerance = max(decode.EPS, info.time_base / 2)
        times = (t for w in self.plan.windows for t in w.times)
        return decode.DecodePlan.build(
            times, info.packet_pts, info.keyframe_pts, info.start_time or 0.0,
            info.time_base, tolerance,
        )  # fmt: skip

    def _clamped(self, window: clips.Window) -> clips.Window:
        # a window padded at the end of a stream of unknown length ends where the stream does
        end = stream_duration(self.info, self.stats) if self.stats.finished else None
        return self.plan.clamp(window, end)


def open_windows(
    source: str | Path,
    spec: ModelSpec,
    options: FileOptions,
    stdin: BinaryIO | None = None,
) -> WindowStream:
    """Probe a video and plan its windows; decoding starts when the stream is iterated."""
    container: Any = None
    name = str(source)
    opening = _opening(name, options)
    live = None
    if name == "-":
        container = video.open_container("-", stdin)
        info = video.probe("-", container)
    elif opening is not None:
        first = video.open_container(name, opening=opening)
        # a URL with no known length (a live HTTP stream, a camera's) is read as it comes
        if sources.is_live(name) or first.duration is None:
            container = live = _open_live(name, opening, options, first)
            info = video.probe(name, first, live=True)
        else:
            try:
                info = video.probe(name, first)
            finally:
                video.close(first)
    else:
        info = video.probe(source, opening=opening)
    duration = info.duration if info.seekable else None
    try:
        if options.mode == "predict":
            plan = clips.predict_plan(spec, duration, options.clips, options.start, options.end)
        else:
            plan = clips.segment_plan(spec, duration, options.hop, options.start, options.end)
    except ValueError as e:
        if container is not None:
            container.close()
        raise VidclsError(f"{info.file}: {e}") from e
    crops = options.crops or spec.crops
    return WindowStream(
        source, spec, info, plan, crops, container, opening=opening, live=live,
        decode_threads=options.decode_threads,
    )  # fmt: skip


LIVE_TIMEOUT = 10.0  # seconds without data before a URL or live source counts as stalled


def _opening(name: str, options: FileOptions) -> video.Opening | None:
    """How FFmpeg opens a URL, a camera or a pipe; None for a file or standard input."""
    if not (sources.is_url(name) or sources.is_live(name)):
        return None
    target, implied = sources.device_format(name)
    given = options.live
    timeout = given.timeout if given.timeout is not None else LIVE_TIMEOUT
    return video.Opening(target, given.input_format or implied, given.input_options, timeout)


def _open_live(
    name: str, opening: video.Opening, options: FileOptions, first: Any
) -> streams.LiveContainer:
    given = options.live

    def reopen() -> Any:
        return video.open_container(name, opening=opening)

    return streams.LiveContainer(
        name, reopen, first, reconnect=given.reconnect, clock=given.clock,
        duration=given.duration, stop=streams.STOP,
    )  # fmt: skip


@dataclass(frozen=True)
class Opened:
    """A file's windows are planned; decoding starts."""

    file: str
    total: int | None  # windows, when known in advance
    started: float  # time.time(), comparable across processes
    live: bool = False  # read as it comes (a stream, a camera, a pipe): followed by default
    span: float = 0.0  # the windows' length, their hop (segment) and where the first starts
    hop: float | None = None
    start: float = 0.0


@dataclass(frozen=True)
class Decoded:
    """One window's views, ready for the model."""

    file: str
    index: int
    start: float
    end: float  # clamped as records report it (the range's end, a stream's end)
    views: np.ndarray | None  # (crops, frames, H, W, 3) uint8; None where only scores travel
    arrived: float | None = None  # time.time() the window's last frame was read, for the lag
    dropped: int = 0  # a live source's windows dropped so far (--drop oldest), this one's file
    said: tuple[str, ...] = ()  # a live source's warnings since the window before (a jump)


@dataclass(frozen=True)
class Closed:
    """Every window of the file was yielded: what the file turned out to be."""

    file: str
    facts: FileFacts


@dataclass(frozen=True)
class Unreadable:
    """The file failed; nothing more comes for it."""

    file: str
    message: str  # one line naming the file and the reason
    kind: str = "VidclsError"  # the error's class in vidcls.errors


Item = Opened | Decoded | Closed | Unreadable


def decode_files(
    names: Iterable[str], spec: ModelSpec, options: FileOptions, stdin: BinaryIO | None = None
) -> Iterator[Item]:
    """Each file in turn as Opened, its Decoded windows, then Closed; or Unreadable.

    A file that fails becomes one item; the next file goes on."""
    for name in names:
        try:
            stream = open_windows(name, spec, options, stdin)
            plan = stream.plan
            live = stream.live is not None
            yield Opened(name, stream.total, time.time(), live, plan.span, plan.hop, plan.start)
            told = 0
            for window, views in stream:
                arrived = stream.live.arrived(window.end) if stream.live else time.time()
                said = tuple(stream.live.warnings[told:]) if stream.live else ()
                told += len(said)
                yield Decoded(name, window.index, window.start, window.end, views, arrived, said=said)  # fmt: skip # noqa: E501
        except VidclsError as e:
            yield Unreadable(name, str(e), type(e).__name__)
            continue
        yield Closed(name, stream.facts())
