"""A corpus on Ray (`--ray [ADDRESS]`, the `vidcls[ray]` extra): the file list as a Ray Dataset.

CPU tasks (one CPU each) decode each file into rows of plain data: one per window with its
uint8 views, then one "end" row with the file's facts (or one "error" row). A pool of model
actors (one model per GPU in the cluster, or CPU actors on a cluster without GPUs) turns window
rows into per-window probabilities with the engine and passes the other rows through. The
driver gathers each file's rows, which may come back in any order, and hands them to the
per-file core in order, so the records, the writers, `--resume` and the summary are the local
ones.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import core
from ..config import RunConfig, Runtime, resolve_precision
from ..errors import DeviceError, UsageError, VidclsError
from ..events import Event, Failed
from ..windows import Closed, Decoded, Opened

if TYPE_CHECKING:
    import numpy as np

    from ..config import FileOptions
    from ..registry import ModelSpec
    from ..windows import DecodeChild


def require_ray() -> None:
    """A usage error naming the extra when Ray Data is not installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError('--ray needs Ray Data: pip install "vidcls[ray]"') from None


def connect(address: str | None, say: Callable[[str], None]) -> None:
    """Join Ray unless this process already has: ADDRESS, or ray.init()'s default (RAY_ADDRESS,
    else a new local Ray). Worker logs stay on the workers: stdout carries results only."""
    require_ray()
    import ray

    if not ray.is_initialized():
        say(f"connecting to Ray at {address}…" if address else "starting Ray…")
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    # a pool sized for the cluster is fine for a short list: no warning for that
    warnings.filterwarnings("ignore", "The minimum number of concurrent actors", UserWarning)


def _resources() -> tuple[int, int]:
    import ray

    resources = ray.cluster_resources()
    return int(resources.get("CPU", 0)), int(resources.get("GPU", 0))


def cluster_runtime(
    device: str, precision: str, batch_size: int | None, compile: bool, threads: int | None = None
) -> Runtime:
    """The model actors' runtime, resolved against the cluster (connect first): "cuda" (one GPU
    per actor) when the cluster has GPUs and --device allows, else "cpu"."""
    _, gpus = _resources()
    if device.startswith("cuda") and not gpus:
        raise DeviceError(f"--device {device}: the Ray cluster has no GPU")
    placed = "cuda" if gpus and device != "cpu" else "cpu"
    chosen, notes = resolve_precision(precision, placed)
    return Runtime(placed, chosen, batch_size, compile, threads, notes)


@dataclass(frozen=True)
class _Layout:
    """Where the model actors go: `actors` of `cpus` CPUs (and one GPU each on `device` cuda)."""

    device: str
    actors: int
    cpus: float
    threads: int  # torch threads of a CPU actor
    rows: int  # windows per actor batch


def _layout(config: RunConfig, spec: ModelSpec) -> _Layout:
    cpus, gpus = _resources()
    device = config.runtime.device
    crops = config.options.crops or spec.crops
    window = crops * spec.num_frames * spec.crop * spec.crop * 3  # bytes of one window's views
    if config.runtime.batch_size is not None:
        rows = max(1, config.runtime.batch_size // crops)
    else:  # auto: the actor's Classifier sizes its own chunks; this only groups rows
        rows = max(1, min(32, (256 << 20) // window)) if device == "cuda" else 2
    if device == "cuda":  # a CPU each, or less where CPUs are few: decoding needs them more
        return _Layout(device, gpus, min(1.0, cpus / (2 * gpus)), 1, rows)
    # CPU actors: about half the cluster's CPUs for inference, the rest for decoding
    per_actor = max(1, min(4, cpus // 4))
    return _Layout(device, max(1, cpus // (2 * per_actor)), per_actor, per_actor, rows)


def _resources_of(layout: _Layout) -> dict[str, float]:
    """Ray's default for a GPU actor is 1 GPU and 1 CPU; say the CPUs only where they differ."""
    if layout.device != "cuda":
        return {"num_cpus": layout.cpus}
    return {"num_gpus": 1} if layout.cpus >= 1 else {"num_gpus": 1, "num_cpus": layout.cpus}


def _chdir(cwd: str) -> None:
    """Into the driver's working directory, where this node has it (a shared filesystem)."""
    if os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)


_children: dict[tuple[ModelSpec, FileOptions], DecodeChild] = {}


def _child(spec: ModelSpec, options: FileOptions) -> DecodeChild:
    """This Ray worker process's decoding child, kept from one file to the next."""
    from ..windows import DecodeChild

    key = (spec, options)
    if key not in _children:
        for old in _children.values():
            old.close()
        _children.clear()
        _children[key] = DecodeChild(spec, options)
    return _children[key]


def _decode(row: dict[str, Any], spec: ModelSpec, options: FileOptions, cwd: str) -> Iterator[dict]:
    """One file -> a row per window, then an "end" row; or an "error" row (Ray Data task).

    The file decodes in a child process of this task's worker, so that a crash of FFmpeg's native
    code becomes that file's error row instead of a task Ray retries and then fails the run with.
    """
    import numpy as np

    from ..windows import Unreadable

    _chdir(cwd)  # relative paths mean what they meant to the driver (and to the child)
    name = str(row["item"])
    empty = np.zeros((0, spec.num_frames, spec.crop, spec.crop, 3), np.uint8)
    base = {"name": name, "index": -1, "start": 0.0, "end": 0.0, "meta": "", "views": empty}
    count, started = 0, time.time()
    try:
        for item in _child(spec, options).items(name):
            if isinstance(item, Opened):
                started = item.started
            elif isinstance(item, Decoded):
                count += 1
                yield {**base, "kind": "window", "index": item.index, "start": item.start,
                       "end": item.end, "views": item.views}  # fmt: skip
            elif isinstance(item, Unreadable):
                yield {**base, "kind": "error", "meta": item.message}
            else:
                meta = {"facts": item.facts.as_dict(), "started": started}
                yield {**base, "kind": "end", "index": count, "meta": json.dumps(meta)}
    except Exception as e:  # one file must not stop a cluster run; it is retried on --resume
        yield {**base, "kind": "error", "meta": f"{name}: internal error: {type(e).__name__}: {e}"}


class _Model:
    """A Ray Data actor: one model, window rows -> mean over crops of the per-view softmax.

    A model that cannot load makes every row "fatal" (the driver stops with its message)
    rather than failing the actor, which Ray would retry and report at length.
    """

    def __init__(self, config: RunConfig, threads: int, cwd: str) -> None:
        _chdir(cwd)  # a relative --weights or --labels means what it meant to the driver
        self.failure = ""
        self.classes = 0
        try:
            import torch

            from ..engine import Classifier
            from ..loading import load

            if config.runtime.device == "cpu":
                torch.set_num_threads(config.runtime.threads or threads)
            loaded = load(config.model, config.runtime, progress=False)
            answer = core.answer_for(loaded.labels, config.options, loaded.spec)
            crops = config.options.crops or loaded.spec.crops
            self.classifier = Classifier(
                loaded, crops, config.runtime.batch_size, answer, config.runtime.compile
            )
            self.labels = json.dumps(loaded.labels)
            self.classes = len(loaded.labels)
        except Exception as e:
            code = e.exit_code if isinstance(e, VidclsError) else 1
            text = str(e) if isinstance(e, VidclsError) else f"{type(e).__name__}: {e}"
            self.failure = json.dumps({"message": text, "code": code})

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import numpy as np
        import torch

        kinds = [str(k) for k in batch["kind"]]
        n = len(kinds)
        probs = np.zeros((n, self.classes), np.float32)
        seconds = np.zeros(n)
        labels = [self.labels if k == "end" and not self.failure else "" for k in kinds]
        meta = list(batch["meta"])
        rows = [i for i, k in enumerate(kinds) if k == "window"]
        if self.failure:
            kinds, meta = ["fatal"] * n, [self.failure] * n
        elif rows:
            started = time.perf_counter()
            views = torch.from_numpy(np.stack([batch["views"][i] for i in rows]))
            probs[rows] = self.classifier.window_probabilities(views)
            seconds[rows] = (time.perf_counter() - started) / len(rows)
        return {"name": batch["name"], "kind": np.array(kinds, dtype=object),
                "index": batch["index"], "start": batch["start"], "end": batch["end"],
                "meta": np.array(meta, dtype=object), "labels": np.array(labels, dtype=object),
                "probs": probs, "seconds": seconds}  # fmt: skip


@dataclass
class _Gather:
    """One file's rows as they come back, in any order."""

    windows: dict[int, tuple[float, float, Any, float]] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    labels: str = ""

    def complete(self) -> bool:
        return self.end is not None and len(self.windows) == self.end["windows"]


def _events(name: str, gathered: _Gather, config: RunConfig) -> Iterator[Event]:
    """The file's rows, in window order, through the per-file core."""
    from ..facts import FileFacts

    meta = gathered.end
    assert meta is not None
    labels = json.loads(gathered.labels)
    scored: list[core.Scored] = [(Opened(name, len(gathered.windows), meta["started"]), None, 0.0)]
    for index in sorted(gathered.windows):
        start, end, probs, seconds = gathered.windows[index]
        scored.append((Decoded(name, index, start, end, None), probs, seconds))
    scored.append((Closed(name, FileFacts.from_dict(meta["facts"])), None, 0.0))
    answer = core.answer_for(labels, config.options, config.model.spec)
    identity = core.Identity(config.model.name, config.model.source, config.run_key)
    yield from core.events(scored, answer, config.options, identity)


def run_ray(config: RunConfig, names: list[str], say: Callable[[str], None]) -> Iterator[Event]:
    """Events as files finish on Ray (connect first; `config.runtime` from `cluster_runtime`)."""
    if not names:
        return
    import ray
    import ray.data

    spec = config.model.spec
    layout = _layout(config, spec)
    cpus, gpus = _resources()
    say(f"Ray: {cpus} CPU(s), {gpus} GPU(s); {layout.actors} model actor(s) on {layout.device}…")
    ray.data.DataContext.get_current().enable_progress_bars = False
    cwd = os.getcwd()
    dataset = (
        ray.data.from_items(list(names), override_num_blocks=min(len(names), 10_000))
        .flat_map(
            _decode, fn_kwargs={"spec": spec, "options": config.options, "cwd": cwd}, num_cpus=1
        )
        .map_batches(
            _Model,
            fn_constructor_kwargs={"config": config, "threads": layout.threads, "cwd": cwd},
            batch_size=layout.rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=layout.actors),
            **_resources_of(layout),
        )
    )
    pending = {name: _Gather() for name in names}
    failure: list[str] = []
    for row in _rows(dataset, failure):
        name, kind = str(row["name"]), str(row["kind"])
        gathered = pending.get(name)
        if kind == "fatal":
            fatal = json.loads(row["meta"])
            if fatal["code"] == 2:
                raise UsageError(fatal["message"])
            raise VidclsError(f"a Ray model actor failed: {fatal['message']}")
        if gathered is None:  # a file already finished (or failed): a stray or retried row
            continue
        if kind == "error":
            del pending[name]
            yield Failed(name, str(row["meta"]))
            continue
        if kind == "window":
            gathered.windows[int(row["index"])] = (
                float(row["start"]), float(row["end"]), row["probs"], float(row["seconds"])
            )  # fmt: skip
        else:
            gathered.end = {**json.loads(row["meta"]), "windows": int(row["index"])}
            gathered.labels = str(row["labels"])
        if gathered.complete():
            del pending[name]
            yield from _events(name, gathered, config)
    if failure:
        if len(pending) == len(names):
            raise VidclsError(f"the Ray run failed: {failure[0]}")
        say(f"the Ray run stopped: {failure[0]}")
    for name in pending:
        yield Failed(name, f"{name}: the Ray run ended before this file was done")


def _rows(dataset: Any, failure: list[str]) -> Iterator[dict[str, Any]]:
    """The dataset's rows; a failure of Ray itself (a node lost, a task that kept failing) ends
    them, its last line in `failure`, so the files not done yet become errors."""
    try:
        yield from dataset.iter_rows()
    except Exception as e:
        failure.append((str(e).strip().splitlines() or [type(e).__name__])[-1])
