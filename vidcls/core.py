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

from . import live, records
from .events import Event, Failed, FileDone, Noted, SegmentDone, Started, Timed, Warned, WindowDone
from .segments import default_min_duration, merge_windows, pieces
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
    follower: live.Follower | None = None  # a followed file in segment: its final segments
    followed: bool = False  # records as they happen, each window's with its lag
    dropped: int = 0  # windows dropped while the model was behind a live source
    said: set[str] = field(default_factory=set)  # warnings already said, as they happened


def events(
    scored: Iterable[Scored], answer: records.Answer, options: FileOptions, identity: Identity
) -> Iterator[Event]:
    """Scored items (files may interleave) -> each file's events, as its windows arrive."""
    open_files: dict[str, _Gathered] = {}
    for item, probs, seconds in scored:
        if isinstance(item, Opened):
            open_files[item.file] = gathered = _Gathered(item.started, item.total)
            gathered.followed = live.following(item.file, options, item.live)
            if gathered.followed and options.mode == "segment":
                shortest = _shortest(options, item.span, item.hop)
                merge = _merge(answer, shortest)
                gathered.follower = live.Follower(merge, item.start, item.span, shortest)
            yield Started(item.file, item.total)
        elif isinstance(item, Decoded):
            gathered = open_files[item.file]
            for sentence in item.said:  # a live source's jump or reconnection, said at once
                gathered.said.add(sentence)
                yield Warned(item.file, sentence)
            yield _window(item, probs, seconds, gathered, answer, options)
            if gathered.follower is not None:
                row = answer.probabilities(probs)  # type: ignore[arg-type]
                for segment in gathered.follower.add((item.start, item.end), row):
                    yield SegmentDone(item.file, _final(item.file, segment))
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
    if options.mode == "segment" or gathered.followed:
        shown = answer.probabilities(probs)  # type: ignore[arg-type]
        record = records.window_record(item.file, item.start, item.end, shown, answer)
        if options.mode == "segment":
            gathered.windows.append(record)
    if gathered.followed:
        gathered.dropped = item.dropped
        record = {**record, "dropped": item.dropped}  # type: ignore[dict-item]
        if item.arrived is not None:
            record["lag"] = round(max(0.0, time.time() - item.arrived), 3)
    return WindowDone(item.file, len(gathered.spans), gathered.total, record)


def _shortest(options: FileOptions, span: float, hop: float | None) -> float:
    if options.min_duration is not None:
        return options.min_duration
    return default_min_duration(span, hop if hop is not None else span)


def _final(file: str, segment: dict[str, Any]) -> dict[str, Any]:
    return {**records.segment_record(file, segment), "final": True}


def _finish(
    facts: FileFacts,
    gathered: _Gathered,
    answer: records.Answer,
    options: FileOptions,
    identity: Identity,
) -> Iterator[Event]:
    import numpy as np

    for sentence in facts.warnings:
        if sentence not in gathered.said:
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
    curves = None
    if options.mode == "predict":
        record["top_k"] = answer.top_k(answer.probabilities(table.mean(0)))
    else:
        hop = facts.hop if facts.hop is not None else facts.span
        shortest = _shortest(options, facts.span, facts.hop)
        probs = answer.probabilities(table)
        follower = gathered.follower
        if follower is None:
            segments = _segments(gathered.spans, probs, answer, facts.end, facts.start, shortest)
            for segment in segments:
                yield SegmentDone(facts.file, records.segment_record(facts.file, segment))
        else:  # the final ones went out as they happened: the pending ones, then all of them
            for segment in follower.finish(facts.end):
                yield SegmentDone(facts.file, _final(facts.file, segment))
            segments = follower.final
        record.update(records.segment_fields(hop, shortest, gathered.windows, segments))
        if options.curves:
            curves = top_curves(gathered.spans, probs, answer, facts.start, facts.end)
    if gathered.followed:
        record["dropped_windows"] = gathered.dropped
    yield FileDone(facts.file, record, curves)
    total = time.time() - gathered.started
    yield Timed(facts.file, count, facts.decode_seconds, facts.convert_seconds, gathered.seconds, total)  # fmt: skip # noqa: E501


def top_curves(
    spans: list[tuple[float, float]],
    table: np.ndarray,
    answer: records.Answer,
    start: float,
    end: float,
) -> dict[str, Any]:
    """The probabilities over time (piecewise constant between window edges) of every class
    among the top k at some moment, at least k of them, ranked by their probability integrated
    over the timeline. A class's rank at a moment among these is its rank among all classes,
    down to k: what `--multi-label` reads."""
    import numpy as np

    cut, probs = pieces(spans, table, end, start)
    lengths = cut[:, 1] - cut[:, 0]
    candidates = np.arange(table.shape[1]) if answer.subset is None else np.asarray(answer.subset)
    weight = (probs[:, candidates] * lengths[:, None]).sum(0)
    by_weight = np.argsort(-weight, kind="stable")
    ranks = np.argsort(np.argsort(-probs[:, candidates], axis=1, kind="stable"), axis=1)
    somewhere = (ranks < answer.k).any(0)
    keep = somewhere.copy()
    keep[by_weight[: answer.k]] = True
    chosen = candidates[[i for i in by_weight if keep[i]]]
    classes = [
        {
            "label": answer.labels[c],
            "index": int(c),
            "probs": [round(float(p), 6) for p in probs[:, c]],
        }  # fmt: skip # noqa: E501
        for c in chosen
    ]
    return {
        "pieces": [[round(float(a), 6), round(float(b), 6)] for a, b in cut],
        "classes": classes,
        "shown": min(answer.k, len(classes)),  # the first ones: the top k by weight, to draw
    }


def _merge(answer: records.Answer, shortest: float) -> live.Merge:
    """The timeline merge as a followed file's segments are made final with it."""

    def merge(
        spans: list[tuple[float, float]], table: np.ndarray, end: float, start: float
    ) -> list[dict[str, Any]]:
        return _segments(spans, table, answer, end, start, shortest)

    return merge


def _segments(
    spans: list[tuple[float, float]],
    table: np.ndarray,
    answer: records.Answer,
    end: float,
    start: float,
    shortest: float,
) -> list[dict[str, Any]]:
    """The merged timeline of [start, end]; with several heads, one per head (each segment
    naming its head), interleaved in time order."""
    if not answer.heads:
        merged = merge_windows(spans, table, answer.labels, end, shortest, start)
        return [s.as_dict() for s in merged]
    out = []
    for order, (name, classes) in enumerate(answer.heads):
        labels = [answer.labels[i] for i in classes]
        columns = table[:, list(classes)]
        for segment in merge_windows(spans, columns, labels, end, shortest, start):
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
    from .config import apply_threads
    from .engine import Classifier

    apply_threads(runtime)
    answer = answer_for(loaded.labels, options, loaded.spec)
    crops = options.crops or loaded.spec.crops
    # a followed source's window goes to the model as soon as it is read, not with the next one
    # (an HTTP file batches as the file would, to give its very records). A worker's names come
    # one at a time from a queue it shares with the others: reading ahead would take them all
    if isinstance(names, Sequence):
        followed = any(live.following(name, options) for name in names)
    else:
        followed = bool(options.live.follow)
    batch = 1 if followed else runtime.batch_size
    classifier = Classifier(loaded, crops, batch, answer, runtime.compile)
    items: Iterable[Item]
    if apart:
        items = decode_files_apart(names, loaded.spec, options)
    else:
        items = decode_files(names, loaded.spec, options, stdin)
    if options.live.drop == "oldest":
        # dropping reads the source in a thread of its own already; a prefetch queue after it
        # would hold windows it can no longer drop, and each would add a model call to the lag
        items, overlap = live.dropping(items), False
    pairs = ((item, item.views if isinstance(item, Decoded) else None) for item in items)
    scored = classifier.run(pairs, prefetch=overlap)
    identity = Identity(loaded.spec.name, loaded.source, run_key)
    yield from events(scored, answer, options, identity)
