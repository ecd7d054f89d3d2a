"""The per-file core: one file (or many, one after another) and one model in, events out.

`run` decodes files into windows (`windows.decode_files`), scores them with the engine and
turns the scores into events with `events`. `events` is where one file becomes one record: it
gathers a file's scored windows and, at its end, builds the record from plain data (the file's
facts, probabilities, labels, options). Every driver feeds it: the local loop and the worker
processes through `run`, Ray with the windows its actors scored, the Python API in the calling
thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from . import records
from .events import Event, Failed, FileDone, Noted, SegmentDone, Started, Timed, Warned, WindowDone
from .segments import default_min_duration, merge_windows
from .windows import Closed, Decoded, Item, Opened, Unreadable, decode_files, decode_files_apart

if TYPE_CHECKING:
    import numpy as np

    from .config import FileOptions, Runtime
    from .facts import FileFacts
    from .loading import LoadedModel
    from .registry import ModelSpec

Scored = tuple[Item, "np.ndarray | None", float]  # an item, its window's probabilities, seconds


@dataclass(frozen=True)
class Identity:
    """What records say about the model and the run, besides the file."""

    model: str  # registry name
    weights: str  # where the weights came from
    run_key: str


@dataclass
class _Gathered:
    """One file's scored windows while they come in."""

    started: float
    total: int | None
    spans: list[tuple[float, float]] = field(default_factory=list)
    probs: list[Any] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # model time


def events(
    scored: Iterable[Scored], answer: records.Answer, options: FileOptions, identity: Identity
) -> Iterator[Event]:
    """Scored items (files may interleave) -> each file's events, as its windows arrive."""
    open_files: dict[str, _Gathered] = {}
    for item, probs, seconds in scored:
        if isinstance(item, Opened):
            open_files[item.file] = _Gathered(item.started, item.total)
            yield Started(item.file, item.total)
        elif isinstance(item, Decoded):
            gathered = open_files[item.file]
            yield _window(item, probs, seconds, gathered, answer, options)
        elif isinstance(item, Unreadable):
            open_files.pop(item.file, None)
            yield Failed(item.file, item.message, item.kind)
        elif isinstance(item, Closed):
            yield from _finish(item.facts, open_files.pop(item.file), answer, options, identity)


def _window(
    item: Decoded,
    probs: np.ndarray | None,
    seconds: float,
    gathered: _Gathered,
    answer: records.Answer,
    options: FileOptions,
) -> WindowDone:
    gathered.spans.append((item.start, item.end))
    gathered.probs.append(probs)
    gathered.seconds += seconds
    record = None
    if options.mode == "segment":
        shown = answer.probabilities(probs)  # type: ignore[arg-type]
        record = records.window_record(item.file, item.start, item.end, shown, answer)
        gathered.windows.append(record)
    return WindowDone(item.file, len(gathered.spans), gathered.total, record)


def _finish(
    facts: FileFacts,
    gathered: _Gathered,
    answer: records.Answer,
    options: FileOptions,
    identity: Identity,
) -> Iterator[Event]:
    import numpy as np

    for sentence in facts.warnings:
        yield Warned(facts.file, sentence)
    for line in facts.ffmpeg_log:
        yield Noted(facts.file, f"FFmpeg said {line}")
    if options.strict and facts.warnings:
        yield Failed(facts.file, f"{facts.file}: {facts.warnings[0]} (--strict)")
        return
    count = len(gathered.spans)
    record = records.file_record(
        facts, identity.model, identity.weights, count, options, identity.run_key
    )
    # the mean over windows of what the engine averaged over views (softmaxes or logits)
    table = np.stack(gathered.probs)
    if options.mode == "predict":
        record["top_k"] = answer.top_k(answer.probabilities(table.mean(0)))
    else:
        hop = facts.hop if facts.hop is not None else facts.span
        shortest = options.min_duration
        if shortest is None:
            shortest = default_min_duration(facts.span, hop)
        segments = _segments(gathered.spans, answer.probabilities(table), answer, facts, shortest)
        record.update(records.segment_fields(hop, shortest, gathered.windows, segments))
        for segment in segments:
            yield SegmentDone(facts.file, records.segment_record(facts.file, segment))
    yield FileDone(facts.file, record)
    total = time.time() - gathered.started
    yield Timed(facts.file, count, facts.decode_seconds, facts.convert_seconds, gathered.seconds, total)  # fmt: skip # noqa: E501


def _segments(
    spans: list[tuple[float, float]],
    table: np.ndarray,
    answer: records.Answer,
    facts: FileFacts,
    shortest: float,
) -> list[dict[str, Any]]:
    """The merged timeline; with several heads, one per head (each segment naming its head),
    interleaved in time order."""
    if not answer.heads:
        merged = merge_windows(spans, table, answer.labels, facts.end, shortest, facts.start)
        return [s.as_dict() for s in merged]
    out = []
    for order, (name, classes) in enumerate(answer.heads):
        labels = [answer.labels[i] for i in classes]
        columns = table[:, list(classes)]
        for segment in merge_windows(spans, columns, labels, facts.end, shortest, facts.start):
            record = {**segment.as_dict(), "index": classes[segment.index], "head": name}
            out.append((segment.start, order, record))
    return [record for _, _, record in sorted(out, key=lambda x: x[:2])]


def answer_for(labels: Sequence[str], options: FileOptions, spec: ModelSpec) -> records.Answer:
    """How a model's scores become answers: its labels, heads and view averaging, the options'
    classes and k. Every driver builds it here."""
    return records.Answer.of(labels, options, spec.head_ranges(len(labels)), spec.average)


def run(
    loaded: LoadedModel,
    names: Iterable[str],
    options: FileOptions,
    runtime: Runtime,
    run_key: str,
    stdin: BinaryIO | None = None,
    overlap: bool = True,
    apart: bool = False,
) -> Iterator[Event]:
    """Classify files with one loaded model. With `overlap` the next windows (and files) decode
    in a producer thread while the current ones run; without, all of it runs in this thread.
    With `apart` they decode in a child process, so a file that crashes FFmpeg fails alone."""
    from .engine import Classifier

    answer = answer_for(loaded.labels, options, loaded.spec)
    crops = options.crops or loaded.spec.crops
    classifier = Classifier(loaded, crops, runtime.batch_size, answer, runtime.compile)
    if apart:
        items = decode_files_apart(names, loaded.spec, options)
    else:
        items = decode_files(names, loaded.spec, options, stdin)
    pairs = ((item, item.views if isinstance(item, Decoded) else None) for item in items)
    scored = classifier.run(pairs, prefetch=overlap)
    identity = Identity(loaded.spec.name, loaded.source, run_key)
    yield from events(scored, answer, options, identity)
