"""The records vidcls writes: file summaries, top-k lists, and the key of a run's options.

The shapes here are the JSON schema documented in the README (`schema_version` 1).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import TYPE_CHECKING, Any

from . import __version__, video
from .errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from .loading import LoadedModel
    from .pipeline import Options, WindowStream

SCHEMA_VERSION = 1


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


def duration_of(stream: WindowStream) -> float:
    """The indexed length of a file; from standard input, the last frame's time plus a frame."""
    info, stats = stream.info, stream.stats
    if info.seekable and info.duration is not None:
        return info.duration
    step = 1 / info.fps if info.fps else stats.last_step
    return stats.end_time + step


def file_record(
    loaded: LoadedModel, stream: WindowStream, windows: int, options: Options
) -> dict[str, Any]:
    info, stats, plan = stream.info, stream.stats, stream.plan
    duration = duration_of(stream)
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
        "run_key": options.run_key or None,
    }
    return record


def warn_damage(stream: WindowStream) -> None:
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


def run_key(
    model: str, weights: str | None, dtype: str, labels: list[str] | None, options: Options
) -> str:
    """A short hash of everything that changes a file's result, for --resume to compare."""
    fields = {
        "schema": SCHEMA_VERSION,
        "model": model,
        "weights": weights,
        "dtype": dtype,
        "labels": hashlib.sha1("\n".join(labels).encode()).hexdigest() if labels else None,
        "mode": options.mode,
        "top_k": options.top_k,
        "clips": options.clips_count,
        "crops": options.crops,
        "hop": options.hop,
        "min_duration": options.min_duration,
        "start": options.start,
        "end": options.end,
        "classes": options.classes,
    }
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]
