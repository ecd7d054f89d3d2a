"""The records vidcls writes, built from plain data: file facts, probabilities, labels, options.

The shapes here are the JSON schema documented in the README (`schema_version` 1). Nothing
here decodes, loads or runs anything, so every driver builds the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import SCHEMA_VERSION, FileOptions
from .errors import UsageError
from .facts import FileFacts

if TYPE_CHECKING:
    import numpy as np

    from .video import VideoInfo


@dataclass(frozen=True)
class Answer:
    """How probabilities become top-k lists: the labels, and the classes to answer among."""

    labels: Sequence[str]
    subset: tuple[int, ...] | None  # --classes; None: all of them
    k: int
    # a model with several heads: each head's name and its classes (in the subset), which get
    # a top-k of their own; () for one head over every class
    heads: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # what the engine averages over views: "softmax" scores, or raw "logits" that become
    # probabilities only after the mean (registry `average`)
    average: str = "softmax"

    @classmethod
    def of(
        cls,
        labels: Sequence[str],
        options: FileOptions,
        heads: Sequence[tuple[str, Sequence[int]]] = (),
        average: str = "softmax",
    ) -> Answer:
        subset = class_subset(labels, options.classes)
        k = min(options.top_k, len(subset) if subset else len(labels))
        if len(heads) < 2:
            heads = ()
        chosen = tuple(
            (name, tuple(i for i in classes if subset is None or i in subset))
            for name, classes in heads
        )
        return cls(list(labels), subset, k, tuple((n, c) for n, c in chosen if c), average)

    def softmax_groups(self) -> list[list[int]] | None:
        """The classes each softmax runs over: one per head, or the --classes subset; None for
        one softmax over every class. The others get probability 0."""
        if self.heads:
            return [list(classes) for _, classes in self.heads]
        return None if self.subset is None else [list(self.subset)]

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """What the engine averaged, as probabilities: softmax scores as they are; averaged
        logits through the softmax (per group), along the last axis."""
        import numpy as np

        if self.average == "softmax":
            return scores
        groups = self.softmax_groups() or [list(range(scores.shape[-1]))]
        probs = np.zeros_like(scores, dtype=np.float64)
        for group in groups:
            part = scores[..., group].astype(np.float64)
            part = np.exp(part - part.max(-1, keepdims=True))
            probs[..., group] = part / part.sum(-1, keepdims=True)
        return probs.astype(np.float32)

    def top_k(self, probs: np.ndarray) -> list[dict[str, Any]]:
        """The k best classes; with several heads, each head's k best in head order, each item
        naming its head."""
        import numpy as np

        if self.heads:
            return [
                {**item, "head": name}
                for name, classes in self.heads
                for item in self._best(probs, np.asarray(classes))
            ]
        candidates = np.arange(len(self.labels)) if self.subset is None else np.asarray(self.subset)
        return self._best(probs, candidates)

    def _best(self, probs: np.ndarray, candidates: np.ndarray) -> list[dict[str, Any]]:
        import numpy as np

        order = candidates[np.argsort(-probs[candidates], kind="stable")][: self.k]
        return [
            {"label": self.labels[i], "index": int(i), "score": round(float(probs[i]), 6)}
            for i in order
        ]


def ranked(top_k: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(rank, item) of a top-k list; a model with several heads ranks each head from 1."""
    seen: dict[str | None, int] = {}
    out = []
    for item in top_k:
        head = item.get("head")
        seen[head] = seen.get(head, 0) + 1
        out.append((seen[head], item))
    return out


def class_subset(labels: Sequence[str], classes: Sequence[str] | None) -> tuple[int, ...] | None:
    """Indices of the requested labels; unknown names are a usage error naming them."""
    if not classes:
        return None
    import difflib

    index = {name: i for i, name in enumerate(labels)}
    unknown = [c for c in classes if c not in index]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(labels), n=3)
            hints.append(f"'{name}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise UsageError("unknown class " + "; ".join(hints) + " — see the model's labels")
    return tuple(sorted({index[c] for c in classes}))


def window_record(
    file: str, start: float, end: float, probs: np.ndarray, answer: Answer
) -> dict[str, Any]:
    return {"type": "window", "file": file, "start": round(start, 3), "end": round(end, 3),
            "top_k": answer.top_k(probs)}  # fmt: skip


def file_record(
    facts: FileFacts,
    model: str,
    weights: str,
    windows: int,
    options: FileOptions,
    run_key: str,
) -> dict[str, Any]:
    """The fields every file record has, before its answer (top_k, or windows and segments)."""
    return {
        "type": "file",
        "schema_version": SCHEMA_VERSION,
        "vidcls_version": __version__,
        "file": facts.file,
        "model": model,
        "weights": weights,
        "duration": round(facts.duration, 6),
        "fps": None if facts.fps is None else round(facts.fps, 6),
        "vfr": facts.vfr,
        "rotation": facts.rotation,
        "width": facts.width,
        "height": facts.height,
        "start": round(facts.start, 6),
        "end": round(facts.end, 6),
        "span": round(facts.span, 6),
        "num_windows": windows,
        "crops": facts.crops,
        "frames_decoded": facts.frames_decoded,
        "corrupt_packets": facts.corrupt_packets,
        "warnings": list(facts.warnings),
        "classes": list(options.classes) if options.classes else None,
        "run_key": run_key or None,
    }


def segment_fields(
    hop: float, min_duration: float, windows: list[dict[str, Any]], segments: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a `segment` file record adds: the hop, the fold threshold, windows and segments."""
    strip = ("type", "file")
    return {
        "hop": round(hop, 6),
        "min_duration": round(min_duration, 6),
        "windows": [{f: v for f, v in w.items() if f not in strip} for w in windows],
        "segments": segments,
    }


def segment_record(file: str, segment: dict[str, Any]) -> dict[str, Any]:
    return {"type": "segment", "file": file, **segment}


def error_record(file: str, message: str) -> dict[str, Any]:
    return {"type": "error", "file": file, "error": message}


def probe_record(
    info: VideoInfo, first: bool | None, last: bool | None, warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """`vidcls probe`'s record: what the file says about itself, whether its ends decode, and
    what is wrong with it as far as reading its packets and its ends shows."""
    return {"type": "probe", **info.as_dict(), "header_duration": info.header_duration,
            "first_second_decodes": first, "last_second_decodes": last,
            "warnings": list(warnings)}  # fmt: skip
