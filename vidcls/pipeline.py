"""One video through one model: probe, plan windows, decode, classify, summarise.

`run_file` yields events as results arrive: a ("window", record) per window of `segment`, then
("file", record) with everything, which is what `vidcls.predict`/`vidcls.segment` return and the
JSON the command line prints.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import __version__, clips, decode, video
from .errors import UsageError, VidclsError
from .registry import ModelSpec
from .segments import merge_windows

if TYPE_CHECKING:
    import numpy as np

    from .weights import LoadedModel

SCHEMA_VERSION = 1
Progress = Callable[[int, "int | None"], None]
Event = tuple[str, dict[str, Any]]


@dataclass
class Options:
    """What to do with each video; the command line's options, the API's keyword arguments."""

    mode: str = "predict"  # or "segment"
    top_k: int = 5
    clips_count: int | None = None
    crops: int | None = None
    hop: float | None = None
    min_duration: float = 0.0
    batch_size: int | str = "auto"
    start: float = 0.0
    end: float | None = None
    classes: list[str] | None = None  # restrict the answer to these labels
    compile: bool = False  # torch.compile the model (fixed batch shapes)


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
                decode.frame_converter(self.spec.short_side),
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


def class_subset(labels: list[str], classes: list[str] | None) -> list[int] | None:
    """Indices of the requested labels; unknown names are a usage error naming them."""
    if not classes:
        return None
    import difflib

    index = {name: i for i, name in enumerate(labels)}
    unknown = [c for c in classes if c not in index]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, labels, n=3)
            hints.append(f"'{name}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise UsageError("unknown class " + "; ".join(hints) + " — see the model's labels")
    return sorted({index[c] for c in classes})


def top_k(
    probs: np.ndarray, labels: list[str], k: int, subset: list[int] | None
) -> list[dict[str, Any]]:
    import numpy as np

    candidates = np.arange(len(labels)) if subset is None else np.asarray(subset)
    order = candidates[np.argsort(-probs[candidates], kind="stable")][:k]
    return [
        {"label": labels[i], "index": int(i), "score": round(float(probs[i]), 6)} for i in order
    ]


def _duration(stream: WindowStream) -> float:
    """The indexed length of a file; from standard input, the last frame's time plus a frame."""
    info, stats = stream.info, stream.stats
    if info.seekable and info.duration is not None:
        return info.duration
    step = 1 / info.fps if info.fps else stats.last_step
    return stats.end_time + step


def _file_record(
    loaded: LoadedModel, stream: WindowStream, windows: int, options: Options
) -> dict[str, Any]:
    info, stats, plan = stream.info, stream.stats, stream.plan
    duration = _duration(stream)
    fps = info.fps
    if fps is None and stats.frames > 1 and stats.end_time > 0:
        fps = (stats.frames - 1) / stats.end_time
    width, height = stats.size or (info.width, info.height)
    record: dict[str, Any] = {
        "type": "file",
        "schema_version": SCHEMA_VERSION,
        "vidcls_version": __version__,
        "file": info.file,
        "model": loaded.spec.name,
        "weights": loaded.source,
        "duration": round(duration, 6),
        "fps": None if fps is None else round(fps, 6),
        "vfr": info.vfr,
        "rotation": info.rotation if stats.rotation is None else stats.rotation,
        "width": width,
        "height": height,
        "start": round(plan.start, 6),
        "end": round(plan.end if plan.end is not None else duration, 6),
        "span": round(plan.span, 6),
        "num_windows": windows,
        "crops": stream.crops,
        "frames_decoded": stats.frames,
        "corrupt_packets": stats.corrupt_packets,
        "classes": options.classes or None,
    }
    return record


def _warn_damage(stream: WindowStream) -> None:
    info, stats = stream.info, stream.stats
    if stats.corrupt_packets:
        warnings.warn(
            f"{info.file}: skipped {stats.corrupt_packets} corrupt packet(s)", stacklevel=3
        )
    claimed = info.header_duration
    actual = info.duration if info.seekable else (stats.end_time if stats.finished else None)
    if claimed and actual is not None and actual < video.truncated_below(claimed):
        warnings.warn(
            f"{info.file}: the video ends at {actual:.2f} s but its header says {claimed:.2f} s "
            "(truncated?)",
            stacklevel=3,
        )


def run_file(
    loaded: LoadedModel,
    source: str | Path,
    options: Options,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> Iterator[Event]:
    """Classify one video, yielding ("window", record) as windows finish (segment mode) and
    finally ("file", record)."""
    import numpy as np

    from .engine import Classifier

    started = time.perf_counter()
    subset = class_subset(loaded.labels, options.classes)
    stream = open_windows(source, loaded.spec, options, stdin)
    runner = Classifier(loaded, stream.crops, options.batch_size, subset, options.compile)
    spans: list[tuple[float, float]] = []
    probs: list[np.ndarray] = []
    window_records: list[dict[str, Any]] = []
    k = min(options.top_k, len(subset) if subset else len(loaded.labels))
    for window, p in runner.run(stream):
        end = window.end if stream.plan.end is None else min(window.end, stream.plan.end)
        if stream.stats.finished:  # a window padded at the end of a stream of unknown length
            end = min(end, _duration(stream))
        spans.append((window.start, end))
        probs.append(p)
        if progress is not None:
            progress(len(spans), stream.total)
        if options.mode == "segment":
            record = {
                "type": "window",
                "file": stream.info.file,
                "start": round(window.start, 3),
                "end": round(end, 3),
                "top_k": top_k(p, loaded.labels, k, subset),
            }
            window_records.append(record)
            yield "window", record
    _warn_damage(stream)
    record = _file_record(loaded, stream, len(spans), options)
    table = np.stack(probs)
    if options.mode == "predict":
        record["top_k"] = top_k(table.mean(0), loaded.labels, k, subset)
    else:
        end = record["end"]
        record["hop"] = round(stream.plan.hop or stream.plan.span, 6)
        record["min_duration"] = options.min_duration
        record["windows"] = [
            {k: v for k, v in w.items() if k not in ("type", "file")} for w in window_records
        ]
        if subset is not None:
            masked = np.zeros_like(table)
            masked[:, subset] = table[:, subset]
            table = masked
        segments = merge_windows(
            spans, table, loaded.labels, end, options.min_duration, stream.plan.start
        )
        record["segments"] = [s.as_dict() for s in segments]
    if timings is not None:
        timings.update(
            decode=stream.stats.decode_seconds,
            preprocess=stream.stats.convert_seconds,
            inference=runner.seconds,
            total=time.perf_counter() - started,
        )
    yield "file", record
