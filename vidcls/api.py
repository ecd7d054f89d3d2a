"""The Python API: the same per-file core as the command line, results as plain dicts.

vidcls.predict("clip.mp4")                      # top-k over the whole video
vidcls.segment("talk.mp4", hop=4.0)             # per-window scores and merged segments
for record in vidcls.stream("rtsp://cam/live", model="motion-tiny"):
    ...                                         # window, final segment, ..., file records
for start, end, x in vidcls.model_inputs("clip.mp4"):
    ...                                         # x: (crops, frames, 3, H, W) float32

One video runs in the calling thread: no producer thread, nothing printed. Damage that still
decoded is reported with `warnings.warn`; a file that cannot be classified raises its
`VidclsError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import config
from .config import FileOptions, Runtime
from .errors import rebuild
from .events import Failed, FileDone, Warned

if TYPE_CHECKING:
    import torch

    from .loading import LoadedModel

_LOAD = (
    "weights", "device", "precision", "offline", "labels", "vivit_attention", "frames", "stride",
)  # fmt: skip
_RUN = ("batch_size", "compile", "threads")
_LIVE = ("input_format", "input_options", "timeout", "reconnect", "clock", "drop", "duration")
_FILE = (
    "top_k",
    "clips_count",
    "crops",
    "hop",
    "min_duration",
    "start",
    "end",
    "classes",
    "strict",
    "max_pixels",
    "max_duration",
    "decode_timeout",
    "decode_threads",
)


def _file_options(mode: str, options: dict[str, Any]) -> FileOptions:
    classes = options.get("classes")
    return FileOptions(
        mode=mode,
        top_k=options.get("top_k", 5),
        clips=options.get("clips_count"),
        crops=options.get("crops"),
        hop=options.get("hop"),
        min_duration=options.get("min_duration"),
        start=options.get("start", 0.0),
        end=options.get("end"),
        classes=None if classes is None else tuple(classes),
        strict=bool(options.get("strict", False)),
        decode_threads=options.get("decode_threads"),
        live=config.LiveOptions(
            input_format=options.get("input_format"),
            input_options=tuple(
                (str(k), str(v)) for k, v in options.get("input_options", {}).items()
            ),
            timeout=options.get("timeout"),
            reconnect=options.get("reconnect", 0),
            clock=options.get("clock", "stream"),
            follow=options.get("follow"),
            drop=options.get("drop", "none"),
            duration=options.get("duration"),
        ),
        max_pixels=options.get("max_pixels", FileOptions.max_pixels),
        max_duration=options.get("max_duration", FileOptions.max_duration),
        decode_timeout=options.get("decode_timeout", FileOptions.decode_timeout),
    )


def _prepare(
    model: str | LoadedModel | None, mode: str, options: dict[str, Any]
) -> tuple[LoadedModel, FileOptions, Runtime, str]:
    """Resolve the keyword arguments once, as the command line resolves its options."""
    from .loading import LoadedModel, choose_model, load, relabel

    unknown = sorted(set(options) - {*_LOAD, *_RUN, *_FILE, *_LIVE, "follow"})
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    file_options = _file_options(mode, options)
    labels = options.get("labels")
    if isinstance(model, LoadedModel):
        if options.get("frames") is not None or options.get("stride") is not None:
            raise TypeError("frames and stride are chosen when the model is loaded (load_model)")
        choice = config.choose_model(model.spec.name, labels=labels, spec=model.spec)
        loaded = relabel(model, choice.labels, choice.labels_from)
        device = str(next(loaded.model.parameters()).device)
        batch = config.parse_batch_size(options.get("batch_size"))
        threads = options.get("threads")
        config.check_threads(threads, "threads")
        resolved = Runtime(device, loaded.precision, batch, options.get("compile", False), threads)
    else:
        choice = choose_model(
            model, options.get("weights"), labels, options.get("offline"),
            options.get("frames"), options.get("stride"), options.get("vivit_attention"),
        )  # fmt: skip
        resolved = config.runtime(
            options.get("device", "auto"), options.get("precision", "auto"),
            options.get("batch_size"), options.get("compile", False), options.get("threads"),
        )  # fmt: skip
        for note in resolved.notes:
            warnings.warn(note, stacklevel=3)
        loaded = load(choice, resolved, progress=False)
    key = config.run_key(loaded.spec.name, loaded.source, loaded.precision, choice.labels, file_options, choice.custom)  # fmt: skip # noqa: E501
    return loaded, file_options, resolved, key


def _result(
    prepared: tuple[LoadedModel, FileOptions, Runtime, str],
    video: str | Path,
    stdin: BinaryIO | None = None,
) -> dict[str, Any]:
    from .core import run

    loaded, options, resolved, key = prepared
    record: dict[str, Any] = {}
    for event in run(loaded, [str(video)], options, resolved, key, stdin, overlap=False):
        if isinstance(event, Failed):
            raise rebuild(event.kind, event.message)
        if isinstance(event, Warned):
            where = f"{event.file}: " if event.file else ""
            warnings.warn(where + event.message, stacklevel=3)
        elif isinstance(event, FileDone):
            record = event.record
    return record


def classify(
    loaded: LoadedModel,
    video: str | Path,
    *,
    mode: str = "predict",
    stdin: BinaryIO | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One video ('-': read from `stdin`, default sys.stdin) through an already loaded model."""
    return _result(_prepare(loaded, mode, options), video, stdin)


def predict(
    video: str | Path, model: str | LoadedModel | None = None, **options: Any
) -> dict[str, Any]:
    """Classify a whole video: the mean over its windows of each window's mean over crops.

    `model` is a registry name, hf:OWNER/REPO or hf:FOLDER (a hub fine-tune), or what
    load_model returned (to load once for many videos); None is "timesformer", or the family
    of `weights`. Options: weights, device, precision, offline, labels (a file or a list of
    names), vivit_attention (see load_model), frames, stride, top_k, clips_count, crops,
    batch_size, threads (torch intra-op threads), decode_threads (decoder frame threads), start,
    end (seconds), classes (a list of label names), strict (a file with any warning about damage
    raises instead of returning its result), max_pixels, max_duration (seconds), decode_timeout
    (seconds): the limits of the command line's --max-pixels, --max-duration and
    --decode-timeout.
    """
    return _result(_prepare(model, "predict", options), video)


def segment(
    video: str | Path, model: str | LoadedModel | None = None, **options: Any
) -> dict[str, Any]:
    """Per-window top-k with start/end seconds, and windows merged into labelled segments.

    Options: those of predict, plus hop (seconds, default a third of the span) and min_duration
    (seconds, default span + hop when windows overlap, else the span: shorter segments are
    folded into their neighbours; 0 keeps them all).
    """
    return _result(_prepare(model, "segment", options), video)


def stream(
    source: str | Path, model: str | LoadedModel | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """The records of a source as they happen: each window's (with its `lag` and `dropped`),
    each segment's once final (`"final": true`), then the file record; as `--follow` writes
    them. `source` is a file, a URL FFmpeg opens (rtsp://, udp://, http(s)://, an HLS
    playlist), a camera (v4l2:/dev/video0) or a named pipe.

    Options: those of segment, and mode ("segment" or "predict"), input_format, input_options
    (a dict of FFmpeg options, e.g. {"rtsp_transport": "tcp"}), timeout (seconds without
    data), reconnect (times), clock ("stream" or "wall"), drop ("none" or "oldest"), duration
    (seconds of the source). `stop()` ends the sources being read as if they had ended: the
    pending segments and the file record still come. A file with damage warns as in segment;
    a source that fails raises its `VidclsError`.
    """
    from .core import run
    from .events import SegmentDone, WindowDone

    mode = options.pop("mode", "segment")
    options.setdefault("follow", True)
    loaded, file_options, resolved, key = _prepare(model, mode, options)
    from .streams import STOP

    STOP.clear()
    for event in run(loaded, [str(source)], file_options, resolved, key):
        if isinstance(event, Failed):
            raise rebuild(event.kind, event.message)
        if isinstance(event, Warned):
            where = f"{event.file}: " if event.file else ""
            warnings.warn(where + event.message, stacklevel=2)
        elif isinstance(event, WindowDone) and event.record is not None:
            yield event.record
        elif isinstance(event, SegmentDone):
            yield event.record
        elif isinstance(event, FileDone):
            yield {k: v for k, v in event.record.items() if k not in ("windows", "segments")}


def stop() -> None:
    """End the live sources that `stream` (in any thread) is reading, as if they had ended."""
    from .streams import STOP

    STOP.set()


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

    from .loading import choose_model
    from .transforms import normalize
    from .windows import open_windows

    spec = choose_model(model).spec
    options = FileOptions(mode=mode, clips=clips_count, hop=hop, crops=crops, start=start, end=end)
    for window, views in open_windows(video, spec, options):
        yield window.start, window.end, normalize(torch.from_numpy(views), spec)
