"""One video through one model: probe, plan windows, decode, classify, summarise.

`run_file` yields events as results arrive: a ("window", record) per window of `segment`, then
("file", record) with everything, which is what `vidcls.predict`/`vidcls.segment` return and the
JSON the command line prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import clips, decode, records, video
from .errors import VidclsError
from .registry import ModelSpec
from .segments import merge_windows

if TYPE_CHECKING:
    import numpy as np

    from .loading import LoadedModel

Progress = Callable[[str, int, "int | None"], None]
Event = tuple[str, dict[str, Any]]


@dataclass
class Options:
    """What to do with each video; the command line's options, the API's keyword arguments."""

    mode: str = "predict"  # or "segment"
    top_k: int = 5
    clips_count: int | None = None
    crops: int | None = None
    hop: float | None = None
    min_duration: float | None = None  # None: the model's span
    batch_size: int | str = "auto"
    start: float = 0.0
    end: float | None = None
    classes: list[str] | None = None  # restrict the answer to these labels
    compile: bool = False  # torch.compile the model (fixed batch shapes)
    run_key: str = ""  # records.run_key of the run, written into each file record


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

    @property
    def total(self) -> int | None:
        return len(self.plan.windows) if isinstance(self.plan.windows, list) else None

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

        container, self.container = self.container or video.open_container(self.source), None
        pending: dict[int, clips.Window] = {}

        def remember(windows: Any) -> Iterator[clips.Window]:
            for w in windows:
                pending[w.index] = w
                yield w

        plan = None
        info = self.info
        if info.seekable and info.packet_pts and isinstance(self.plan.windows, list):
            tolerance = max(decode.EPS, info.time_base / 2)
            times = (t for w in self.plan.windows for t in w.times)
            plan = decode.DecodePlan.build(
                times, info.packet_pts, info.keyframe_pts, info.start_time or 0.0,
                info.time_base, tolerance,
            )  # fmt: skip
        try:
            picked = decode.pick_frames(
                container,
                remember(self.plan.windows),
                decode.frame_converter(
                    self.spec.short_side,
                    self.spec.crop if self.spec.resize == "full" else None,
                ),
                self.stats,
                self.info.file,
                self.plan.keep_partial,
                origin=self.info.start_time,
                seek=self.plan.start if self.info.seekable else 0.0,
                stop_when_done=isinstance(self.plan.windows, list),
                threads=threads,
                plan=None if info.damaged else plan,
            )
            for index, frames in picked:
                started = time.perf_counter()
                views = crop_views(frames, self.spec.crop, self.crops)
                self.stats.convert_seconds += time.perf_counter() - started
                yield pending.pop(index), views
        finally:
            container.close()


def open_windows(
    source: str | Path,
    spec: ModelSpec,
    options: Options,
    stdin: BinaryIO | None = None,
) -> WindowStream:
    """Probe a video and plan its windows; decoding starts when the stream is iterated."""
    container = None
    if str(source) == "-":
        container = video.open_container("-", stdin)
        info = video.probe("-", container)
    else:
        info = video.probe(source)
    duration = info.duration if info.seekable else None
    try:
        if options.mode == "predict":
            plan = clips.predict_plan(
                spec, duration, options.clips_count, options.start, options.end
            )
        else:
            plan = clips.segment_plan(spec, duration, options.hop, options.start, options.end)
    except ValueError as e:
        if container is not None:
            container.close()
        raise VidclsError(f"{info.file}: {e}") from e
    return WindowStream(source, spec, info, plan, options.crops or spec.crops, container)


@dataclass
class _FileRun:
    """What the consumer gathers for one file while its windows come back from the model."""

    name: str
    stream: WindowStream
    started: float
    model_seconds: float
    spans: list[tuple[float, float]] = field(default_factory=list)
    probs: list[Any] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)


def _produce(
    names: Iterable[str], spec: ModelSpec, options: Options, stdin: BinaryIO | None
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Decode file after file (in the producer thread): ("start"|"window"|"end"|"error", ...).

    Only window items carry views; the others pass through the classifier in order.
    """
    for name in names:
        try:
            stream = open_windows(name, spec, options, stdin)
            yield ("start", name, stream, time.perf_counter()), None
            for window, views in stream:
                yield ("window", name, window), views
        except VidclsError as e:
            yield ("error", name, e), None
            continue
        yield ("end", name), None


def run_files(
    loaded: LoadedModel,
    names: Iterable[str],
    options: Options,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    timings: dict[str, dict[str, float]] | None = None,
) -> Iterator[tuple[str, str, Any]]:
    """Classify many videos with one model, decoding the next files while the current ones run.

    Yields (name, "window", record) as windows finish (segment mode), (name, "file", record)
    when a file is done, and (name, "error", VidclsError) for a file that failed.
    """
    import numpy as np

    from .engine import Classifier

    subset = records.class_subset(loaded.labels, options.classes)
    k = min(options.top_k, len(subset) if subset else len(loaded.labels))
    runner = Classifier(loaded, options.crops or loaded.spec.crops, options.batch_size, subset, options.compile)  # fmt: skip # noqa: E501
    runs: dict[str, _FileRun] = {}
    for meta, p in runner.run(_produce(names, loaded.spec, options, stdin)):
        kind, name = meta[0], meta[1]
        if kind == "start":
            runs[name] = _FileRun(name, meta[2], meta[3], runner.seconds)
        elif kind == "error":
            runs.pop(name, None)
            yield name, "error", meta[2]
        elif kind == "window":
            run = runs[name]
            window, plan = meta[2], run.stream.plan
            end = window.end if plan.end is None else min(window.end, plan.end)
            if run.stream.stats.finished:  # padded at the end of a stream of unknown length
                end = min(end, records.duration_of(run.stream))
            run.spans.append((window.start, end))
            run.probs.append(p)
            if progress is not None:
                progress(name, len(run.spans), run.stream.total)
            if options.mode == "segment":
                record = {"type": "window", "file": run.stream.info.file,
                          "start": round(window.start, 3), "end": round(end, 3),
                          "top_k": records.top_k(p, loaded.labels, k, subset)}  # fmt: skip
                run.windows.append(record)
                yield name, "window", record
        else:
            run = runs.pop(name)
            record = _summary(loaded, run, options, subset, k, np.stack(run.probs))
            if timings is not None:
                stats = run.stream.stats
                timings[name] = {
                    "decode": stats.decode_seconds,
                    "preprocess": stats.convert_seconds,
                    "inference": runner.seconds - run.model_seconds,
                    "total": time.perf_counter() - run.started,
                }
            yield name, "file", record


def default_min_duration(span: float, hop: float) -> float:
    """The shortest segment kept unless the user says otherwise.

    The span is the model's resolution in time: a shorter segment comes from windows that
    straddle two actions, not from an action the model saw. When windows overlap (hop < span)
    every moment has several votes, and a segment no longer than one window can rest on that
    window alone, typically one that straddles two actions and reads, sure of itself, as a third:
    a segment must then outlast two consecutive windows (span + hop) to stand on its own.
    """
    return span + hop if hop < span - 1e-9 else span


def _summary(
    loaded: LoadedModel, run: _FileRun, options: Options, subset: list[int] | None, k: int,
    table: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    records.warn_damage(run.stream)
    record = records.file_record(loaded, run.stream, len(run.spans), options)
    if options.mode == "predict":
        record["top_k"] = records.top_k(table.mean(0), loaded.labels, k, subset)
        return record
    end = record["end"]
    hop = run.stream.plan.hop or run.stream.plan.span
    record["hop"] = round(hop, 6)
    min_duration = options.min_duration
    if min_duration is None:
        min_duration = default_min_duration(run.stream.plan.span, hop)
    record["min_duration"] = round(min_duration, 6)
    strip = ("type", "file")
    record["windows"] = [{f: v for f, v in w.items() if f not in strip} for w in run.windows]
    if subset is not None:
        masked = np.zeros_like(table)
        masked[:, subset] = table[:, subset]
        table = masked
    start = run.stream.plan.start
    segments = merge_windows(run.spans, table, loaded.labels, end, min_duration, start)
    record["segments"] = [s.as_dict() for s in segments]
    return record


def run_file(
    loaded: LoadedModel, source: str | Path, options: Options, stdin: BinaryIO | None = None
) -> Iterator[Event]:
    """One video: ("window", record)... then ("file", record); a failure raises."""
    for _, kind, payload in run_files(loaded, [str(source)], options, stdin):
        if kind == "error":
            raise payload
        yield kind, payload
