"""The Python API, and the per-file pipeline the command line runs through.

    vidcls.predict("clip.mp4")                      # top-k over the whole video
    vidcls.segment("talk.mp4", hop=4.0)             # per-window scores and merged segments
    for start, end, x in vidcls.model_inputs("clip.mp4"):
        ...                                         # x: (crops, frames, 3, H, W) float32

Results are plain dicts, equal to the JSON the command line prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import clips, video
from .registry import ModelSpec, get_spec
from .segments import merge_windows

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .weights import LoadedModel

SCHEMA_VERSION = 1
Progress = Callable[[int, int | None], None]


@dataclass
class WindowStream:
    """The windows of one video as uint8 views, decoded in one pass when iterated."""

    info: video.VideoInfo
    plan: clips.Plan
    crops: int
    stats: video.DecodeStats = field(default_factory=video.DecodeStats)
    _container: Any = None
    _spec: ModelSpec | None = None

    def __iter__(self) -> Iterator[tuple[clips.Window, np.ndarray]]:
        from .transforms import crop_views

        spec = self._spec
        assert spec is not None and self._container is not None
        by_index: dict[int, clips.Window] = {}

        def remember(windows: Any) -> Iterator[clips.Window]:
            for w in windows:
                by_index[w.index] = w
                yield w

        convert = video.frame_converter(spec.short_side)
        try:
            picked = video.pick_frames(
                self._container,
                remember(self.plan.windows),
                convert,
                self.stats,
                self.info.file,
                self.plan.keep_partial,
            )
            for index, frames in picked:
                yield by_index.pop(index), crop_views(frames, spec.crop, self.crops)
        finally:
            self._container.close()

    @property
    def total(self) -> int | None:
        return len(self.plan.windows) if isinstance(self.plan.windows, list) else None


def open_windows(
    source: str | Path,
    spec: ModelSpec,
    *,
    mode: str = "predict",
    clips_count: int | None = None,
    hop: float | None = None,
    crops: int | None = None,
    stdin: BinaryIO | None = None,
) -> WindowStream:
    """Probe a video and plan its windows; decoding starts when the stream is iterated."""
    name = "-" if str(source) == "-" else str(source)
    if name == "-":
        container = video.open_container(name, stdin)
        info = video.probe(name, container)
    else:
        info = video.probe(source)
        container = video.open_container(source)
    if mode == "predict":
        plan = clips.predict_plan(spec, info.duration if info.seekable else None, clips_count)
    else:
        plan = clips.segment_plan(spec, info.duration if info.seekable else None, hop)
    return WindowStream(info, plan, crops or spec.crops, _container=container, _spec=spec)


def _top_k(probs: np.ndarray, labels: list[str], k: int) -> list[dict[str, Any]]:
    import numpy as np

    order = np.argsort(-probs, kind="stable")[:k]
    return [
        {"label": labels[i], "index": int(i), "score": round(float(probs[i]), 6)} for i in order
    ]


def _header(loaded: LoadedModel, stream: WindowStream, windows: int) -> dict[str, Any]:
    info, stats = stream.info, stream.stats
    duration = info.duration
    if not info.seekable or duration is None:
        step = 1 / info.fps if info.fps else 0.0
        duration = stats.end_time + step
    rotation = info.rotation if stats.rotation is None else stats.rotation
    width, height = stats.size or (info.width, info.height)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file": info.file,
        "model": loaded.spec.name,
        "weights": loaded.source,
        "duration": round(duration, 6),
        "fps": None if info.fps is None else round(info.fps, 6),
        "vfr": info.vfr,
        "rotation": rotation,
        "width": width,
        "height": height,
        "span": round(stream.plan.span, 6),
        "num_windows": windows,
        "crops": stream.crops,
        "frames_decoded": stats.frames,
        "corrupt_packets": stats.corrupt_packets,
    }
    return record


def classify(
    loaded: LoadedModel,
    source: str | Path,
    *,
    mode: str = "predict",
    top_k: int = 5,
    clips_count: int | None = None,
    crops: int | None = None,
    hop: float | None = None,
    min_duration: float = 0.0,
    batch_size: int | str = "auto",
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one video through a loaded model: the record `predict` or `segment` prints."""
    import numpy as np

    from .engine import Classifier

    stream = open_windows(
        source, loaded.spec, mode=mode, clips_count=clips_count, hop=hop, crops=crops, stdin=stdin
    )
    runner = Classifier(loaded, stream.crops, batch_size)
    windows: list[clips.Window] = []
    probs: list[np.ndarray] = []
    for window, p in runner.run(stream):
        windows.append(window)
        probs.append(p)
        if progress is not None:
            progress(len(windows), stream.total)
    if stream.stats.corrupt_packets:
        warnings.warn(
            f"{stream.info.file}: skipped {stream.stats.corrupt_packets} corrupt packet(s)",
            stacklevel=2,
        )
    record = _header(loaded, stream, len(windows))
    table = np.stack(probs)
    k = min(top_k, table.shape[1])
    if mode == "predict":
        record["top_k"] = _top_k(table.mean(0), loaded.labels, k)
        return record
    end = record["duration"]
    record["hop"] = round(stream.plan.hop or stream.plan.span, 6)
    record["min_duration"] = min_duration
    record["windows"] = [
        {
            "start": round(w.start, 3),
            "end": round(min(w.end, end), 3),
            "top_k": _top_k(p, loaded.labels, k),
        }
        for w, p in zip(windows, probs, strict=True)
    ]
    spans = [(w.start, min(w.end, end)) for w in windows]
    segments = merge_windows(spans, table, loaded.labels, end, min_duration)
    record["segments"] = [s.as_dict() for s in segments]
    return record


def _loaded(
    model: str | LoadedModel, options: dict[str, Any]
) -> tuple[LoadedModel, dict[str, Any]]:
    from .weights import LoadedModel, load_model

    if isinstance(model, LoadedModel):
        return model, options
    keys = ("weights", "device", "precision", "offline")
    load = {k: options.pop(k) for k in keys if k in options}
    return load_model(model, progress=False, **load), options


def predict(
    video_path: str | Path, model: str | LoadedModel = "timesformer", **options: Any
) -> dict[str, Any]:
    """Classify a whole video: the mean over its windows of each window's mean over crops.

    `model` is a registry name or what load_model returned. Options: weights, device, precision,
    offline, top_k, clips_count, crops, batch_size.
    """
    loaded, rest = _loaded(model, dict(options))
    return classify(loaded, video_path, mode="predict", **rest)


def segment(
    video_path: str | Path, model: str | LoadedModel = "timesformer", **options: Any
) -> dict[str, Any]:
    """Per-window top-k with start/end seconds, and windows merged into labelled segments.

    Options: those of predict, plus hop (seconds, default the span) and min_duration.
    """
    loaded, rest = _loaded(model, dict(options))
    return classify(loaded, video_path, mode="segment", **rest)


def model_inputs(
    video_path: str | Path,
    model: str = "timesformer",
    *,
    mode: str = "predict",
    clips_count: int | None = None,
    hop: float | None = None,
    crops: int | None = None,
) -> Iterator[tuple[float, float, torch.Tensor]]:
    """Yield (start_seconds, end_seconds, tensor) per window, exactly as fed to the model.

    The tensor is (crops, frames, channels, height, width) float32, before device and precision
    casts. `mode` "segment" gives the windows of `segment` (every `hop` seconds).
    """
    import torch

    from .transforms import normalize

    spec = get_spec(model)
    stream = open_windows(
        video_path, spec, mode=mode, clips_count=clips_count, hop=hop, crops=crops
    )
    for window, views in stream:
        yield window.start, window.end, normalize(torch.from_numpy(views), spec)
