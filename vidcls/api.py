"""The Python API: the same code path as the command line, results as plain dicts.

vidcls.predict("clip.mp4")                      # top-k over the whole video
vidcls.segment("talk.mp4", hop=4.0)             # per-window scores and merged segments
for start, end, x in vidcls.model_inputs("clip.mp4"):
    ...                                         # x: (crops, frames, 3, H, W) float32
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .pipeline import Options, open_windows, run_file
from .records import run_key
from .registry import get_spec

if TYPE_CHECKING:
    import torch

    from .loading import LoadedModel

_LOAD_OPTIONS = ("weights", "device", "precision", "offline", "labels")


def _prepare(
    model: str | LoadedModel, mode: str, options: dict[str, Any]
) -> tuple[LoadedModel, Options]:
    from .loading import LoadedModel, load_model, with_labels

    known = {f.name for f in fields(Options)} | set(_LOAD_OPTIONS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    load = {k: options.pop(k) for k in _LOAD_OPTIONS if k in options}
    labels = load.pop("labels", None)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, progress=False, **load)
    if labels is not None:
        loaded = with_labels(loaded, labels)
    opts = Options(mode=mode, **options)
    dtype = str(next(loaded.model.parameters()).dtype)
    override = loaded.labels if labels is not None else None
    opts.run_key = run_key(loaded.spec.name, loaded.source, dtype, override, opts)
    return loaded, opts


def _result(
    loaded: LoadedModel, video: str | Path, options: Options, stdin: BinaryIO | None = None
) -> dict[str, Any]:
    events = list(run_file(loaded, video, options, stdin))
    return events[-1][1]  # the file record holds everything


def classify(
    loaded: LoadedModel,
    video: str | Path,
    *,
    mode: str = "predict",
    stdin: BinaryIO | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One video ('-': read from `stdin`, default sys.stdin) through an already loaded model."""
    loaded, opts = _prepare(loaded, mode, options)
    return _result(loaded, video, opts, stdin)


def predict(
    video: str | Path, model: str | LoadedModel = "timesformer", **options: Any
) -> dict[str, Any]:
    """Classify a whole video: the mean over its windows of each window's mean over crops.

    `model` is a registry name or what load_model returned (to load once for many videos).
    Options: weights, device, precision, offline, labels (a file or a list of names), top_k,
    clips_count, crops, batch_size, start, end (seconds), classes (a list of label names).
    """
    loaded, opts = _prepare(model, "predict", options)
    return _result(loaded, video, opts)


def segment(
    video: str | Path, model: str | LoadedModel = "timesformer", **options: Any
) -> dict[str, Any]:
    """Per-window top-k with start/end seconds, and windows merged into labelled segments.

    Options: those of predict, plus hop (seconds, default the span) and min_duration (seconds,
    default the span, or span + hop when the hop is shorter: shorter segments are folded into
    their neighbours; 0 keeps them all).
    """
    loaded, opts = _prepare(model, "segment", options)
    return _result(loaded, video, opts)


def model_inputs(
    video: str | Path,
    model: str = "timesformer",
    *,
    mode: str = "predict",
    clips_count: int | None = None,
    hop: float | None = None,
    crops: int | None = None,
    start: float = 0.0,
    end: float | None = None,
) -> Iterator[tuple[float, float, torch.Tensor]]:
    """Yield (start_seconds, end_seconds, tensor) per window, exactly as fed to the model.

    The tensor is (crops, frames, channels, height, width) float32, before device and precision
    casts. `mode` "segment" gives the windows of `segment` (every `hop` seconds). A model with
    symmetries (`motion-tiny`) also sees each crop transformed:
    `vidcls.transforms.symmetric_views(spec)` lists the views and their class orders, and
    `transform(x, names)` makes one.
    """
    import torch

    from .transforms import normalize

    spec = get_spec(model)
    options = Options(
        mode=mode, clips_count=clips_count, hop=hop, crops=crops, start=start, end=end
    )
    stream = open_windows(video, spec, options)
    for window, views in stream:
        end = window.end if stream.plan.end is None else min(window.end, stream.plan.end)
        yield window.start, end, normalize(torch.from_numpy(views), spec)
