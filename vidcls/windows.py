"""The window stream of one video: probe, plan the windows, decode, crop.

`open_windows` probes a file (or standard input) and plans its windows; iterating the stream
decodes once and yields each window (its end clamped as records report it) with its uint8
views (crops, frames, H, W, 3). When it is done, `facts()` tells what the file turned out to
be. Nothing here knows a model: the spec gives only the protocol (times, sizes, crops).
`decode_files_apart` does the same in a child process, so that a file that crashes FFmpeg's
native code fails alone.
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

    from .config import FileOptions, LiveOptions


@dataclass
class WindowStream:
    """The windows of one video as uint8 views (crops, frames, H, W, 3), decoded when iterated."""

    source: str | Path
    spec: ModelSpec
    info: video.VideoInfo
    plan: clips.Plan
    crops: int
    container: Any = None  # standard input, opened once to probe it and read by the decoder
    limits: video.Limits = field(default_factory=video.Limits)
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

        container = self.container or video.open_container(
            self.source, limits=self.limits, opening=self.opening
        )
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
                limits=self.limits,
                pipe=not self.info.seekable,
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
    limits = options.limits
    name = str(source)
    opening = opening_for(name, options.live)
    live = None
    if name == "-":
        container = video.open_container("-", stdin, limits)
        info = video.probe("-", container, limits)
    elif opening is not None:
        first = video.open_container(name, limits=limits, opening=opening)
        # a URL with no known length (a live HTTP stream, a camera's) is read as it comes
        if sources.is_live(name) or first.duration is None:
            container = live = _open_live(name, opening, options, first)
            info = video.probe(name, first, limits, live=True)
        else:
            try:
                info = video.probe(name, first, limits)
            finally:
                video.close(first)
    else:
        info = video.probe(source, limits=limits, opening=opening)
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
        source, spec, info, plan, crops, container, limits=limits, opening=opening, live=live,
        decode_threads=options.decode_threads,
    )  # fmt: skip


LIVE_TIMEOUT = 10.0  # seconds without data before a URL or live source counts as stalled


def opening_for(name: str, given: LiveOptions) -> video.Opening | None:
    """How FFmpeg opens a URL, a camera or a pipe; None for a file or standard input."""
    if not (sources.is_url(name) or sources.is_live(name)):
        return None
    target, implied = sources.device_format(name)
    timeout = given.timeout if given.timeout is not None else LIVE_TIMEOUT
    return video.Opening(target, given.input_format or implied, given.input_options, timeout)


def _open_live(
    name: str, opening: video.Opening, options: FileOptions, first: Any
) -> streams.LiveContainer:
    given = options.live

    def reopen() -> Any:
        return video.open_container(name, limits=options.limits, opening=opening)

    return streams.LiveContainer(
        name, reopen, first, reconnect=given.reconnect, clock=given.clock,
        duration=given.duration, stop=streams.STOP, timeout=opening.timeout,
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


def died_of(exitcode: int | None) -> str:
    """How a process ended, in words: 'SIGSEGV' for a signal, else 'exit N'."""
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit {exitcode}"


def crashed(name: str, how: str) -> str:
    """The error of a file whose decoding process died."""
    return f"{name}: the process decoding it died ({how}); the run went on without it"


_END = "end"  # the child's word after a file's last item
_ALIVE = "alive"  # the child's word, now and then, while it makes progress


def silence_limit(decode_timeout: float) -> float:
    """How long a decoding child may say nothing before its parent stops it. A child at work
    says it is alive as it makes progress, and fails a file by itself after --decode-timeout
    without progress, once FFmpeg's call returns; silence past this is a call that never did."""
    return 2 * decode_timeout + 5


def hung(name: str, seconds: float) -> str:
    """The error of a file whose decoding process stopped answering."""
    return (
        f"{name}: the process decoding it said nothing for {seconds:g} s (--decode-timeout): a "
        "call into FFmpeg never returned; it was stopped and the run went on without it"
    )


@dataclass(frozen=True)
class _Raised:
    """An exception of the child's that is no VidclsError, to raise again in the parent."""

    error: BaseException


def _decode_child(conn: Any, spec: ModelSpec, options: FileOptions) -> None:
    """The child of `decode_files_apart`: a file name in, its items out, until None."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    last = 0.0

    def alive() -> None:  # at most once a second: the parent only needs to hear it is working
        nonlocal last
        if (now := time.monotonic()) - last >= 1.0:
            last = now
            conn.send(_ALIVE)

    video.Watchdog.heartbeat = alive
    try:
        while (name := conn.recv()) is not None:
            try:
                for item in decode_files([name], spec, options):
                    conn.send(item)
            except (EOFError, BrokenPipeError):
                raise
            except Exception as e:  # the file's last word: no _END after it
                _send_raised(conn, e)
                continue
            conn.send(_END)
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone


def _send_raised(conn: Any, e: Exception) -> None:
    try:
        conn.send(_Raised(e))
    except (EOFError, BrokenPipeError):
        raise
    except Exception:  # an exception that does not pickle: its words do
        conn.send(_Raised(RuntimeError(f"{type(e).__name__}: {e}")))


class DecodeChild:
    """A child process that decodes files one at a time for this one.

    A file that kills it (a segfault or an abort in FFmpeg's native code, the out-of-memory
    killer) becomes an Unreadable naming the signal, and the next file starts a new child.
    Standard input cannot be handed over: not for '-'."""

    def __init__(self, spec: ModelSpec, options: FileOptions) -> None:
        self.spec, self.options = spec, options
        self.process: Any = None
        self.conn: Any = None

    def items(self, name: str) -> Iterator[Item]:
        """`decode_files([name], …)`'s items, decoded in the child."""
        if self.process is None:
            self._start()
        self.conn.send(name)
        limit = silence_limit(self.options.decode_timeout)
        finished = False
        try:
            while True:
                if not self.conn.poll(limit):
                    finished = True
                    self.close(kill=True)
                    yield Unreadable(name, hung(name, limit))
                    return
                try:
                    message = self.conn.recv()
                except (EOFError, ConnectionResetError):
                    how = self._reap()
                    finished = True
                    yield Unreadable(name, crashed(name, how))
                    return
                if isinstance(message, str) and message == _ALIVE:
                    continue
                if isinstance(message, str) and message == _END:
                    finished = True
                    return
                if isinstance(message, _Raised):
                    finished = True
                    raise message.error
                yield message
        finally:
            if not finished:  # left mid-file: the child may be blocked sending the rest
                self.close(kill=True)

    def close(self, kill: bool = False) -> None:
        """Stop the child: asked to when it is idle, killed when it may be mid-file."""
        if self.process is None:
            return
        if not kill:
            try:
                self.conn.send(None)
                self.process.join(timeout=5)
            except (OSError, ValueError):
                pass
        if self.process.is_alive():
            self.process.kill()
        self._reap()

    def _start(self) -> None:
        import multiprocessing as mp

        context = mp.get_context("spawn")  # a fork would copy the parent's threads' locks
        self.conn, theirs = context.Pipe()
        args = (theirs, self.spec, self.options)
        self.process = context.Process(target=_decode_child, args=args, daemon=True)
        self.process.start()
        theirs.close()

    def _reap(self) -> str:
        self.process.join()
        how = died_of(self.process.exitcode)
        self.conn.close()
        self.process = self.conn = None
        return how


def decode_files_apart(
    names: Iterable[str], spec: ModelSpec, options: FileOptions
) -> Iterator[Item]:
    """`decode_files` in a child process (see `DecodeChild`), one file after another."""
    child = DecodeChild(spec, options)
    try:
        for name in names:
            yield from child.items(name)
    finally:
        child.close()
